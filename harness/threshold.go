package harness

import (
	"time"

	"github.com/telechaos/telechaos/harness/verdict"
	"github.com/telechaos/telechaos/reports"
)

// evaluateThresholds judges the scenario's thresholds on the run's figures.
func (r *run) evaluateThresholds() []reports.Threshold {
	return verdict.Thresholds(r.sc.Thresholds, r.figures())
}

// figures are the run's measurements that thresholds bound.
func (r *run) figures() verdict.Figures {
	calls := r.cnt.CallsConnected.Load()
	if r.media == nil {
		calls = r.cnt.CallsEnded.Load()
	}
	return verdict.Figures{
		Latency: func(op, stat string) (time.Duration, int) {
			s := r.met.LatencyStats(op)
			return s.Stat(stat), s.Count
		},
		Requests:      r.cnt.Ops.Load() - r.cnt.ProbeRequests.Load(),
		RequestErrors: r.cnt.OpErrors.Load() - r.cnt.ProbeDenied.Load(),
		FramesSent:    r.cnt.FramesSentEnded.Load(),
		FramesAcked:   r.cnt.FramesAcked.Load(),
		Calls:         calls,
		Elapsed:       time.Since(r.start),
	}
}
