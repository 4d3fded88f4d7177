package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/telechaos/telechaos/reports"
)

// The verdict block shows each invariant's judgement (a 0 that judged nothing
// is not printed as a pass), the summary's Reason and Also lines, and every
// coverage shortfall with why it matters; every line fits 80 columns.
func TestPrintVerdictShowsJudgementReasonAlsoAndCoverage(t *testing.T) {
	inv := reports.AllInvariants
	s := &reports.Summary{
		Verdict: reports.VerdictNotJudged, ExitCode: 3, Scenario: "x", Seed: 2,
		Reason: "not judged: " + inv[0] + " judged 3 of 40 (8%, 90% required): 37 no-answer",
		Also:   []string{"chaos coverage not met: coverage switch under media-loss: 0, want >= 5"},
		Judgement: map[string]reports.Judgement{
			inv[0]: {Status: reports.JudgementShort, Judged: 3, NotJudged: 37, Share: 3.0 / 40, Required: 0.9,
				Reasons: map[string]int64{"no-answer": 37}, Examples: map[string]string{"no-answer": "GET /replays: timeout"}},
			inv[1]: {Status: reports.JudgementJudged, Judged: 40, Share: 1, Required: 0.9},
			inv[2]: {Status: reports.JudgementNotExercised, Share: 1, Required: 0.9},
			inv[3]: {Status: reports.JudgementNotChecked},
		},
		Invariants:         []string{inv[0], inv[1], inv[2], inv[4]},
		CoverageShortfalls: []string{"coverage switch under media-loss: 0, want >= 5"},
	}
	var b bytes.Buffer
	printVerdict(&b, s, "")
	out := b.String()
	for _, want := range []string{
		"reason: not judged: " + inv[0],
		"also: chaos coverage not met",
		"judgement",
		"NOT JUDGED 3/40 (8% < 90%)",
		"not judged: 37 no-answer, first: GET /replays: timeout",
		"judged 40/40",
		"not exercised: nothing to judge",
		"not checked",
		"chaos coverage not met: the faults did not reach these paths",
		"  ! coverage switch under media-loss: 0, want >= 5",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 80 {
			t.Errorf("wider than 80 columns: %q", l)
		}
		// An invariant that judged nothing must not read as "0" (passed).
		if strings.HasPrefix(strings.TrimSpace(l), inv[2]) || strings.HasPrefix(strings.TrimSpace(l), inv[3]) {
			if f := strings.Fields(l); len(f) < 2 || f[1] != "-" {
				t.Errorf("row %q: want - for violations", l)
			}
		}
	}
	// A long reason wraps instead of running past 80 columns.
	var w bytes.Buffer
	printWrapped(&w, "reason: ", strings.Repeat("threshold latency.switch p95 failed; ", 8))
	for _, l := range strings.Split(strings.TrimRight(w.String(), "\n"), "\n") {
		if len(l) > 80 || !strings.HasPrefix(l, "reason: ") && !strings.HasPrefix(l, "        ") {
			t.Errorf("wrapped line %q", l)
		}
	}
}
