package trace

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// seq builds a sequential trace: every op waits for the one before it.
func seq(bugs []string, expect string, users []User, ops ...Op) *Trace {
	tr := &Trace{Header: Header{Version: Version, Target: TargetEmbedded, Bugs: bugs, BugSeed: 1, Expect: expect, Seed: 1}, Users: users}
	for i, op := range ops {
		if i > 0 {
			op.After = []int{i - 1}
		}
		tr.Ops = append(tr.Ops, op)
	}
	return tr
}

var (
	p1 = User{"p1", "patient"}
	p2 = User{"p2", "patient"}
	c1 = User{"c1", "clinician"}
)

func media(t *testing.T) *driver.MediaFactory {
	t.Helper()
	m, err := driver.NewMediaFactory(driver.MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// listScopeTrace: two patients of one clinician; the second is offered the
// first's recording under list-scope.
func listScopeTrace() *Trace {
	return seq([]string{"list-scope"}, oracle.ReplayListOwnership, []User{p1, c1, p2},
		Op{Op: OpRegister, User: "p1"}, Op{Op: OpRegister, User: "c1"}, Op{Op: OpRegister, User: "p2"},
		Op{Op: OpBook, User: "p1", With: "c1", Consult: "k1"}, Op{Op: OpEnd, User: "p1", Consult: "k1"},
		Op{Op: OpBook, User: "p2", With: "c1", Consult: "k2"}, Op{Op: OpEnd, User: "c1", Consult: "k2"},
		Op{Op: OpList, User: "p2"}, Op{Op: OpList, User: "p1"})
}

// mediaTrace: one full call with audio and video, then both participants
// look at the recording and a third user probes it.
func mediaTrace(bugs ...string) *Trace {
	return seq(bugs, "", []User{p1, c1, p2},
		Op{Op: OpBook, User: "p1", With: "c1", Consult: "k1"},
		Op{Op: OpJoin, User: "p1", Consult: "k1"}, Op{Op: OpJoin, User: "c1", Consult: "k1"},
		Op{Op: OpSendAudio, User: "p1", Consult: "k1", N: 5}, Op{Op: OpSendAudio, User: "c1", Consult: "k1", N: 5},
		Op{Op: OpSwitch, User: "p1", Consult: "k1"}, Op{Op: OpSwitch, User: "c1", Consult: "k1"},
		Op{Op: OpSendVideo, User: "p1", Consult: "k1", N: 3}, Op{Op: OpSendVideo, User: "c1", Consult: "k1", N: 3},
		Op{Op: OpEnd, User: "c1", Consult: "k1"},
		Op{Op: OpList, User: "p1"}, Op{Op: OpList, User: "c1"},
		Op{Op: OpFetch, User: "p1", Consult: "k1"}, Op{Op: OpFetch, User: "c1", Consult: "k1"},
		Op{Op: OpReplay, User: "p1", Consult: "k1"},
		Op{Op: OpProbe, User: "p2", Consult: "k1"})
}

func TestRunOnceFindsListScope(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := listScopeTrace()
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := RunOnce(ctx, tr, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Reproduced {
		t.Fatalf("list-scope not reproduced: %+v", out.Violations)
	}
	if out.OpErrors != nil {
		t.Errorf("op errors: %v", out.OpErrors)
	}
	for _, v := range out.Violations {
		if v.Invariant != oracle.ReplayListOwnership {
			t.Errorf("unexpected %s: %s", v.Invariant, v.Detail)
		}
	}
	// The same trace on the correct clinic: nothing.
	tr.Bugs = nil
	out, err = RunOnce(ctx, tr, Options{DataDir: t.TempDir()})
	if err != nil || out.Reproduced || len(out.Violations) != 0 || out.OpErrors != nil {
		t.Errorf("correct clinic: err %v, violations %+v, op errors %v", err, out.Violations, out.OpErrors)
	}
}

func TestRunOnceMediaCallCleanClinic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := mediaTrace()
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	m := media(t)
	start := time.Now()
	out, err := RunOnce(ctx, tr, Options{DataDir: t.TempDir(), Media: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("media trace: %v", time.Since(start))
	if len(out.Violations) != 0 {
		t.Errorf("violations on the correct clinic: %+v", out.Violations)
	}
	if out.OpErrors != nil {
		t.Errorf("op errors: %v", out.OpErrors)
	}
	st := out.Stats
	t.Logf("stats %+v", st)
	// 10 audio + 6 video frames, each fetched by both participants.
	if st.FramesChecked < 20 || st.LiveFramesChecked == 0 || st.UntaggedFrames != 0 || st.DurabilityChecked != 2 || st.ProbesChecked < 3 {
		t.Errorf("the oracle judged too little: %+v", st)
	}
}

func TestRunOnceBolaMedia(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := mediaTrace("bola-media")
	tr.Expect = oracle.ReplayAccessControl
	out, err := RunOnce(ctx, tr, Options{DataDir: t.TempDir(), Media: media(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Reproduced {
		t.Errorf("bola-media not reproduced: %+v", out.Violations)
	}
}

func TestRunOnceUnreachable(t *testing.T) {
	tr := listScopeTrace()
	_, err := RunOnce(context.Background(), tr, Options{Target: "http://127.0.0.1:1"})
	if !errors.Is(err, ErrTarget) {
		t.Errorf("err %v, want ErrTarget", err)
	}
}

func TestReproFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "repro.trace")
	if err := listScopeTrace().WriteFile(path); err != nil {
		t.Fatal(err)
	}
	n, total, err := Repro(ctx, path, ReproOptions{Options: Options{DataDir: t.TempDir()}, Times: 3})
	if err != nil || n != 3 || total != 3 {
		t.Errorf("repro %d/%d, err %v; want 3/3", n, total, err)
	}
	if err := os.WriteFile(path, []byte(`{"telechaos_trace":2,"target":"embedded"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = Repro(ctx, path, ReproOptions{Times: 1})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 1 || !errors.Is(err, ErrVersion) {
		t.Errorf("bad version: %v", err)
	}
}
