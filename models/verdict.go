package models

import (
	"fmt"
	"strings"
)

// Verdicts of a run.
const (
	VerdictPass             = "pass"
	VerdictViolation        = "violation"
	VerdictThresholdsFailed = "thresholds-failed"
	// VerdictNotJudged: the run could not judge enough of what it observed
	// (unreadable answers, failed fetches, lists that never came back), so
	// its silence about violations proves nothing.
	VerdictNotJudged   = "not-judged"
	VerdictError       = "error"
	VerdictInterrupted = "interrupted"
)

// Exit codes of telechaos run, report merge and report verdict.
const (
	ExitPass        = 0
	ExitViolation   = 1
	ExitUsage       = 2
	ExitTarget      = 3 // target or infrastructure failure, or too little judged
	ExitThresholds  = 4 // thresholds or chaos coverage requirements failed
	ExitInterrupted = 130
)

// DefaultMinJudged is the share of an invariant's observations that a run
// must have judged (not merely attempted) for its verdict to count, unless
// the scenario sets a judged threshold: a run that could read almost nothing
// of what the target answered has not shown that the target is correct.
const DefaultMinJudged = 0.9

// Outcome is what a run (or a merge of shards) found, as the verdict needs it.
type Outcome struct {
	// Violations is the number of distinct violations of the invariants the
	// run checks.
	Violations int
	// Interrupted: the user stopped the run (Ctrl-C, SIGTERM).
	Interrupted bool
	// Usage: the failure is a usage or configuration error.
	Usage bool
	// Failure is the first cause of a target or infrastructure failure
	// ("" none).
	Failure string
	// NotJudged names the invariants that judged less than their required
	// share, each with the reason ("recording-durability: judged 0 of 40 ...").
	NotJudged []string
	// ThresholdsFailed names the failed thresholds, CoverageShortfalls the
	// unmet chaos coverage requirements.
	ThresholdsFailed   []string
	CoverageShortfalls []string
}

// Decision is a verdict with its exit code and why.
type Decision struct {
	Verdict  string
	ExitCode int
	// Reason says in one line why the verdict is what it is.
	Reason string
	// Also lists the other conditions that held, which the verdict outranks
	// but reports still show (an interrupted run that found a violation).
	Also []string
}

// Decide is the one verdict rule. A found violation always decides (exit 1),
// whatever else happened: a CI rule "exit 3 = infrastructure, retry" must
// never retry a privacy leak away. Then, in order: an interrupt (130), a
// usage error (2), a target or infrastructure failure (3), too little judged
// (3), failed thresholds or coverage (4), pass (0).
func Decide(o Outcome) Decision {
	var conds []struct {
		verdict string
		code    int
		reason  string
	}
	add := func(v string, code int, reason string) {
		conds = append(conds, struct {
			verdict string
			code    int
			reason  string
		}{v, code, reason})
	}
	if o.Violations > 0 {
		add(VerdictViolation, ExitViolation, fmt.Sprintf("%d distinct invariant violation%s", o.Violations, plural(o.Violations)))
	}
	if o.Interrupted {
		add(VerdictInterrupted, ExitInterrupted, "interrupted: arrivals stopped, calls in flight ended")
	}
	if o.Failure != "" {
		// The cause often already names its class (harness.ErrTarget's
		// text): say it once.
		prefixed := func(class string) string {
			if strings.HasPrefix(o.Failure, class+":") {
				return o.Failure
			}
			return class + ": " + o.Failure
		}
		if o.Usage {
			add(VerdictError, ExitUsage, prefixed("configuration error"))
		} else {
			add(VerdictError, ExitTarget, prefixed("target or infrastructure failure"))
		}
	}
	if len(o.NotJudged) > 0 {
		add(VerdictNotJudged, ExitTarget, "not judged: "+strings.Join(o.NotJudged, "; "))
	}
	if len(o.ThresholdsFailed) > 0 {
		add(VerdictThresholdsFailed, ExitThresholds, "thresholds failed: "+strings.Join(o.ThresholdsFailed, "; "))
	}
	if len(o.CoverageShortfalls) > 0 {
		add(VerdictThresholdsFailed, ExitThresholds, "chaos coverage not met: "+strings.Join(o.CoverageShortfalls, "; "))
	}
	if len(conds) == 0 {
		return Decision{Verdict: VerdictPass, ExitCode: ExitPass, Reason: "every checked invariant judged, no violation, thresholds met"}
	}
	d := Decision{Verdict: conds[0].verdict, ExitCode: conds[0].code, Reason: conds[0].reason}
	for _, c := range conds[1:] {
		d.Also = append(d.Also, c.reason)
	}
	return d
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
