package harness

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"telechaos/models"
	"telechaos/reports"
	"telechaos/scenarios"
)

// threshold is a parsed scenarios.Threshold.
type threshold struct {
	metric, stat string
	op           string // for latency.<op>
	max, min     *float64
	limit        string
}

var latencyStats = map[string]bool{"p50": true, "p90": true, "p95": true, "p99": true, "max": true}

// parseThreshold checks a threshold and reads its limits (seconds for durations).
func parseThreshold(t scenarios.Threshold) (threshold, error) {
	p := threshold{metric: t.Metric, stat: t.Stat}
	switch {
	case strings.HasPrefix(t.Metric, "latency."):
		p.op = strings.TrimPrefix(t.Metric, "latency.")
		known := false
		for _, op := range LatencyOps {
			known = known || op == p.op
		}
		if !known {
			return p, fmt.Errorf("metric %q: unknown op %q (want one of %s)", t.Metric, p.op, strings.Join(LatencyOps, ", "))
		}
		if p.stat == "" {
			p.stat = "p95"
		}
		if !latencyStats[p.stat] {
			return p, fmt.Errorf("metric %s: unknown stat %q (want p50, p90, p95, p99 or max)", t.Metric, p.stat)
		}
	case t.Metric == "error_rate", t.Metric == "media_loss", t.Metric == "setup_rate":
	case isJudged(t.Metric):
		if inv := strings.TrimPrefix(t.Metric, "judged."); inv != "judged" {
			if _, ok := models.LookupInvariant(inv); !ok {
				return p, fmt.Errorf("metric %q: unknown invariant %q", t.Metric, inv)
			}
		}
		if t.Max != nil || t.Min == nil {
			return p, fmt.Errorf("metric %s: takes min only (the share of observations judged)", t.Metric)
		}
	default:
		return p, fmt.Errorf("unknown metric %q (want latency.<op>, error_rate, media_loss, setup_rate or judged[.<invariant>])", t.Metric)
	}
	// One reading of the bounds, the scenario's (validated with file and
	// line): a second parser here had drifted (" 500ms" passed validation
	// and was refused here).
	minV, maxV, err := t.Limits()
	if err != nil {
		return p, err
	}
	p.min, p.max = minV, maxV
	if p.max == nil && p.min == nil {
		return p, fmt.Errorf("metric %s: needs max or min", t.Metric)
	}
	if isJudged(t.Metric) && !(*p.min >= 0 && *p.min <= 1) {
		return p, fmt.Errorf("metric %s: min %v must be a share in [0,1]", t.Metric, *p.min)
	}
	var parts []string
	if t.Max != nil {
		parts = append(parts, "max "+*t.Max)
	}
	if t.Min != nil {
		parts = append(parts, "min "+*t.Min)
	}
	p.limit = strings.Join(parts, ", ")
	return p, nil
}

// isJudged says whether metric is a judged share (judged or
// judged.<invariant>): it decides whether the run's verdict counts (exit 3
// when short), not a threshold of exit 4: Scenario.MinJudged reads it.
func isJudged(metric string) bool { return metric == "judged" || strings.HasPrefix(metric, "judged.") }

// evaluateThresholds judges the scenario's thresholds on the run's figures.
func (r *run) evaluateThresholds() []reports.Threshold {
	out := make([]reports.Threshold, 0, len(r.sc.Thresholds))
	for _, t := range r.sc.Thresholds {
		if isJudged(t.Metric) {
			continue
		}
		p, err := parseThreshold(t)
		if err != nil { // validated before the run; keep the report honest anyway
			out = append(out, reports.Threshold{Metric: t.Metric, Stat: t.Stat, Note: err.Error()})
			continue
		}
		v, note, err := r.thresholdValue(p)
		rt := reports.Threshold{Metric: p.metric, Stat: p.stat, Limit: p.limit, Max: p.max, Min: p.min, Value: v, Note: note, Pass: true}
		if err != nil {
			rt.Pass, rt.Note = false, err.Error()
		} else {
			if p.max != nil && v > *p.max {
				rt.Pass = false
			}
			if p.min != nil && v < *p.min {
				rt.Pass = false
			}
		}
		out = append(out, rt)
	}
	return out
}

var errNoSamples = errors.New("no samples: the operation never completed")

func (r *run) thresholdValue(p threshold) (float64, string, error) {
	switch {
	case p.op != "":
		s := r.met.LatencyStats(p.op)
		if s.Count == 0 {
			return 0, "", errNoSamples
		}
		var d time.Duration
		switch p.stat {
		case "p50":
			d = s.P50
		case "p90":
			d = s.P90
		case "p95":
			d = s.P95
		case "p99":
			d = s.P99
		case "max":
			d = s.Max
		}
		return d.Seconds(), fmt.Sprintf("%d samples", s.Count), nil
	case p.metric == "error_rate":
		ops := r.cnt.ops.Load() - r.cnt.probeRequests.Load()
		errs := r.cnt.opErrors.Load() - r.cnt.probeDenied.Load()
		if ops <= 0 {
			return 0, "", errNoSamples
		}
		return float64(max(errs, 0)) / float64(ops), fmt.Sprintf("%d of %d requests (probes excluded)", errs, ops), nil
	case p.metric == "media_loss":
		sent := r.cnt.framesSentEnded.Load()
		if sent == 0 {
			return 0, "", errNoSamples
		}
		acked := r.cnt.framesAcked.Load()
		return max(0, 1-float64(acked)/float64(sent)), fmt.Sprintf("%d acknowledged of %d sent in ended calls", acked, sent), nil
	case p.metric == "setup_rate":
		secs := time.Since(r.start).Seconds()
		calls := r.cnt.callsConnected.Load()
		if r.media == nil {
			calls = r.cnt.callsEnded.Load()
		}
		return float64(calls) / secs, fmt.Sprintf("%d calls in %.1fs", calls, secs), nil
	}
	return 0, "", fmt.Errorf("unknown metric %s", p.metric)
}
