package models

import (
	"slices"
	"strings"
	"testing"
)

func TestDecideViolationOutranksEverything(t *testing.T) {
	d := Decide(Outcome{Violations: 30, Interrupted: true, Failure: "target unreachable",
		NotJudged: []string{"recording-durability: judged 0 of 40"}, ThresholdsFailed: []string{"error_rate"}})
	if d.Verdict != VerdictViolation || d.ExitCode != ExitViolation {
		t.Fatalf("got %s exit %d, want violation exit 1", d.Verdict, d.ExitCode)
	}
	if len(d.Also) != 4 {
		t.Fatalf("the outranked conditions must be reported beside the verdict, got %q", d.Also)
	}
	for _, want := range []string{"interrupted", "unreachable", "not judged", "thresholds"} {
		if !slices.ContainsFunc(d.Also, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("Also %q misses %q", d.Also, want)
		}
	}
}

func TestDecideOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Outcome
		want string
		code int
	}{
		{"pass", Outcome{}, VerdictPass, ExitPass},
		{"interrupt over failure", Outcome{Interrupted: true, Failure: "x"}, VerdictInterrupted, ExitInterrupted},
		{"usage", Outcome{Failure: "bad flag", Usage: true}, VerdictError, ExitUsage},
		{"failure over not judged", Outcome{Failure: "x", NotJudged: []string{"y"}}, VerdictError, ExitTarget},
		{"not judged over thresholds", Outcome{NotJudged: []string{"y"}, ThresholdsFailed: []string{"z"}}, VerdictNotJudged, ExitTarget},
		{"thresholds", Outcome{ThresholdsFailed: []string{"z"}}, VerdictThresholdsFailed, ExitThresholds},
		{"coverage", Outcome{CoverageShortfalls: []string{"end under any: 0 < 1"}}, VerdictThresholdsFailed, ExitThresholds},
	} {
		d := Decide(tc.o)
		if d.Verdict != tc.want || d.ExitCode != tc.code || d.Reason == "" {
			t.Errorf("%s: got %s exit %d reason %q, want %s exit %d", tc.name, d.Verdict, d.ExitCode, d.Reason, tc.want, tc.code)
		}
	}
}

func TestInvariantTable(t *testing.T) {
	ids := InvariantIDs()
	if len(ids) != 5 || ids[0] != ReplayListOwnership || ids[4] != RecordingDurability {
		t.Fatalf("ids %v", ids)
	}
	for _, inv := range Invariants {
		if inv.Statement == "" || inv.Unit == "" {
			t.Errorf("%s has no statement or unit", inv.ID)
		}
		if got, ok := LookupInvariant(inv.ID); !ok || got != inv {
			t.Errorf("lookup %s", inv.ID)
		}
	}
	if _, ok := LookupInvariant("nope"); ok {
		t.Error("lookup of an unknown id succeeded")
	}
}

// A failure whose cause already names its class says it once.
func TestDecideNamesTheFailureClassOnce(t *testing.T) {
	d := Decide(Outcome{Failure: "target or infrastructure failure: health check: connection refused"})
	if d.Reason != "target or infrastructure failure: health check: connection refused" {
		t.Errorf("reason %q", d.Reason)
	}
	d = Decide(Outcome{Failure: "health check: connection refused"})
	if d.Reason != "target or infrastructure failure: health check: connection refused" {
		t.Errorf("reason %q", d.Reason)
	}
}
