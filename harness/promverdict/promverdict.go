// Package promverdict computes a sharded run's verdict from what Prometheus
// holds of its shards (scraped --metrics-addr endpoints, or Pushgateway
// groups scraped with honor_labels): the client behind
// `telechaos report verdict --from-prometheus`. Violations are summed over
// shards and the scenario's thresholds, as scenarios parses them, are
// evaluated from the histograms; the verdict is models.Decide's, as in the
// run and report merge.
//
// Every query reads the last value of each series within the window
// (last_over_time), so it works after the shard processes have exited and
// their scraped series went stale; and it takes the max per shard before
// summing, so a shard that was both scraped and pushed counts once. The
// counters are cumulative from each shard's start, so their last value is the
// whole run (no rate() extrapolation).
//
// What Prometheus cannot give: media_loss and setup_rate are not exported
// (those thresholds fail with a note: use `report merge`); error_rate counts
// outcome=error over ok+error, leaving every denied answer out (probes are
// denied by design and are not labelled apart); latency percentiles
// interpolate within the histogram's 12 buckets (report merge uses finer
// ones); max is the upper bound of the highest non-empty bucket.
package promverdict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

var (
	// ErrProm: Prometheus could not be queried, answered something that is
	// not its API, or holds nothing for the run.
	ErrProm = errors.New("prometheus")
	// ErrInput: the query cannot be made (no URL, no run id, no scenario).
	ErrInput = errors.New("promverdict: invalid input")
)

// Defaults of a Query.
const (
	DefaultWindow  = 6 * time.Hour    // how far back to look for the run's series
	DefaultTimeout = 20 * time.Second // per Prometheus query
)

// Query names the run and the Prometheus to read it from.
type Query struct {
	URL    string        // Prometheus base URL, e.g. http://prometheus:9090
	RunID  string        // the run id the shards shared (label run_id)
	Window time.Duration // how far back to look (0: DefaultWindow)
	Shards int           // if > 0, fail unless this many shards reported
	// HTTPClient, if set, makes the queries (default: DefaultTimeout each).
	HTTPClient *http.Client
}

func (q Query) check(sc *scenarios.Scenario) error {
	switch {
	case q.URL == "":
		return fmt.Errorf("%w: no Prometheus URL", ErrInput)
	case q.RunID == "":
		return fmt.Errorf("%w: no run id", ErrInput)
	case sc == nil:
		return fmt.Errorf("%w: no scenario", ErrInput)
	case q.Shards < 0:
		return fmt.Errorf("%w: shards %d < 0", ErrInput, q.Shards)
	}
	if u, err := url.Parse(q.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: Prometheus URL %q: want http(s)://host[:port]", ErrInput, q.URL)
	}
	return nil
}

// Result is the verdict computed from Prometheus.
type Result struct {
	RunID, Scenario string
	Invariants      []string // judged ones; empty = all
	Shards          []string
	Operations      map[string]float64 // by outcome
	Violations      map[string]float64 // by invariant (judged ones)
	Ignored         float64            // violations of invariants the scenario does not judge
	Thresholds      []reports.Threshold
	Judgement       map[string]reports.Judgement // per invariant, from telechaos_(not_)judged_total
	Verdict         string
	ExitCode        int
	Reason          string   // models.Decide's
	Also            []string // the conditions the verdict outranks
}

// Verdict computes the verdict of run q.RunID of scenario sc (its
// thresholds and invariants, as parsed by scenarios) from the Prometheus at
// q.URL. Bad input is an error wrapping ErrInput; an unreachable Prometheus,
// an answer that is not its API, or no series of the run, one wrapping
// ErrProm. A violation is not an error: read Result.Verdict and ExitCode.
func Verdict(ctx context.Context, q Query, sc *scenarios.Scenario) (*Result, error) {
	if err := q.check(sc); err != nil {
		return nil, err
	}
	hc := q.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	pc := &client{base: strings.TrimRight(q.URL, "/"), hc: hc}
	if q.Window <= 0 {
		q.Window = DefaultWindow
	}
	win := duration(q.Window)
	sel := fmt.Sprintf(`run_id=%q`, q.RunID)
	last := func(metric, extra string) string {
		s := sel
		if extra != "" {
			s += "," + extra
		}
		return fmt.Sprintf("last_over_time(%s{%s}[%s])", metric, s, win)
	}
	res := &Result{RunID: q.RunID, Scenario: sc.Name, Invariants: sc.Invariants, Violations: map[string]float64{}}

	shards, err := pc.vector(ctx, fmt.Sprintf("count by (shard) (%s)", last("telechaos_operations_total", "")))
	if err != nil {
		return nil, err
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("%w: no telechaos_operations_total series with run_id %q in the last %s (was the run scraped or pushed?)", ErrProm, q.RunID, win)
	}
	for _, s := range shards {
		res.Shards = append(res.Shards, s.labels["shard"])
	}
	sort.Strings(res.Shards)
	if q.Shards > 0 && len(res.Shards) != q.Shards {
		return nil, fmt.Errorf("%w: %d shards reported for run %s (%s), want %d", ErrProm, len(res.Shards), q.RunID, strings.Join(res.Shards, ","), q.Shards)
	}

	ops, err := pc.vector(ctx, fmt.Sprintf("sum by (outcome) (max by (outcome, op, shard) (%s))", last("telechaos_operations_total", "")))
	if err != nil {
		return nil, err
	}
	res.Operations = map[string]float64{}
	for _, s := range ops {
		res.Operations[s.labels["outcome"]] = s.value
	}

	viols, err := pc.vector(ctx, fmt.Sprintf("sum by (invariant) (max by (invariant, shard) (%s))", last("telechaos_violations_total", "")))
	if err != nil {
		return nil, err
	}
	for _, s := range viols {
		inv := s.labels["invariant"]
		if len(sc.Invariants) > 0 && !slices.Contains(sc.Invariants, inv) {
			res.Ignored += s.value
			continue
		}
		res.Violations[inv] = s.value
	}

	// The judged shares, as the run judges them: an invariant that judged
	// less than its required share keeps the run from passing.
	judged, err := pc.vector(ctx, fmt.Sprintf("sum by (invariant) (max by (invariant, shard) (%s))", last("telechaos_judged_total", "")))
	if err != nil {
		return nil, err
	}
	notJudged, err := pc.vector(ctx, fmt.Sprintf("sum by (invariant) (max by (invariant, shard) (%s))", last("telechaos_not_judged_total", "")))
	if err != nil {
		return nil, err
	}
	byInv := func(ss []sample) map[string]float64 {
		m := map[string]float64{}
		for _, s := range ss {
			m[s.labels["invariant"]] = s.value
		}
		return m
	}
	var short []string
	res.Judgement, short = judgement(sc, byInv(judged), byInv(notJudged))

	var failed []string
	for _, t := range sc.Thresholds {
		if t.Metric == "judged" || strings.HasPrefix(t.Metric, "judged.") {
			continue // a required judged share, applied above
		}
		rt := threshold(ctx, pc, t, last, res.Operations)
		if !rt.Pass {
			failed = append(failed, rt.FailureLine())
		}
		res.Thresholds = append(res.Thresholds, rt)
	}
	var nViol float64
	for _, n := range res.Violations {
		nViol += n
	}
	// The one verdict rule, as the run and report merge use it.
	d := models.Decide(models.Outcome{Violations: int(math.Ceil(nViol)), NotJudged: short, ThresholdsFailed: failed})
	res.Verdict, res.ExitCode, res.Reason, res.Also = d.Verdict, d.ExitCode, d.Reason, d.Also
	return res, nil
}

// judgement builds the judgement table from the judged and not-judged
// counters (summed over shards), with the lines that keep the run from
// passing. The required share is the scenario's judged[.<invariant>] min, else
// models.DefaultMinJudged, as in the run.
func judgement(sc *scenarios.Scenario, judged, notJudged map[string]float64) (map[string]reports.Judgement, []string) {
	out := map[string]reports.Judgement{}
	var short []string
	for _, inv := range reports.AllInvariants {
		j := reports.Judgement{Judged: int64(judged[inv]), NotJudged: int64(notJudged[inv]), Required: sc.MinJudged(inv)}
		if line := j.Classify(inv, len(sc.Invariants) == 0 || slices.Contains(sc.Invariants, inv)); line != "" {
			short = append(short, line)
		}
		out[inv] = j
	}
	return out, short
}

// threshold evaluates one scenario threshold from the metrics.
func threshold(ctx context.Context, pc *client, t scenarios.Threshold, last func(metric, extra string) string, ops map[string]float64) reports.Threshold {
	rt := reports.Threshold{Metric: t.Metric, Stat: t.Stat, Pass: true}
	var parts []string
	for _, b := range []struct {
		name string
		s    *string
	}{{"max", t.Max}, {"min", t.Min}} {
		if b.s != nil {
			parts = append(parts, b.name+" "+*b.s)
		}
	}
	// The scenario's one reading of the bounds, as the run applies them.
	minV, maxV, err := t.Limits()
	if err != nil {
		rt.Pass, rt.Note = false, err.Error()
		return rt
	}
	rt.Max, rt.Min = maxV, minV
	rt.Limit = strings.Join(parts, ", ")
	err = func() error {
		switch {
		case strings.HasPrefix(t.Metric, "latency."):
			op := strings.TrimPrefix(t.Metric, "latency.")
			if !slices.Contains(metrics.LatencyOps, op) {
				return fmt.Errorf("unknown op %q", op)
			}
			if rt.Stat == "" {
				rt.Stat = "p95"
			}
			opSel := fmt.Sprintf("op=%q", op)
			buckets, err := pc.vector(ctx, fmt.Sprintf("sum by (le) (max by (le, shard) (%s))", last("telechaos_operation_duration_seconds_bucket", opSel)))
			if err != nil {
				return err
			}
			count, bound := histBound(buckets)
			if count == 0 {
				return errors.New("no samples: the operation never completed")
			}
			rt.Note = fmt.Sprintf("%g samples, prometheus histogram", count)
			if rt.Stat == "max" {
				rt.Value = bound
				rt.Note += " (max: upper bound of the top non-empty bucket)"
				return nil
			}
			q, err := strconv.ParseFloat(strings.TrimPrefix(rt.Stat, "p"), 64)
			if err != nil || !strings.HasPrefix(rt.Stat, "p") || q <= 0 || q >= 100 {
				return fmt.Errorf("unknown stat %q", rt.Stat)
			}
			v, err := pc.vector(ctx, fmt.Sprintf("histogram_quantile(%g, sum by (le) (max by (le, shard) (%s)))", q/100, last("telechaos_operation_duration_seconds_bucket", opSel)))
			if err != nil {
				return err
			}
			if len(v) == 0 || math.IsNaN(v[0].value) {
				return errors.New("histogram_quantile gave no value")
			}
			rt.Value = v[0].value
		case t.Metric == "error_rate":
			okN, errN := ops[metrics.OutcomeOK], ops[metrics.OutcomeError]
			if okN+errN == 0 {
				return errors.New("no samples")
			}
			rt.Value, rt.Num, rt.Den = errN/(okN+errN), errN, okN+errN
			rt.Note = fmt.Sprintf("%g of %g requests (denied answers left out)", errN, okN+errN)
		default:
			return fmt.Errorf("%s is not in the exported metrics: use telechaos report merge", t.Metric)
		}
		return nil
	}()
	if err != nil {
		rt.Pass, rt.Note = false, err.Error()
		return rt
	}
	if maxV != nil && rt.Value > *maxV {
		rt.Pass = false
	}
	if minV != nil && rt.Value < *minV {
		rt.Pass = false
	}
	return rt
}

// histBound reads cumulative buckets: the total count and the upper bound
// of the highest bucket that gained samples (+Inf: the largest finite le).
func histBound(buckets []sample) (count, bound float64) {
	type b struct{ le, n float64 }
	var bs []b
	for _, s := range buckets {
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil {
			continue
		}
		bs = append(bs, b{le, s.value})
	}
	slices.SortFunc(bs, func(x, y b) int { return cmpFloat(x.le, y.le) })
	if len(bs) == 0 {
		return 0, 0
	}
	count = bs[len(bs)-1].n
	for i, x := range bs {
		if x.n >= count {
			bound = x.le
			if math.IsInf(x.le, 1) && i > 0 {
				bound = bs[i-1].le
			}
			break
		}
	}
	return count, bound
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// duration renders d in PromQL's duration syntax (whole seconds).
func duration(d time.Duration) string {
	return strconv.FormatInt(max(int64(d/time.Second), 1), 10) + "s"
}

// client queries Prometheus' HTTP API (/api/v1/query, instant queries).
type client struct {
	base string
	hc   *http.Client
}

type sample struct {
	labels map[string]string
	value  float64
}

func (pc *client) vector(ctx context.Context, q string) ([]sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pc.base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProm, err)
	}
	resp, err := pc.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: query %s: %w", ErrProm, q, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: query %s: %w", ErrProm, q, err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: query %s: %s: not the Prometheus API (%w)", ErrProm, q, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%w: query %s: %s: %s", ErrProm, q, resp.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("%w: query %s: result type %q, want vector", ErrProm, q, r.Data.ResultType)
	}
	out := make([]sample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: query %s: value %q: %w", ErrProm, q, str, err)
		}
		out = append(out, sample{labels: s.Metric, value: v})
	}
	return out, nil
}
