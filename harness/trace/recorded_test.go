package trace

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telechaos/telechaos/harness/oracle"
)

// recordedTries bounds the replays of one recorded trace: each was written
// by a run only after it reproduced several times in a row, so one try in
// three is a generous floor for a loaded machine, never an open loop.
const recordedTries = 3

// TestRecordedBugTracesReplay replays the minimal trace a run recorded for
// each catalogue bug (testdata/bugs, written by `telechaos run --scenario
// bug-ID`): with the bug it must still violate the trace's invariant, and
// the same ops against the correct clinic must violate nothing. A change to
// the client, the oracle or the clinic that loses a detection, or that
// turns a correct clinic's answer into a violation, fails here.
// switch-race is not recorded: it shows only under concurrency (the race
// tests replay it).
func TestRecordedBugTracesReplay(t *testing.T) {
	files, err := filepath.Glob("testdata/bugs/*.trace")
	if err != nil || len(files) < 7 {
		t.Fatalf("recorded traces: %v %v, want one per deterministic catalogue bug", files, err)
	}
	for _, file := range files {
		bug := strings.TrimSuffix(filepath.Base(file), ".trace")
		t.Run(bug, func(t *testing.T) {
			tr, err := ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.Bugs) == 0 || !strings.HasPrefix(tr.Bugs[0], bug) || tr.Expect == "" {
				t.Fatalf("%s: bugs %v expect %q: not a recorded trace of %s", file, tr.Bugs, tr.Expect, bug)
			}
			ctx := context.Background()
			var got []oracle.Violation
			reproduced := false
			for range recordedTries {
				out, err := RunOnce(ctx, tr, Options{DataDir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				got = out.Violations
				if reproduced = out.Reproduced; reproduced {
					break
				}
			}
			if !reproduced {
				t.Fatalf("%s no longer reproduces %s in %d tries (violations: %v)", bug, tr.Expect, recordedTries, invariantsOf(got))
			}

			// The control: the same ops against the correct clinic.
			clean := *tr
			clean.Bugs = nil
			out, err := RunOnce(ctx, &clean, Options{DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range out.Violations {
				t.Errorf("the correct clinic violates %s on %s's trace: %s", v.Invariant, bug, v.Detail)
			}
		})
	}
}

func invariantsOf(vs []oracle.Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Invariant)
	}
	return out
}
