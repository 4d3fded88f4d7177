package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/harness/repro"
	"github.com/telechaos/telechaos/harness/verdict"
	"github.com/telechaos/telechaos/reports"
)

// finish decides the verdict and fills res.
func (r *run) finish(ctx context.Context, res *Result, runErr error) {
	var first time.Duration
	if fv := r.firstViol.Load(); fv > 0 {
		first = time.Duration(fv - 1)
	}
	latency := map[string]reports.Latency{}
	for _, op := range metrics.LatencyOps {
		if l := r.met.LatencyStats(op); l.Count > 0 {
			latency[op] = reports.Latency{Count: l.Count, P50: l.P50.Seconds(), P90: l.P90.Seconds(),
				P95: l.P95.Seconds(), P99: l.P99.Seconds(), Max: l.Max.Seconds()}
		}
	}
	in := verdict.Inputs{
		Scenario: r.sc, RunID: r.cfg.RunID, Target: targetName(r.sc.Target), Repro: r.repro(),
		Start: r.start, End: time.Now(),
		Stats: r.or.Stats(), Violations: r.or.Violations(), FirstViolation: first,
		Counts: r.counts(), Latency: latency, Histograms: r.met.LatencyHistograms(), Figures: r.figures(),
		Err: runErr, Usage: errors.Is(runErr, ErrConfig),
		Interrupted: errors.Is(runErr, context.Canceled) || ctx.Err() != nil,
	}
	if r.chaos != nil {
		in.Chaos = r.chaos.Fill
		res.Chaos = r.chaosReport()
	}
	d := verdict.Summarize(in)
	res.Summary, res.Violations, res.FirstViolation, res.ExitCode = d.Summary, d.Violations, d.FirstViolation, d.Summary.ExitCode
	r.progress(true)
	d.Summary.Timeline = r.timeline.Samples()
}

// counts are the run's counters as the summary reports them (the oracle's
// own counts are added by the verdict).
func (r *run) counts() reports.Counts {
	c := r.cnt
	return reports.Counts{
		Users:              int(c.Patients.Load()) + len(r.vu.Clinicians),
		Patients:           int(c.Patients.Load()),
		Clinicians:         len(r.vu.Clinicians),
		ArrivalsDropped:    int(c.Dropped.Load()),
		Consultations:      int(c.Consultations.Load()),
		CallsConnected:     int(c.CallsConnected.Load()),
		CallsEnded:         int(c.CallsEnded.Load()),
		CallsAbandoned:     int(c.CallsAbandoned.Load()),
		CallsFailed:        int(c.CallsFailed.Load()),
		Switches:           int(c.Switches.Load()),
		ReplaysListed:      int(c.ReplaysListed.Load()),
		ReplaysFetched:     int(c.ReplaysFetched.Load()),
		TracksFetched:      int(c.TracksFetched.Load()),
		FramesSent:         c.FramesSent.Load(),
		FramesAcked:        c.FramesAcked.Load(),
		FramesReceivedLive: c.FramesReceived.Load(),
		Probes:             int(c.Probes.Load()),
		ProbesSkipped:      int(c.ProbesSkipped.Load()),
		Operations:         int(c.Ops.Load()),
		OperationErrors:    int(c.OpErrors.Load()),
		ProbesDenied:       int(c.ProbeDenied.Load()),
	}
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
	parts := []string{"telechaos", "run", "--scenario", repro.ShellQuote(r.cfg.ScenarioRef), "--seed", strconv.FormatUint(sc.Seed, 10),
		"--users", strconv.Itoa(sc.Population.Patients)}
	if sc.Target != "" && sc.Target != TargetEmbedded {
		parts = append(parts, "--target", repro.ShellQuote(sc.Target))
	}
	for _, b := range sc.Bugs {
		parts = append(parts, "--bug", repro.ShellQuote(b))
	}
	if !sc.Media {
		parts = append(parts, "--media=false")
	}
	for _, a := range r.cfg.ReproArgs {
		parts = append(parts, repro.ShellQuote(a))
	}
	return strings.Join(parts, " ")
}

// writeReport writes the report files for res, then appends summary.md to
// $GITHUB_STEP_SUMMARY when that is set (a failure there is a warning: the
// report itself is written).
func (r *run) writeReport(res *Result) error {
	linkTraces(r.cfg.ReportDir, res.Summary)
	ev := verdict.Evidence(r.cfg.RunID, res.Summary, res.Violations)
	for i := range ev {
		if n := ev[i].N - 1; n >= 0 && n < len(res.Summary.Violations) {
			ev[i].TraceFile = res.Summary.Violations[n].TraceFile
		}
	}
	if err := reports.Write(r.cfg.ReportDir, res.Summary, ev); err != nil {
		return err
	}
	if err := reports.AppendStepSummary(os.Getenv(reports.StepSummaryEnv), res.Summary); err != nil {
		r.log.Warn("job summary not written", "env", reports.StepSummaryEnv, "err", err)
	}
	return r.writeChaos()
}

// linkTraces records, beside the repro commands package repro put in s, the
// minimised trace files relative to the report directory dir, which is what
// the report files link (the commands keep the path the run was given, for
// the terminal). repro writes dir/repro-N.trace and the command
// "telechaos repro " + ShellQuote(that path) + " ..."; a command of another
// shape is left unlinked rather than guessed at.
func linkTraces(dir string, s *reports.Summary) {
	if dir == "" || s == nil {
		return
	}
	s.TraceFiles = nil
	file := func(cmd string) string {
		for n := 1; n <= len(s.ReproTraces)+repro.MaxTraces; n++ {
			name := fmt.Sprintf("repro-%d.trace", n)
			if strings.HasPrefix(cmd, "telechaos repro "+repro.ShellQuote(filepath.Join(dir, name))+" ") {
				return name
			}
		}
		return ""
	}
	for _, cmd := range s.ReproTraces {
		if f := file(cmd); f != "" {
			s.TraceFiles = append(s.TraceFiles, f)
		}
	}
	for i := range s.Violations {
		if c := s.Violations[i].ReproTrace; c != "" {
			s.Violations[i].TraceFile = file(c)
		}
	}
}
