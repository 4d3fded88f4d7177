package harness

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/repro"
	"github.com/telechaos/telechaos/harness/trace"
)

// Attempts of TestRunWritesReplayableRaceTrace. Whether a run hits the race,
// and whether minimisation finishes within its budget, depends on how the
// machine schedules the switches; an attempt that finds no race or writes no
// trace is retried with the next seed and twice the repro budget, up to
// raceTraceAttempts in all. The test has no wall-clock limit of its own
// beyond go test's -timeout (it stops early, with the attempts made, when
// that deadline comes close).
const (
	raceTraceAttempts    = 3
	raceTraceReproBudget = 40 * time.Second
	// raceTraceReplays: the written trace must reproduce raceTraceReproduced
	// times in at most this many replays.
	raceTraceReplays    = 5
	raceTraceReproduced = 2
)

// A run that finds switch-race writes a trace that replays it on demand: the
// race shows only when the target interleaves two switches, so the trace
// repeats its concurrent group after rejoins (amplifyRace).
func TestRunWritesReplayableRaceTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls, minimisation and replays: slow; make test runs it")
	}
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		// Leave time to report the attempts before go test's timeout panics.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	var (
		tr       *trace.Trace
		attempts []string
	)
	for a := range raceTraceAttempts {
		sc := loadBuiltin(t, "bug-switch-race")
		sc.Duration = dur(12 * time.Second)
		sc.Seed += uint64(a)
		budget := raceTraceReproBudget << a
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("report-%d", a+1))
		var logs bytes.Buffer
		start := time.Now()
		res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir, ReproBudget: budget,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		took := time.Since(start).Round(time.Second)
		note := fmt.Sprintf("attempt %d (seed %d, repro budget %v, %v)", a+1, sc.Seed, budget, took)
		switch {
		case err != nil && ctx.Err() == nil:
			t.Fatalf("%s: %v", note, err)
		case err != nil:
			note += ": go test's deadline came: " + err.Error()
		case res.ExitCode != ExitViolation:
			note += fmt.Sprintf(": exit %d, the race was not found", res.ExitCode)
		default:
			var perr error
			if tr, perr = trace.ParseFile(filepath.Join(dir, "repro-1.trace")); perr != nil {
				tr = nil
				note += fmt.Sprintf(": race found, no trace: %v", perr)
				for line := range strings.Lines(logs.String()) {
					if strings.Contains(line, "no repro trace") {
						note += " (" + strings.TrimSpace(line) + ")"
					}
				}
			} else {
				note += ": repro-1.trace written"
			}
		}
		attempts = append(attempts, note)
		t.Log(note)
		if tr != nil || ctx.Err() != nil {
			break
		}
	}
	if tr == nil {
		t.Fatalf("no replayable race trace in %d of %d attempts:\n%s", len(attempts), raceTraceAttempts, strings.Join(attempts, "\n"))
	}
	groups := map[int]bool{}
	for _, op := range tr.Ops {
		if op.Group != nil {
			groups[*op.Group] = true
		}
	}
	t.Logf("repro-1.trace (after %d attempts): %d users, %d ops, %d concurrent groups, expect %s", len(attempts), len(tr.Users), len(tr.Ops), len(groups), tr.Expect)
	if len(groups) < repro.RaceRoundsSearch {
		t.Errorf("%d concurrent groups: want the race repeated at least %d times", len(groups), repro.RaceRoundsSearch)
	}
	if len(tr.Users) > 6 {
		t.Errorf("%d users: want the two racing calls and little else", len(tr.Users))
	}
	// The written trace must replay the race: a rate, not every time, since
	// the interleaving is the machine's.
	got, runs := 0, 0
	for runs < raceTraceReplays && got < raceTraceReproduced {
		runs++
		out, err := trace.RunOnce(ctx, tr, trace.Options{})
		if err != nil {
			t.Fatalf("replay %d of repro-1.trace: %v", runs, err)
		}
		if out.Reproduced {
			got++
		}
	}
	t.Logf("repro-1.trace reproduced %d in %d replays", got, runs)
	if got < raceTraceReproduced {
		t.Errorf("the written trace reproduced %d in %d replays, want %d", got, runs, raceTraceReproduced)
	}
	// Without the bug the same schedule is clean: the rounds themselves
	// (rejoins, repeated switches) are correct use of the contract.
	clean := tr.Clone()
	clean.Bugs = nil
	out, err := trace.RunOnce(ctx, clean, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Violations) > 0 {
		t.Errorf("the correct clinic shows %d violations on the race trace, first: %v", len(out.Violations), out.Violations[0])
	}
}
