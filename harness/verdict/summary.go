package verdict

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// MaxEvidence bounds the evidence files of one run; the summary still lists
// every distinct violation.
const MaxEvidence = 200

// Inputs is everything a run hands over to be judged: the scenario, what the
// oracle found and judged, the run's figures and how it ended. Summarize
// reads nothing else.
type Inputs struct {
	Scenario *scenarios.Scenario
	RunID    string
	Target   string // as the summary names it ("embedded", a URL)
	Repro    string // the one-line command that replays the run
	Start    time.Time
	End      time.Time

	Stats      oracle.Stats
	Violations []oracle.Violation
	// FirstViolation is the time from start to the first violation as the
	// run saw it; <= 0 means read it from the first violation found.
	FirstViolation time.Duration

	Counts     reports.Counts
	Latency    map[string]reports.Latency
	Histograms map[string]*reports.Histogram
	Figures    Figures

	// Chaos, when the run had faults, fills the fault windows and coverage
	// (CoverageShortfalls counts against the run: exit 4).
	Chaos func(*reports.Summary)

	// Err is why the run failed, if it did; Usage marks a configuration
	// error (exit 2). Interrupted: SIGINT or a cancelled context.
	Err         error
	Usage       bool
	Interrupted bool
}

// Decided is a judged run: its summary and the violations it is held to
// (those of the scenario's invariants).
type Decided struct {
	Summary        *reports.Summary
	Violations     []oracle.Violation
	FirstViolation time.Duration // -1: none
}

// Summarize judges a run: violations (those of the scenario's invariants, if
// it names some), thresholds, judgement coverage and chaos coverage, decided
// by models.Decide into one verdict and exit code.
func Summarize(in Inputs) Decided {
	sc := in.Scenario
	viols, ignored := held(in.Violations, sc.Invariants)
	first := time.Duration(-1)
	switch {
	case in.FirstViolation > 0:
		first = in.FirstViolation
	case len(viols) > 0:
		first = viols[0].At.Sub(in.Start)
	}
	s := &reports.Summary{
		RunID: in.RunID, Seed: sc.Seed, Scenario: sc.Name, Target: in.Target,
		Bugs: append([]string{}, sc.Bugs...), Media: sc.Media, StartedAt: in.Start.UTC(),
		DurationSeconds: in.End.Sub(in.Start).Seconds(), Repro: in.Repro,
		Invariants:            sc.Invariants,
		ViolationsByInvariant: map[string]int{},
		Latency:               in.Latency,
		LatencyHistograms:     in.Histograms,
		Violations:            []reports.Violation{},
		Expect:                sc.Expect,
		IgnoredViolations:     ignored,
		Counts:                in.Counts,
	}
	if s.Latency == nil {
		s.Latency = map[string]reports.Latency{}
	}
	if len(s.Invariants) == 0 {
		s.Invariants = append([]string{}, oracle.Invariants...)
	}
	for _, inv := range oracle.Invariants {
		s.ViolationsByInvariant[inv] = 0
	}
	for i, v := range viols {
		rv := reports.Violation{Invariant: v.Invariant, Viewer: v.Viewer, Owner: v.Owner, Owners: v.Owners,
			Recording: v.Recording, Consultation: v.Consultation, Track: v.Track, At: v.At.UTC(), Detail: v.Detail}
		if i < MaxEvidence {
			rv.Evidence = reports.EvidenceFile(i + 1)
		}
		s.Violations = append(s.Violations, rv)
		s.ViolationsByInvariant[v.Invariant]++ // distinct violations
	}
	if first >= 0 {
		f := first.Seconds()
		s.FirstViolationSeconds = &f
	}
	s.Counts.FramesChecked = int(in.Stats.FramesChecked)
	s.Counts.LiveFramesChecked = int(in.Stats.LiveFramesChecked)
	s.Counts.UntaggedFrames = int(in.Stats.UntaggedFrames)
	s.Counts.DurabilityChecked = int(in.Stats.DurabilityChecked)
	s.Authz = in.Stats.Authz

	s.Thresholds = Thresholds(sc.Thresholds, in.Figures)
	var failed []string
	for _, t := range s.Thresholds {
		if !t.Pass {
			failed = append(failed, t.FailureLine())
		}
	}
	if in.Chaos != nil {
		in.Chaos(s)
	}
	var short []string
	s.Judgement, short = Judgement(in.Stats, sc)

	interrupted := in.Interrupted || errors.Is(in.Err, context.Canceled)
	o := models.Outcome{
		Violations:       len(viols),
		Interrupted:      interrupted,
		NotJudged:        short,
		ThresholdsFailed: failed,
		// A scenario that requires coverage fails (exit 4) when its faults
		// did not meet the risky paths often enough: its pass would prove
		// nothing.
		CoverageShortfalls: s.CoverageShortfalls,
	}
	if in.Err != nil && !errors.Is(in.Err, context.Canceled) {
		o.Failure, o.Usage = in.Err.Error(), in.Usage
		s.Error = in.Err.Error()
	}
	if interrupted {
		s.Interrupted = true
		if s.Error == "" {
			s.Error = "interrupted: arrivals stopped, calls in flight ended, report written"
		}
	}
	d := models.Decide(o)
	s.Verdict, s.ExitCode, s.Reason, s.Also = d.Verdict, d.ExitCode, d.Reason, d.Also
	s.ExpectMet = ExpectMet(sc.Expect, s)
	return Decided{Summary: s, Violations: viols, FirstViolation: first}
}

// held keeps the violations of the scenario's invariants (all of them when
// it names none); others found on the way are counted, not held against
// the run.
func held(viols []oracle.Violation, invariants []string) (kept []oracle.Violation, ignored int) {
	if len(invariants) == 0 {
		return viols, 0
	}
	for _, v := range viols {
		if slices.Contains(invariants, v.Invariant) {
			kept = append(kept, v)
		} else {
			ignored++
		}
	}
	return kept, ignored
}

// ExpectMet: "pass" (or empty) wants a passing run; an invariant id wants at
// least one violation of it.
func ExpectMet(expect string, s *reports.Summary) bool {
	switch expect {
	case "", "pass":
		return s.Verdict == reports.VerdictPass
	}
	return s.ViolationsByInvariant[expect] > 0
}

// Evidence builds the evidence files of a decided run (at most MaxEvidence),
// each with the run's repro command and the violation's repro trace.
func Evidence(runID string, s *reports.Summary, viols []oracle.Violation) []reports.Evidence {
	var ev []reports.Evidence
	for i, v := range viols {
		if i >= MaxEvidence || i >= len(s.Violations) {
			break
		}
		ev = append(ev, reports.Evidence{
			N: i + 1, RunID: runID, Invariant: v.Invariant, Repro: s.Repro, Violation: v,
			ReproTrace: s.Violations[i].ReproTrace,
			Summary: fmt.Sprintf("%s: %s (viewer %s, owner %s, recording %s, consultation %s)",
				v.Invariant, v.Detail, orDash(v.Viewer), orDash(v.Owner), orDash(v.Recording), orDash(v.Consultation)),
		})
	}
	return ev
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
