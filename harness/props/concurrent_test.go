package props

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/telechaos/telechaos/harness/trace"
)

// The concurrent property passes on the correct clinic.
func TestConcurrentCleanClinic(t *testing.T) {
	if testing.Short() {
		t.Skip("property runs with real calls: slow; make test runs them")
	}
	withRapidFlags(t, map[string]string{"rapid.checks": "8"}, nil)
	rec := &Recorder{}
	rapid.Check(t, ConcurrentProperty(Config{Media: media(t), DataDir: t.TempDir()}, rec))
	if rec.Runs() < 2 {
		t.Errorf("only %d checks ran", rec.Runs())
	}
}

// switch-race shows only when switches of different calls overlap: the
// concurrent property finds it and shrinks the schedule, the shrunk schedule
// is a trace Repro replays; the sequential property, with the bug on too,
// does not find it.
func TestConcurrentFindsSwitchRace(t *testing.T) {
	if testing.Short() {
		t.Skip("property runs with real calls: slow; make test runs them")
	}
	m := media(t)
	rec := &Recorder{}
	cfg := Config{Bugs: []string{"switch-race:1"}, BugSeed: 1, Media: m, DataDir: t.TempDir(), Tries: 4}
	// A race need not fire again when rapid re-executes a failing schedule
	// to confirm it (rapid then reports "flaky" and keeps nothing), more so on
	// a loaded machine: the property gets a second bounded attempt, and the
	// log says which attempt found it.
	var s shrunk
	for attempt := 1; attempt <= 2; attempt++ {
		s = expectFailure(t, "switch-race", map[string]string{"rapid.checks": "50", "rapid.shrinktime": "10s"}, ConcurrentProperty(cfg, rec), rec)
		if s.tb.Failed() && s.run != nil && s.run.Failure != nil {
			t.Logf("switch-race found on attempt %d", attempt)
			break
		}
		t.Logf("attempt %d: switch-race not found in %d schedules: %v", attempt, s.checks, s.tb.errs)
	}
	if !s.tb.Failed() || s.run == nil || s.run.Failure == nil {
		t.Fatalf("switch-race not found in two attempts")
	}
	tr := s.run.Trace
	groups := map[int]int{}
	for _, op := range tr.Ops {
		if op.Group != nil {
			groups[*op.Group]++
		}
	}
	t.Logf("switch-race: shrunk in %v (%d executions) to %d users, %d ops, %d concurrent groups: %s: %s",
		s.elapsed.Round(time.Millisecond), s.checks, len(tr.Users), len(tr.Ops), len(groups), s.run.Failure.Invariant, s.run.Failure.Detail)
	if len(groups) == 0 {
		t.Errorf("the shrunk schedule has no concurrent group: a sequential run found switch-race")
	}
	path := filepath.Join(t.TempDir(), "switch-race.trace")
	if err := tr.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	// The race shows in a fraction of executions of the shrunk schedule
	// (rapid kept it because one of cfg.Tries executions failed): replay it
	// until it reproduces, at most 20 times and for at most a minute.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, total := 0, 0
	for total < 20 && n == 0 && ctx.Err() == nil {
		r, k, err := trace.Repro(ctx, path, trace.ReproOptions{Options: trace.Options{Media: m, DataDir: t.TempDir()}, Times: 1})
		if err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		n, total = n+r, total+k
	}
	t.Logf("repro of the shrunk schedule: first reproduced after %d executions (%d/%d)", total, n, total)
	if n == 0 {
		t.Errorf("the shrunk schedule never reproduced (0/%d)", total)
	}

	// The sequential property with switch-race on: a bounded number of
	// checks, and it must pass (switches never overlap).
	withRapidFlags(t, map[string]string{"rapid.checks": "15"}, map[string]string{"rapid.nofailfile": "true", "rapid.failfile": ""})
	seq := &captureTB{name: "props-sequential-switch-race"}
	srec := &Recorder{}
	rapid.Check(seq, SequentialProperty(cfg, srec))
	if seq.Failed() {
		t.Errorf("the sequential property found switch-race, which needs concurrency: %v", seq.errs)
	}
	t.Logf("sequential property with switch-race: %d checks, no failure", srec.Runs())
}
