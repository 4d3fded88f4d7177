// Package verdict turns what a run measured into the rows a report judges:
// the scenario's thresholds evaluated on the run's figures. It reads figures,
// never the run's live state, so it is testable alone and a merge or a
// Prometheus verdict can feed it the same way.
package verdict

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// Figures are what a run measured that a threshold can bound.
type Figures struct {
	// Latency returns the stat (p50, p90, p95, p99, max) of one timed op and
	// its sample count; a count of 0 means the op never completed.
	Latency func(op, stat string) (time.Duration, int)
	// Requests and RequestErrors count requests to the target, access probes
	// excluded (a denied probe is the right answer, not an error).
	Requests, RequestErrors int64
	// FramesSent and FramesAcked count media frames in calls that ended.
	FramesSent, FramesAcked int64
	// Calls counts calls set up (connected with media, ended without).
	Calls   int64
	Elapsed time.Duration
}

// ErrNoSamples: the figure a threshold bounds was never measured.
var ErrNoSamples = errors.New("no samples: the operation never completed")

// IsJudged says whether metric is a judged share (judged or
// judged.<invariant>): it decides whether the run's verdict counts (exit 3
// when short), not a threshold of exit 4; Scenario.MinJudged reads it.
func IsJudged(metric string) bool {
	return metric == "judged" || strings.HasPrefix(metric, "judged.")
}

// Thresholds judges the scenario's thresholds (judged shares excepted) on
// the run's figures. The scenario validated them with file and line; one
// that does not read here anyway keeps an honest failed row with its reason.
func Thresholds(ts []scenarios.Threshold, f Figures) []reports.Threshold {
	out := make([]reports.Threshold, 0, len(ts))
	for _, t := range ts {
		if IsJudged(t.Metric) {
			continue
		}
		out = append(out, one(t, f))
	}
	return out
}

func one(t scenarios.Threshold, f Figures) reports.Threshold {
	rt := reports.Threshold{Metric: t.Metric, Stat: t.StatOrDefault(), Limit: limitText(t)}
	minV, maxV, err := t.Limits()
	if err == nil && minV == nil && maxV == nil {
		err = fmt.Errorf("threshold %s: needs max or min", t.Metric)
	}
	if err != nil {
		rt.Note = err.Error()
		return rt
	}
	rt.Min, rt.Max = minV, maxV
	if err := value(&rt, f); err != nil {
		rt.Note = err.Error()
		return rt
	}
	rt.Pass = (maxV == nil || rt.Value <= *maxV) && (minV == nil || rt.Value >= *minV)
	return rt
}

// value fills the threshold's value, its parts (so merged shards add them)
// and a note saying what it was computed from.
func value(rt *reports.Threshold, f Figures) error {
	ratio := func(num, den int64, what string) error {
		if den <= 0 {
			return ErrNoSamples
		}
		rt.Num, rt.Den = float64(num), float64(den)
		rt.Value = rt.Num / rt.Den
		rt.Note = what
		return nil
	}
	switch m := rt.Metric; {
	case strings.HasPrefix(m, "latency."):
		if f.Latency == nil {
			return ErrNoSamples
		}
		d, n := f.Latency(strings.TrimPrefix(m, "latency."), rt.Stat)
		if n == 0 {
			return ErrNoSamples
		}
		rt.Value, rt.Note = d.Seconds(), fmt.Sprintf("%d samples", n)
		return nil
	case m == "error_rate":
		errs := max(f.RequestErrors, 0)
		return ratio(errs, f.Requests, fmt.Sprintf("%d of %d requests (probes excluded)", errs, f.Requests))
	case m == "media_loss":
		lost := max(f.FramesSent-f.FramesAcked, 0)
		return ratio(lost, f.FramesSent, fmt.Sprintf("%d acknowledged of %d sent in ended calls", f.FramesAcked, f.FramesSent))
	case m == "setup_rate":
		secs := f.Elapsed.Seconds()
		if secs <= 0 {
			return ErrNoSamples
		}
		rt.Num, rt.Den = float64(f.Calls), secs
		rt.Value, rt.Note = float64(f.Calls)/secs, fmt.Sprintf("%d calls in %.1fs", f.Calls, secs)
		return nil
	}
	return fmt.Errorf("unknown metric %s", rt.Metric)
}

// limitText is the threshold's limit as written ("max 500ms, min 0.1").
func limitText(t scenarios.Threshold) string {
	var parts []string
	if t.Max != nil {
		parts = append(parts, "max "+*t.Max)
	}
	if t.Min != nil {
		parts = append(parts, "min "+*t.Min)
	}
	return strings.Join(parts, ", ")
}
