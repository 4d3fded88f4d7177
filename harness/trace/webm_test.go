package trace

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/models"
)

// formatsSeen records the format of every track the target lists in a
// replay's metadata, and the first bytes of every track it serves.
type formatsSeen struct {
	driver.Target
	mu      sync.Mutex
	formats map[string]int
	magic   map[string]int
}

func (f *formatsSeen) GetReplay(ctx context.Context, s driver.Session, rid string) (driver.Replay, error) {
	rep, err := f.Target.GetReplay(ctx, s, rid)
	if err == nil {
		f.mu.Lock()
		for _, t := range rep.Tracks {
			f.formats[t.Format]++
		}
		f.mu.Unlock()
	}
	return rep, err
}

func (f *formatsSeen) FetchMedia(ctx context.Context, s driver.Session, rid, tid string) ([]byte, error) {
	b, err := f.Target.FetchMedia(ctx, s, rid, tid)
	if err == nil {
		f.mu.Lock()
		f.magic[string(b[:min(4, len(b))])]++
		f.mu.Unlock()
	}
	return b, err
}

// runWebM is RunOnce against an embedded clinic that records WebM
// (target.Options.RecordFormat), with the trace's bugs, and the formats the
// client was shown.
func runWebM(t *testing.T, tr *Trace) (Outcome, *formatsSeen) {
	t.Helper()
	return runWebMVia(t, tr, nil)
}

// runWebMVia is runWebM with the client talking to front(the clinic's URL)
// instead (a hostile front), when front is not nil.
func runWebMVia(t *testing.T, tr *Trace, front func(url string) string) (Outcome, *formatsSeen) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	op, err := target.Open(ctx, TargetEmbedded, target.Options{
		HTTP: driver.HTTPOptions{Timeout: 15 * time.Second},
		Bugs: tr.Bugs, BugSeed: tr.BugSeed, TempDir: t.TempDir(), KeepAddr: true,
		RecordFormat: "webm",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if front != nil {
		fop, err := target.Open(ctx, front(op.URL), target.Options{HTTP: driver.HTTPOptions{Timeout: 15 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		defer fop.Close()
		op.Target = fop.Target
	}
	m, err := newMedia(ctx, op.MediaHost)
	if err != nil {
		t.Fatal(err)
	}
	seen := &formatsSeen{Target: op.Target, formats: map[string]int{}, magic: map[string]int{}}
	ledger := models.NewLedger()
	or := oracle.New(ledger, oracle.Options{})
	s := NewSession(seen, m, ledger, or)
	s.SetTargetControl(&sessionControl{ctl: op.Control, target: op.Target, url: op.URL})
	vs, err := execute(ctx, tr, s, or)
	out := Outcome{Violations: vs, Reproduced: Matches(tr.Expect, vs), Stats: or.Stats()}
	var ee *ExecError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("execute: %v", err)
	}
	out.OpErrors = ee
	return out, seen
}

// mustBeWebM fails unless every track listed said "webm" and every body
// served began with the EBML magic.
func mustBeWebM(t *testing.T, seen *formatsSeen) {
	t.Helper()
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.formats) != 1 || seen.formats["webm"] == 0 {
		t.Fatalf("track formats listed: %v, want only webm", seen.formats)
	}
	if len(seen.magic) != 1 || seen.magic["\x1a\x45\xdf\xa3"] == 0 {
		t.Fatalf("track bodies began with %v, want only the EBML magic", seen.magic)
	}
}

// A real WebRTC call (audio, a switch to video, both participants looking)
// recorded as WebM by the correct clinic: every content check judges its
// frames and none fails.
func TestWebMRecordingCleanCall(t *testing.T) {
	tr := mediaTrace()
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	out, seen := runWebM(t, tr)
	mustBeWebM(t, seen)
	for _, v := range out.Violations {
		t.Errorf("correct clinic recording WebM violates %s: %s", v.Invariant, v.Detail)
	}
	if out.OpErrors != nil {
		t.Errorf("op errors: %v", out.OpErrors)
	}
	st := out.Stats
	t.Logf("webm call: formats %v, stats %+v", seen.formats, st)
	// 10 audio + 6 video frames, each fetched by both participants.
	if st.FramesChecked < 20 || st.UntaggedFrames != 0 || st.DurabilityChecked != 2 {
		t.Errorf("the oracle judged too little of the WebM recording: %+v", st)
	}
}

// Catalogue bugs that show in recorded content, found with WebM recording
// on, from their recorded traces: preroll-leak (another recording's frames
// in a track: replay-content-ownership), switch-reuse (the 2020 incident)
// and lost-on-crash (a crash mid-recording leaves cut WebM files; what was
// acknowledged is missing: recording-durability). The control, the same ops
// against the correct clinic recording WebM, violates nothing.
func TestWebMRecordingFindsContentBugs(t *testing.T) {
	for _, bug := range []string{"preroll-leak", "switch-reuse", "lost-on-crash"} {
		t.Run(bug, func(t *testing.T) {
			tr, err := ParseFile("testdata/bugs/" + bug + ".trace")
			if err != nil {
				t.Fatal(err)
			}
			var out Outcome
			var seen *formatsSeen
			for try := range recordedTries {
				out, seen = runWebM(t, tr)
				if out.Reproduced {
					t.Logf("%s reproduced with WebM recording on try %d: %v", bug, try+1, invariantsOf(out.Violations))
					break
				}
			}
			if !out.Reproduced {
				t.Fatalf("%s not found with WebM recording in %d tries (violations: %v)", bug, recordedTries, invariantsOf(out.Violations))
			}
			if seen.formats["webm"] == 0 {
				t.Fatalf("no webm track listed: %v", seen.formats)
			}
			for f := range seen.formats {
				if f != "webm" {
					t.Fatalf("a %q track with WebM recording on", f)
				}
			}
			clean := *tr
			clean.Bugs = nil
			out, _ = runWebM(t, &clean)
			for _, v := range out.Violations {
				t.Errorf("the correct clinic recording WebM violates %s on %s's trace: %s", v.Invariant, bug, v.Detail)
			}
		})
	}
}

// The embedded target refuses a record format it does not know, before
// starting anything.
func TestEmbeddedRefusesUnknownRecordFormat(t *testing.T) {
	_, err := target.Open(context.Background(), TargetEmbedded, target.Options{TempDir: t.TempDir(), RecordFormat: "mp4"})
	if err == nil || !strings.Contains(err.Error(), `"mp4"`) {
		t.Fatalf("err = %v, want a refusal naming \"mp4\"", err)
	}
}
