package trace

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/oracle"
)

// crashCall: one call, both send audio, the target crashes (or restarts
// gracefully), both rejoin and send again, then end and fetch. The frames
// sent before the crash are what lost-on-crash loses.
func crashCall(k Kind, bugs ...string) *Trace {
	return seq(bugs, oracle.RecordingDurability, []User{p1, c1},
		Op{Op: OpBook, User: "p1", With: "c1", Consult: "k1"},
		Op{Op: OpJoin, User: "p1", Consult: "k1"}, Op{Op: OpJoin, User: "c1", Consult: "k1"},
		Op{Op: OpSendAudio, User: "p1", Consult: "k1", N: 25}, Op{Op: OpSendAudio, User: "c1", Consult: "k1", N: 25},
		Op{Op: k},
		Op{Op: OpJoin, User: "p1", Consult: "k1"}, Op{Op: OpJoin, User: "c1", Consult: "k1"},
		Op{Op: OpSendAudio, User: "p1", Consult: "k1", N: 25}, Op{Op: OpSendAudio, User: "c1", Consult: "k1", N: 25},
		Op{Op: OpEnd, User: "p1", Consult: "k1"},
		Op{Op: OpFetch, User: "p1", Consult: "k1"}, Op{Op: OpFetch, User: "c1", Consult: "k1"})
}

// lost-on-crash shows as recording-durability on every replay of a crash
// trace; the correct clinic shows nothing on the same trace.
func TestCrashTargetLostOnCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := media(t)
	tr := crashCall(OpCrashTarget, "lost-on-crash:1")
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		start := time.Now()
		out, err := RunOnce(ctx, tr, Options{DataDir: t.TempDir(), Media: m})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("lost-on-crash run %d: %v, %d violations", i+1, time.Since(start).Round(time.Millisecond), len(out.Violations))
		if i == 0 && len(out.Violations) > 0 {
			t.Logf("%s", out.Violations[0].Detail)
		}
		if out.OpErrors != nil {
			t.Errorf("run %d: op errors: %v", i+1, out.OpErrors)
		}
		if !out.Reproduced {
			t.Fatalf("run %d: lost-on-crash not reproduced: %+v", i+1, out.Violations)
		}
		for _, v := range out.Violations {
			if v.Invariant != oracle.RecordingDurability || !strings.Contains(v.Detail, "of those sent") {
				t.Errorf("run %d: %s: %s", i+1, v.Invariant, v.Detail)
			}
		}
	}
	tr.Bugs = nil
	for i := range 3 {
		out, err := RunOnce(ctx, tr, Options{DataDir: t.TempDir(), Media: m})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Violations) != 0 || out.OpErrors != nil {
			t.Fatalf("correct clinic run %d: violations %+v, op errors %v", i+1, out.Violations, out.OpErrors)
		}
		// Both participants' audio judged against frames sent, by both.
		if out.Stats.DurabilityChecked != 2 {
			t.Errorf("correct clinic run %d: durability checked %d, want 2 (%+v)", i+1, out.Stats.DurabilityChecked, out.Stats)
		}
	}
}

// A graceful restart finalises what the clinic holds: lost-on-crash loses
// nothing. A send after a crash without a rejoin fails naming the crash, and
// the call still ends with its frames on the correct clinic.
func TestRestartTargetAndCutPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := media(t)
	out, err := RunOnce(ctx, crashCall(OpRestartTarget, "lost-on-crash:1"), Options{DataDir: t.TempDir(), Media: m})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Violations) != 0 || out.OpErrors != nil {
		t.Errorf("graceful restart with lost-on-crash: violations %+v, op errors %v", out.Violations, out.OpErrors)
	}
	tr := seq(nil, "", []User{p1, c1},
		Op{Op: OpBook, User: "p1", With: "c1", Consult: "k1"},
		Op{Op: OpJoin, User: "p1", Consult: "k1"}, Op{Op: OpJoin, User: "c1", Consult: "k1"},
		Op{Op: OpSendAudio, User: "p1", Consult: "k1", N: 20},
		Op{Op: OpCrashTarget},
		Op{Op: OpSendAudio, User: "p1", Consult: "k1", N: 20},
		Op{Op: OpEnd, User: "c1", Consult: "k1"},
		Op{Op: OpFetch, User: "p1", Consult: "k1"}, Op{Op: OpFetch, User: "c1", Consult: "k1"})
	out, err = RunOnce(ctx, tr, Options{DataDir: t.TempDir(), Media: m})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Violations) != 0 {
		t.Errorf("correct clinic: violations %+v", out.Violations)
	}
	if out.OpErrors == nil || len(out.OpErrors.Ops) != 1 || out.OpErrors.Ops[0].Index != 5 || !errors.Is(out.OpErrors, ErrUnbound) ||
		!strings.Contains(out.OpErrors.Error(), "cut by crash_target") {
		t.Errorf("op errors %v, want op 5's send cut by crash_target", out.OpErrors)
	}
	if out.Stats.DurabilityChecked != 2 {
		t.Errorf("durability checked %d, want 2", out.Stats.DurabilityChecked)
	}
}

// A URL target cannot be crashed: RunOnce and Repro say so before running
// anything (the URL is not even reachable).
func TestCrashTargetNeedsEmbedded(t *testing.T) {
	tr := crashCall(OpCrashTarget)
	_, err := RunOnce(context.Background(), tr, Options{Target: "http://127.0.0.1:1"})
	if !errors.Is(err, ErrNeedsEmbedded) || errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "op 5: crash_target needs the embedded target") {
		t.Errorf("RunOnce: %v", err)
	}
	path := filepath.Join(t.TempDir(), "crash.trace")
	if err := tr.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	n, total, err := Repro(context.Background(), path, ReproOptions{Options: Options{Target: "http://127.0.0.1:1"}, Times: 3})
	if n != 0 || total != 0 || !errors.Is(err, ErrNeedsEmbedded) || !strings.Contains(err.Error(), path) {
		t.Errorf("Repro: %d/%d, %v", n, total, err)
	}
	// Execute without a TargetControl fails the op, not the trace.
	s := NewSession(nil, nil, nil, nil)
	if err := s.Do(context.Background(), Op{Op: OpCrashTarget}); !errors.Is(err, ErrNeedsEmbedded) {
		t.Errorf("session without control: %v", err)
	}
}
