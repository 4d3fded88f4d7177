package harness

import (
	"context"

	"github.com/telechaos/telechaos/harness/repro"
	"github.com/telechaos/telechaos/harness/target"
)

// ReproTrace is one repro trace written after a run (see package repro).
type ReproTrace = repro.Trace

// ReproTimes is the --times of the repro command written to the report.
const ReproTimes = repro.Times

// writeReproTraces minimises the run's distinct violations into
// repro-N.trace files in the report directory (package repro) and records
// the repro commands in the summary. It does nothing without a report
// directory, with ReproBudget < 0, when the run was interrupted, or for a
// NewTarget run whose scenario names no reference a trace can replay
// against.
func (r *run) writeReproTraces(ctx context.Context, res *Result) {
	if r.cfg.ReportDir == "" || r.cfg.ReproBudget < 0 || ctx.Err() != nil {
		return
	}
	if r.cfg.NewTarget != nil && !replayable(r.sc.Target) {
		return // an opaque target: nothing to replay a trace against
	}
	repro.Write(ctx, r.reproRun(), r.cfg.ReportDir, r.cfg.ReproBudget, res.Violations, res.Summary)
}

// reproRun is what the run hands over for its repro traces.
func (r *run) reproRun() *repro.Run {
	rr := &repro.Run{Scenario: r.sc, Target: targetName(r.sc.Target), Ledger: r.ledger, History: &r.oplog,
		AllowedRemote: r.allowedRemote, Log: r.log}
	// Only a target the run opened with a Control (the embedded clinic, a
	// registered driver's) has its crashes and restarts in a trace: a
	// replay opens the same reference and gets its Control again; a URL
	// target cannot be crashed by a trace.
	if r.control != nil && r.cfg.NewTarget == nil {
		for _, w := range r.chaos.Windows() {
			if r.chaos.RestartsTarget(w) {
				rr.TargetFaults = append(rr.TargetFaults, w)
			}
		}
	}
	return rr
}

// replayable says whether a trace can be replayed against ref when the run
// talked to a target of RunConfig.NewTarget's: ref must name that system
// itself (a URL or another registered scheme's reference), not the embedded
// clinic the run did not start.
func replayable(ref string) bool {
	return ref != "" && ref != TargetEmbedded && target.Check(ref) == nil
}
