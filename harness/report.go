package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"telechaos/harness/oracle"
	"telechaos/models"
	"telechaos/reports"
)

// maxEvidence bounds the evidence files of one run; the summary still lists
// every distinct violation.
const maxEvidence = 200

// finish decides the verdict and fills res.Summary.
func (r *run) finish(ctx context.Context, res *Result, runErr error) {
	sc := r.sc
	st := r.or.Stats()
	viols := r.or.Violations()
	// A scenario that names its invariants is judged on those only; others
	// found on the way are counted, not held against the run.
	ignored := 0
	if len(sc.Invariants) > 0 {
		kept := viols[:0:0]
		for _, v := range viols {
			if slices.Contains(sc.Invariants, v.Invariant) {
				kept = append(kept, v)
			} else {
				ignored++
			}
		}
		viols = kept
	}
	res.Violations = viols
	if fv := r.firstViol.Load(); fv > 0 {
		res.FirstViolation = time.Duration(fv - 1)
	} else if len(viols) > 0 {
		res.FirstViolation = viols[0].At.Sub(r.start)
	}
	s := &reports.Summary{
		RunID: r.cfg.RunID, Seed: sc.Seed, Scenario: sc.Name, Target: targetName(sc.Target),
		Bugs: append([]string{}, sc.Bugs...), Media: sc.Media, StartedAt: r.start.UTC(),
		DurationSeconds: time.Since(r.start).Seconds(), Repro: r.repro(),
		Invariants:            sc.Invariants,
		ViolationsByInvariant: map[string]int{},
		Latency:               map[string]reports.Latency{},
		Violations:            []reports.Violation{},
		Expect:                sc.Expect,
		IgnoredViolations:     ignored,
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
		if i < maxEvidence {
			rv.Evidence = reports.EvidenceFile(i + 1)
		}
		s.Violations = append(s.Violations, rv)
		s.ViolationsByInvariant[v.Invariant]++ // distinct violations
	}
	if res.FirstViolation >= 0 {
		f := res.FirstViolation.Seconds()
		s.FirstViolationSeconds = &f
	}
	c := &r.cnt
	s.Counts = reports.Counts{
		Users:              int(c.patients.Load()) + len(r.clinicians),
		Patients:           int(c.patients.Load()),
		Clinicians:         len(r.clinicians),
		ArrivalsDropped:    int(c.dropped.Load()),
		Consultations:      int(c.consultations.Load()),
		CallsConnected:     int(c.callsConnected.Load()),
		CallsEnded:         int(c.callsEnded.Load()),
		CallsAbandoned:     int(c.callsAbandoned.Load()),
		CallsFailed:        int(c.callsFailed.Load()),
		Switches:           int(c.switches.Load()),
		ReplaysListed:      int(c.replaysListed.Load()),
		ReplaysFetched:     int(c.replaysFetched.Load()),
		TracksFetched:      int(c.tracksFetched.Load()),
		FramesSent:         c.framesSent.Load(),
		FramesAcked:        c.framesAcked.Load(),
		FramesReceivedLive: c.framesReceived.Load(),
		FramesChecked:      int(st.FramesChecked),
		LiveFramesChecked:  int(st.LiveFramesChecked),
		UntaggedFrames:     int(st.UntaggedFrames),
		Probes:             int(c.probes.Load()),
		ProbesSkipped:      int(c.probesSkipped.Load()),
		DurabilityChecked:  int(st.DurabilityChecked),
		Operations:         int(c.ops.Load()),
		OperationErrors:    int(c.opErrors.Load()),
		ProbesDenied:       int(c.probeDenied.Load()),
	}
	for _, op := range LatencyOps {
		l := r.met.LatencyStats(op)
		if l.Count == 0 {
			continue
		}
		s.Latency[op] = reports.Latency{Count: l.Count, P50: l.P50.Seconds(), P90: l.P90.Seconds(),
			P95: l.P95.Seconds(), P99: l.P99.Seconds(), Max: l.Max.Seconds()}
	}
	s.LatencyHistograms = r.met.LatencyHistograms()
	s.Thresholds = r.evaluateThresholds()
	var failed []string
	for _, t := range s.Thresholds {
		if !t.Pass {
			failed = append(failed, t.FailureLine())
		}
	}
	if r.chaos != nil {
		r.fillChaos(s)
		res.Chaos = r.chaosReport()
	}
	var short []string
	s.Judgement, short = judgement(st, sc)

	interrupted := errors.Is(runErr, context.Canceled) || ctx.Err() != nil
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
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		o.Failure, o.Usage = runErr.Error(), errors.Is(runErr, ErrConfig)
		s.Error = runErr.Error()
	}
	if interrupted {
		s.Interrupted = true
		if s.Error == "" {
			s.Error = "interrupted: arrivals stopped, calls in flight ended, report written"
		}
	}
	d := models.Decide(o)
	s.Verdict, res.ExitCode, s.Reason, s.Also = d.Verdict, d.ExitCode, d.Reason, d.Also
	s.ExitCode = res.ExitCode
	s.ExpectMet = expectMet(sc.Expect, s)
	res.Summary = s
	r.progress(true)
	r.tlMu.Lock()
	s.Timeline = append([]reports.Sample{}, r.timeline...)
	r.tlMu.Unlock()
}

// expectMet: "pass" (or empty) wants a passing run; an invariant id wants at
// least one violation of it.
func expectMet(expect string, s *reports.Summary) bool {
	switch expect {
	case "", "pass":
		return s.Verdict == reports.VerdictPass
	}
	return s.ViolationsByInvariant[expect] > 0
}

func targetName(t string) string {
	if t == "" {
		return TargetEmbedded
	}
	return t
}

// repro is the one-line command that replays this run.
func (r *run) repro() string {
	sc := r.sc
	parts := []string{"telechaos", "run", "--scenario", shellQuote(r.cfg.ScenarioRef), "--seed", strconv.FormatUint(sc.Seed, 10),
		"--users", strconv.Itoa(sc.Population.Patients)}
	if sc.Target != "" && sc.Target != TargetEmbedded {
		parts = append(parts, "--target", shellQuote(sc.Target))
	}
	for _, b := range sc.Bugs {
		parts = append(parts, "--bug", shellQuote(b))
	}
	if !sc.Media {
		parts = append(parts, "--media=false")
	}
	for _, a := range r.cfg.ReproArgs {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeReport writes the report files for res.
func (r *run) writeReport(res *Result) error {
	var ev []reports.Evidence
	for i, v := range res.Violations {
		if i >= maxEvidence {
			break
		}
		ev = append(ev, reports.Evidence{
			N: i + 1, RunID: r.cfg.RunID, Invariant: v.Invariant, Repro: res.Summary.Repro, Violation: v,
			ReproTrace: res.Summary.Violations[i].ReproTrace,
			Summary: fmt.Sprintf("%s: %s (viewer %s, owner %s, recording %s, consultation %s)",
				v.Invariant, v.Detail, orDash(v.Viewer), orDash(v.Owner), orDash(v.Recording), orDash(v.Consultation)),
		})
	}
	if err := reports.Write(r.cfg.ReportDir, res.Summary, ev); err != nil {
		return err
	}
	return r.writeChaos()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
