package verdict

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// judgedAll: every invariant judged 100 times, nothing left unjudged.
func judgedAll() oracle.Stats {
	st := oracle.Stats{Judgement: map[string]oracle.Judgement{}}
	for _, inv := range models.InvariantIDs() {
		st.Judgement[inv] = oracle.Judgement{Judged: 100}
	}
	return st
}

func inputs(sc *scenarios.Scenario) Inputs {
	start := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	return Inputs{Scenario: sc, RunID: "r1", Target: "embedded", Start: start, End: start.Add(10 * time.Second),
		Stats: judgedAll(), Figures: Figures{Requests: 10}}
}

func leak(inv string, at time.Time) oracle.Violation {
	return oracle.Violation{Invariant: inv, Viewer: "u-2", Owner: "u-1", Recording: "rec-1", At: at, Detail: "offered"}
}

func TestSummarizePassAndViolation(t *testing.T) {
	sc := &scenarios.Scenario{Name: "s", Seed: 7}
	d := Summarize(inputs(sc))
	if d.Summary.Verdict != models.VerdictPass || d.Summary.ExitCode != models.ExitPass || !d.Summary.ExpectMet {
		t.Fatalf("clean run: %s exit %d expect met %v (%s)", d.Summary.Verdict, d.Summary.ExitCode, d.Summary.ExpectMet, d.Summary.Reason)
	}
	if d.FirstViolation != -1 || d.Summary.FirstViolationSeconds != nil {
		t.Errorf("clean run has a first violation: %v", d.FirstViolation)
	}
	if len(d.Summary.ViolationsByInvariant) != len(oracle.Invariants) {
		t.Errorf("every invariant gets a row, got %v", d.Summary.ViolationsByInvariant)
	}

	in := inputs(sc)
	in.Violations = []oracle.Violation{leak(oracle.ReplayListOwnership, in.Start.Add(3*time.Second))}
	d = Summarize(in)
	if d.Summary.ExitCode != models.ExitViolation || d.Summary.ViolationsByInvariant[oracle.ReplayListOwnership] != 1 {
		t.Fatalf("leak: exit %d by invariant %v", d.Summary.ExitCode, d.Summary.ViolationsByInvariant)
	}
	if d.FirstViolation != 3*time.Second || d.Summary.Violations[0].Evidence == "" {
		t.Errorf("first violation %v, evidence %q", d.FirstViolation, d.Summary.Violations[0].Evidence)
	}
	if ev := Evidence("r1", d.Summary, d.Violations); len(ev) != 1 || !strings.Contains(ev[0].Summary, "owner u-1") {
		t.Errorf("evidence: %+v", ev)
	}
}

// A violation outranks everything else that happened: an interrupt, a
// failure, a threshold (a CI rule "exit 3 means retry" never retries a leak
// away).
func TestSummarizeViolationOutranks(t *testing.T) {
	maxV := "0.0001"
	sc := &scenarios.Scenario{Thresholds: []scenarios.Threshold{{Metric: "error_rate", Max: &maxV}}}
	in := inputs(sc)
	in.Figures = Figures{Requests: 10, RequestErrors: 5}
	in.Violations = []oracle.Violation{leak(oracle.ReplayContentOwnership, in.Start)}
	in.Err, in.Interrupted = context.Canceled, true
	d := Summarize(in)
	if d.Summary.ExitCode != models.ExitViolation || !d.Summary.Interrupted || len(d.Summary.Also) == 0 {
		t.Errorf("leak + interrupt + threshold: exit %d interrupted %v also %v", d.Summary.ExitCode, d.Summary.Interrupted, d.Summary.Also)
	}
	in.Violations = nil
	if d := Summarize(in); d.Summary.ExitCode != models.ExitInterrupted {
		t.Errorf("interrupt + threshold: exit %d, want %d", d.Summary.ExitCode, models.ExitInterrupted)
	}
	in.Interrupted, in.Err = false, nil
	if d := Summarize(in); d.Summary.ExitCode != models.ExitThresholds || d.Summary.Verdict != models.VerdictThresholdsFailed {
		t.Errorf("threshold: %s exit %d", d.Summary.Verdict, d.Summary.ExitCode)
	}
	in.Err, in.Usage = errors.New("bad flag"), true
	if d := Summarize(in); d.Summary.ExitCode != models.ExitUsage || d.Summary.Error != "bad flag" {
		t.Errorf("usage: exit %d error %q", d.Summary.ExitCode, d.Summary.Error)
	}
}

// A scenario that names its invariants is held to those: others are counted,
// not held against the run, and expect names the one it wants.
func TestSummarizeHeldInvariants(t *testing.T) {
	sc := &scenarios.Scenario{Invariants: []string{oracle.ReplayListOwnership}, Expect: oracle.ReplayListOwnership}
	in := inputs(sc)
	in.Violations = []oracle.Violation{leak(oracle.ReplayContentOwnership, in.Start)}
	d := Summarize(in)
	if d.Summary.ExitCode != models.ExitPass || d.Summary.IgnoredViolations != 1 || d.Summary.ExpectMet {
		t.Errorf("other invariant: exit %d ignored %d expect met %v", d.Summary.ExitCode, d.Summary.IgnoredViolations, d.Summary.ExpectMet)
	}
	in.Violations = append(in.Violations, leak(oracle.ReplayListOwnership, in.Start))
	if d := Summarize(in); d.Summary.ExitCode != models.ExitViolation || !d.Summary.ExpectMet || len(d.Violations) != 1 {
		t.Errorf("held invariant: exit %d expect met %v held %d", d.Summary.ExitCode, d.Summary.ExpectMet, len(d.Violations))
	}
}

// What was not judged is never passed: an invariant that judged less than
// its required share makes the run not-judged (exit 3) with the reason.
func TestSummarizeNotJudged(t *testing.T) {
	in := inputs(&scenarios.Scenario{})
	in.Stats.Judgement[oracle.ReplayContentOwnership] = oracle.Judgement{Judged: 1, NotJudged: 9,
		Reasons: map[string]int64{"unreadable track": 9}, Examples: map[string]string{"unreadable track": "rec-9: not Ogg"}}
	d := Summarize(in)
	if d.Summary.Verdict != models.VerdictNotJudged || d.Summary.ExitCode != models.ExitTarget {
		t.Fatalf("%s exit %d", d.Summary.Verdict, d.Summary.ExitCode)
	}
	if !strings.Contains(d.Summary.Reason, "unreadable track") {
		t.Errorf("reason %q does not say why", d.Summary.Reason)
	}
}

// Chaos coverage that fell short fails the run (exit 4): its pass would
// prove nothing.
func TestSummarizeCoverageShortfall(t *testing.T) {
	in := inputs(&scenarios.Scenario{})
	in.Chaos = func(s *reports.Summary) { s.CoverageShortfalls = []string{"switch: 0 of 3 hits"} }
	if d := Summarize(in); d.Summary.ExitCode != models.ExitThresholds || !strings.Contains(d.Summary.Reason, "switch") {
		t.Errorf("shortfall: exit %d reason %q", d.Summary.ExitCode, d.Summary.Reason)
	}
}
