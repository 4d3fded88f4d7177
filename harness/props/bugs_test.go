package props

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/trace"
)

// shrunk is what an expected-to-fail rapid check left: the minimal run.
type shrunk struct {
	tb      *captureTB
	run     *Run
	checks  int
	found   int // the first failing check
	elapsed time.Duration
}

// expectFailure runs prop in a nested rapid check that must fail, with fail
// files off (a failure expected here must not be replayed by, or left for,
// later runs) and a bounded shrink time.
func expectFailure(t *testing.T, name string, flags map[string]string, prop func(*rapid.T), rec *Recorder) shrunk {
	t.Helper()
	withRapidFlags(t, flags, map[string]string{"rapid.nofailfile": "true", "rapid.failfile": ""})
	tb := &captureTB{name: "props-expected-failure-" + name}
	start := time.Now()
	rapid.Check(tb, prop)
	return shrunk{tb: tb, run: rec.Last(), checks: rec.Runs(), found: rec.FoundAt(), elapsed: time.Since(start)}
}

func itoa(n int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// Each deterministic catalogue bug at probability 1: the sequential property
// finds it, rapid shrinks it to a few actions, the failure is the expected
// invariant, and the shrunk run written as a trace replays with Repro.
//
// Shrinking is bounded by wall time and one execution costs 30 ms to 1 s
// (the trace session's fixed waits after sends and before an end), so the
// cases are kept small from the start: 3 users, 2 consultations, 6-10
// actions on average (more checks instead), and a check stops at its first
// failure.
func TestSequentialFindsBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("property runs with real calls: slow; make test runs them")
	}
	cases := []struct {
		bug      string
		inv      []string // the invariants the bug may show first
		maxSteps int      // bound on the shrunk sequence's actions
		steps    string   // rapid.steps: short cases shrink in fewer executions
		shrink   string   // rapid.shrinktime
		// flaky: the bug shows only sometimes for one sequence (preroll-leak
		// depends on frames arriving before the recorder's file is ready):
		// rapid may call its shrunk case flaky, and the smallest failing
		// execution stands for it.
		flaky bool
		// attempts: rounds of 400 checks before the bug counts as missed.
		// preroll-leak shows only when frames reach a track before its
		// file is ready; under the whole suite on a loaded 2-core machine
		// one round of 400 missed it once (a fresh clone under stress-ng).
		attempts int
	}{
		// Minimal cases seen: list-scope 7 actions, bola-media 6, cache-key
		// 5, preroll-leak 6, switch-reuse 9. Shrunk sizes measured with two
		// copies of the package running at once: list-scope 7-14,
		// bola-media 7-13, cache-key 5-9, preroll-leak 6-14, switch-reuse
		// 11-14; the bounds leave room for a loaded machine.
		{bug: "list-scope", inv: []string{oracle.ReplayListOwnership}, maxSteps: 16, steps: "6", shrink: "10s"},
		{bug: "bola-media", inv: []string{oracle.ReplayAccessControl}, maxSteps: 16, steps: "6", shrink: "10s"},
		{bug: "cache-key", inv: []string{oracle.ReplayListOwnership, oracle.RecordingDurability}, maxSteps: 12, steps: "6", shrink: "10s"},
		// preroll-leak: a track's pre-roll buffer goes back to the pool at
		// the track's end without being emptied, so the next call's
		// recording starts with this call's frames. Measured after the
		// clinic held the buffer for the track's lifetime (before, it went
		// back mid-call and the leak's target was timing-dependent): 9-12
		// actions, repro 3/3, also with another package's tests running.
		// Its shrinking needs more attempts than the others (157-304 when
		// idle): with 10 s under the whole suite it stopped at 21 actions.
		{bug: "preroll-leak", inv: []string{oracle.ReplayContentOwnership, oracle.RecordingDurability}, maxSteps: 20, steps: "6", shrink: "40s", attempts: 2},
		// switch-reuse needs two video calls one after the other: longer
		// cases to find it in the checks given. The first failing check,
		// measured 8 times idle and 8 under stress-ng --cpu 2: 6-143,
		// median about 70 (rapid.steps 25 measured no better), so one round
		// of 400 misses about once in 200 runs (CI saw it once); a second
		// round makes that about once in 40,000.
		{bug: "switch-reuse", inv: []string{oracle.ReplayListOwnership, oracle.ReplayContentOwnership}, maxSteps: 20, steps: "15", shrink: "20s", attempts: 2},
	}
	for _, c := range cases {
		t.Run(c.bug, func(t *testing.T) {
			rec := &Recorder{}
			cfg := Config{Bugs: []string{c.bug + ":1"}, BugSeed: 1, Media: media(t), DataDir: t.TempDir(), MaxUsers: 3, MaxConsults: 2, PreRegister: true}
			flags := map[string]string{"rapid.checks": "400", "rapid.steps": c.steps, "rapid.shrinktime": c.shrink}
			s := expectFailure(t, c.bug, flags, SequentialProperty(cfg, rec), rec)
			if !s.tb.Failed() && c.attempts > 1 {
				// Bounded: one more round of checks, never an open-ended loop.
				t.Logf("rapid did not find %s in %d checks (%s); second round", c.bug, s.checks, s.elapsed.Round(time.Second))
				rec = &Recorder{}
				cfg.DataDir = t.TempDir()
				s = expectFailure(t, c.bug, flags, SequentialProperty(cfg, rec), rec)
			}
			if !s.tb.Failed() {
				t.Fatalf("rapid did not find %s in %d checks (%d rounds)", c.bug, s.checks, max(c.attempts, 1))
			}
			if c.flaky && (s.run == nil || s.run.Failure == nil) {
				t.Logf("rapid: %v", s.tb.errs)
				s.run = rec.Smallest()
			}
			if s.run == nil || s.run.Failure == nil {
				t.Fatalf("no failure recorded; rapid said: %v", s.tb.errs)
			}
			f := s.run.Failure
			t.Logf("%s: found at check %d, shrunk to %d actions in %v (%d checks incl. shrinking): %s\n  actions: %s\n  failure: %s: %s",
				c.bug, s.found, len(s.run.Actions), s.elapsed.Round(time.Millisecond), s.checks, f.Invariant,
				strings.Join(s.run.Actions, "; "), f.Invariant, f.Detail)
			if !slices.Contains(c.inv, f.Invariant) {
				t.Errorf("failure %s, want one of %v", f.Invariant, c.inv)
			}
			if len(s.run.Actions) > c.maxSteps {
				t.Errorf("shrunk sequence has %d actions, want <= %d", len(s.run.Actions), c.maxSteps)
			}
			// The shrunk run is a trace that replays.
			path := filepath.Join(t.TempDir(), "repro.trace")
			if err := s.run.Trace.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			n, total, err := trace.Repro(ctx, path, trace.ReproOptions{Options: trace.Options{Media: cfg.Media, DataDir: t.TempDir()}, Times: 3})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("repro of the shrunk trace (%d ops): %d/%d", len(s.run.Trace.Ops), n, total)
			if !c.flaky && n != total {
				t.Errorf("repro %d/%d", n, total)
			}
		})
	}
}
