package harness

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"telechaos/harness/trace"
)

const raceBase = `{"telechaos_trace":1,"target":"embedded","bugs":["switch-race:1"],"bug_seed":1,"expect":"replay-content-ownership"}
{"user":"p1","role":"patient"}
{"user":"c1","role":"clinician"}
{"user":"p2","role":"patient"}
{"user":"c2","role":"clinician"}
{"op":"book","user":"p1","with":"c1","consult":"k1"}
{"op":"book","user":"p2","with":"c2","consult":"k2","after":[0]}
{"op":"join","user":"p1","consult":"k1","after":[1]}
{"op":"join","user":"p2","consult":"k2","after":[2]}
{"op":"switch","user":"p1","consult":"k1","after":[3],"concurrent_group":1}
{"op":"switch","user":"p2","consult":"k2","after":[3],"concurrent_group":1}
{"op":"send_video","user":"p1","consult":"k1","n":10,"after":[4,5]}
{"op":"send_video","user":"p2","consult":"k2","n":10,"after":[6]}
{"op":"end","user":"p1","consult":"k1","after":[7]}
{"op":"end","user":"p2","consult":"k2","after":[8]}
{"op":"fetch","user":"p1","consult":"k1","after":[9]}
`

func TestAmplifyRaceRepeatsTheGroupBeforeTheEnds(t *testing.T) {
	base, err := trace.Parse(strings.NewReader(raceBase))
	if err != nil {
		t.Fatal(err)
	}
	amp, ok := amplifyRace(base, 3)
	if !ok {
		t.Fatal("no race group found")
	}
	if err := amp.Validate(); err != nil {
		t.Fatalf("amplified trace is invalid: %v", err)
	}
	// 3 rounds of 2 joins, 2 switches, 2 send_video; then a list by each
	// member and the fetch p2 k2 the base lacks.
	if got, want := len(amp.Ops), len(base.Ops)+3*6+3; got != want {
		t.Fatalf("ops = %d, want %d", got, want)
	}
	if len(base.Ops) != 11 {
		t.Fatalf("the base trace was modified: %d ops", len(base.Ops))
	}
	// The rounds sit between the first group's send_video ops and the ends.
	var kinds []string
	groups := map[int]int{}
	for _, op := range amp.Ops[8:26] {
		kinds = append(kinds, string(op.Op))
		if op.Group != nil {
			groups[*op.Group]++
		}
	}
	round := "join join switch switch send_video send_video"
	if got, want := strings.Join(kinds, " "), strings.Repeat(round+" ", 3); got+" " != want {
		t.Fatalf("inserted ops = %q, want %q", got, strings.TrimSpace(want))
	}
	if len(groups) != 3 {
		t.Fatalf("inserted groups = %v, want 3 new groups of 2", groups)
	}
	for g, n := range groups {
		if g == 1 || n != 2 {
			t.Fatalf("group %d has %d switches (groups %v): want new ids with 2 each", g, n, groups)
		}
	}
	// The first end waits for the last inserted op; the later ops keep
	// their order (indexes shifted).
	end := amp.Ops[26]
	if end.Op != trace.OpEnd || !slices.Contains(end.After, 25) {
		t.Fatalf("op 26 = %v after %v: want the first end after op 25", end, end.After)
	}
	if f := amp.Ops[28]; f.Op != trace.OpFetch || !slices.Contains(f.After, 27) {
		t.Fatalf("op 28 = %v after %v: want fetch after op 27", f, f.After)
	}
	var tail []string
	for i, op := range amp.Ops[29:] {
		tail = append(tail, op.String())
		if !slices.Contains(op.After, 28+i) {
			t.Fatalf("tail op %v waits for %v, want op %d", op, op.After, 28+i)
		}
	}
	if got, want := strings.Join(tail, "; "), "list p1; list p2; fetch p2 k2"; got != want {
		t.Fatalf("tail = %q, want %q", got, want)
	}
	// A trace without a group of switches on two calls is left alone.
	seq, _ := trace.Parse(strings.NewReader(strings.ReplaceAll(raceBase, `,"concurrent_group":1`, "")))
	if _, ok := amplifyRace(seq, 3); ok {
		t.Fatal("amplified a trace without a concurrent group")
	}
}

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
	if len(groups) < raceRoundsSearch {
		t.Errorf("%d concurrent groups: want the race repeated at least %d times", len(groups), raceRoundsSearch)
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
