package props

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"telechaos/harness/oracle"
	"telechaos/harness/trace"
)

// shrunk is what an expected-to-fail rapid check left: the minimal run.
type shrunk struct {
	tb      *captureTB
	run     *Run
	checks  int
	elapsed time.Duration
}

// expectFailure runs prop in a nested rapid check that must fail, with fail
// files off (a failure expected here must not be replayed by, or left for,
// later runs) and a bounded shrink time.
func expectFailure(t *testing.T, name string, checks int, prop func(*rapid.T), rec *Recorder) shrunk {
	t.Helper()
	withRapidFlags(t,
		map[string]string{"rapid.checks": itoa(checks), "rapid.shrinktime": "10s"},
		map[string]string{"rapid.nofailfile": "true", "rapid.failfile": ""})
	tb := &captureTB{name: "props-expected-failure-" + name}
	start := time.Now()
	rapid.Check(tb, prop)
	return shrunk{tb: tb, run: rec.Last(), checks: rec.Runs(), elapsed: time.Since(start)}
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
func TestSequentialFindsBugs(t *testing.T) {
	cases := []struct {
		bug      string
		inv      []string // the invariants the bug may show first
		maxSteps int      // bound on the shrunk sequence's actions
	}{
		// Bounds leave room for a loaded machine: shrinking is bounded by
		// time (rapid.shrinktime 10s here), and media cases shrink slower.
		// Measured: list-scope 7-17, bola-media 6-17, cache-key 5-13,
		// preroll-leak 13-24, switch-reuse 13-16 actions; unshrunk failing
		// cases run 30+ actions.
		{"list-scope", []string{oracle.ReplayListOwnership}, 20},
		{"bola-media", []string{oracle.ReplayAccessControl}, 20},
		{"cache-key", []string{oracle.ReplayListOwnership, oracle.RecordingDurability}, 20},
		// preroll-leak replays stale RTP packets whose payload pion may
		// have reused: the leaked frames are foreign (content) or garbled,
		// then only missing (durability), from one execution to the next.
		{"preroll-leak", []string{oracle.ReplayContentOwnership, oracle.RecordingDurability}, 28},
		{"switch-reuse", []string{oracle.ReplayListOwnership, oracle.ReplayContentOwnership}, 28},
	}
	for _, c := range cases {
		t.Run(c.bug, func(t *testing.T) {
			rec := &Recorder{}
			cfg := Config{Bugs: []string{c.bug + ":1"}, BugSeed: 1, Media: media(t), DataDir: t.TempDir()}
			s := expectFailure(t, c.bug, 100, SequentialProperty(cfg, rec), rec)
			if !s.tb.Failed() {
				t.Fatalf("rapid did not find %s in %d checks", c.bug, s.checks)
			}
			if s.run == nil || s.run.Failure == nil {
				t.Fatalf("no failure recorded; rapid said: %v", s.tb.errs)
			}
			f := s.run.Failure
			t.Logf("%s: shrunk to %d actions in %v (%d checks incl. shrinking): %s\n  actions: %s\n  failure: %s: %s",
				c.bug, len(s.run.Actions), s.elapsed.Round(time.Millisecond), s.checks, f.Invariant,
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
			if c.bug != "preroll-leak" && n != total {
				t.Errorf("repro %d/%d", n, total)
			}
		})
	}
}
