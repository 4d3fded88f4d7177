package main

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

	"telechaos/harness"
	"telechaos/models"
	"telechaos/reports"
	"telechaos/scenarios"
)

// `telechaos report verdict --from-prometheus URL --run-id ID` computes a
// run's verdict from what Prometheus holds of its shards (scraped
// --metrics-addr endpoints, or Pushgateway groups scraped with honor_labels):
// violations summed over shards, the scenario's thresholds evaluated from the
// histograms. It exits as `run` does.
//
// Every query reads the last value of each series within --window
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

// ErrProm: Prometheus could not be queried or holds nothing for the run.
var ErrProm = errors.New("prometheus")

type promVerdictFlags struct {
	url, runID, scenario string
	sets                 multiFlag
	window               time.Duration
	shards               int
}

func cmdReportVerdict(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := promVerdictFlags{}
	fs := newFlagSet("report verdict", stderr)
	fs.StringVar(&f.url, "from-prometheus", "", "Prometheus base URL, e.g. http://prometheus:9090")
	fs.StringVar(&f.runID, "run-id", "", "the run id the shards shared")
	fs.StringVar(&f.scenario, "scenario", "smoke", "the run's scenario (its thresholds and invariants)")
	fs.Var(&f.sets, "set", "override a scenario field KEY=VALUE, as given to run")
	fs.DurationVar(&f.window, "window", 6*time.Hour, "how far back to look for the run's series")
	fs.IntVar(&f.shards, "shards", 0, "fail unless this many shards reported")
	if err := fs.Parse(args); err != nil {
		return harness.ExitUsage
	}
	if f.url == "" || f.runID == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "telechaos report verdict: want --from-prometheus URL --run-id ID [--scenario S] [--set K=V] [--window D] [--shards N]\n")
		return harness.ExitUsage
	}
	if err := checkRunID(f.runID); err != nil { // it goes into every PromQL selector
		fmt.Fprintf(stderr, "telechaos report verdict: %v\n", err)
		return harness.ExitUsage
	}
	sc, err := scenarios.Load(f.scenario)
	if err == nil {
		for _, kv := range f.sets {
			if err = sc.Set(kv); err != nil {
				err = fmt.Errorf("--set %s: %w", kv, err)
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "telechaos report verdict: %v\n", err)
		return harness.ExitUsage
	}
	v, err := promVerdict(ctx, &promClient{base: strings.TrimRight(f.url, "/"), hc: &http.Client{Timeout: 20 * time.Second}}, sc, f)
	if err != nil {
		fmt.Fprintf(stderr, "telechaos report verdict: %v\n", err)
		return harness.ExitTarget
	}
	printPromVerdict(stdout, v)
	return v.ExitCode
}

// promResult is the verdict computed from Prometheus.
type promResult struct {
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

func promVerdict(ctx context.Context, pc *promClient, sc *scenarios.Scenario, f promVerdictFlags) (*promResult, error) {
	win := promDuration(f.window)
	sel := fmt.Sprintf(`run_id=%q`, f.runID)
	last := func(metric, extra string) string {
		s := sel
		if extra != "" {
			s += "," + extra
		}
		return fmt.Sprintf("last_over_time(%s{%s}[%s])", metric, s, win)
	}
	res := &promResult{RunID: f.runID, Scenario: sc.Name, Invariants: sc.Invariants, Violations: map[string]float64{}}

	shards, err := pc.vector(ctx, fmt.Sprintf("count by (shard) (%s)", last("telechaos_operations_total", "")))
	if err != nil {
		return nil, err
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("%w: no telechaos_operations_total series with run_id %q in the last %s (was the run scraped or pushed?)", ErrProm, f.runID, win)
	}
	for _, s := range shards {
		res.Shards = append(res.Shards, s.labels["shard"])
	}
	sort.Strings(res.Shards)
	if f.shards > 0 && len(res.Shards) != f.shards {
		return nil, fmt.Errorf("%w: %d shards reported for run %s (%s), want %d", ErrProm, len(res.Shards), f.runID, strings.Join(res.Shards, ","), f.shards)
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
	byInv := func(ss []promSample) map[string]float64 {
		m := map[string]float64{}
		for _, s := range ss {
			m[s.labels["invariant"]] = s.value
		}
		return m
	}
	var short []string
	res.Judgement, short = promJudgement(sc, byInv(judged), byInv(notJudged))

	var failed []string
	for _, t := range sc.Thresholds {
		if t.Metric == "judged" || strings.HasPrefix(t.Metric, "judged.") {
			continue // a required judged share, applied above
		}
		rt := promThreshold(ctx, pc, t, last, res.Operations)
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

// promJudgement builds the judgement table from the judged and not-judged
// counters (summed over shards), with the lines that keep the run from
// passing. The required share is the scenario's judged[.<invariant>] min, else
// models.DefaultMinJudged, as in the run.
func promJudgement(sc *scenarios.Scenario, judged, notJudged map[string]float64) (map[string]reports.Judgement, []string) {
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

// promThreshold evaluates one scenario threshold from the metrics.
func promThreshold(ctx context.Context, pc *promClient, t scenarios.Threshold, last func(metric, extra string) string, ops map[string]float64) reports.Threshold {
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
			if !slices.Contains(harness.LatencyOps, op) {
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
			okN, errN := ops[harness.OutcomeOK], ops[harness.OutcomeError]
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
func histBound(buckets []promSample) (count, bound float64) {
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

// promDuration renders d in PromQL's duration syntax (whole seconds).
func promDuration(d time.Duration) string {
	return strconv.FormatInt(max(int64(d/time.Second), 1), 10) + "s"
}

func printPromVerdict(w io.Writer, v *promResult) {
	fmt.Fprintf(w, "\nverdict: %s (exit %d)  scenario %s  run %s  from prometheus, %d shards (%s)\n",
		strings.ToUpper(v.Verdict), v.ExitCode, v.Scenario, v.RunID, len(v.Shards), strings.Join(orNone(v.Shards), ","))
	if v.Reason != "" {
		printWrapped(w, "reason: ", v.Reason)
	}
	for _, a := range v.Also {
		printWrapped(w, "also: ", a)
	}
	fmt.Fprintf(w, "operations ok %g  denied %g  error %g\n", v.Operations[harness.OutcomeOK], v.Operations[harness.OutcomeDenied], v.Operations[harness.OutcomeError])
	printInvariants(w, v.Invariants, func(inv string) float64 { return v.Violations[inv] }, v.Judgement)
	if v.Ignored > 0 {
		fmt.Fprintf(w, "  (%g violations of invariants the scenario does not judge)\n", v.Ignored)
	}
	printThresholds(w, v.Thresholds, true)
}

func orNone(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x
		if x == "" {
			out[i] = "unsharded"
		}
	}
	return out
}

// promClient queries Prometheus' HTTP API (/api/v1/query, instant queries).
type promClient struct {
	base string
	hc   *http.Client
}

type promSample struct {
	labels map[string]string
	value  float64
}

func (pc *promClient) vector(ctx context.Context, q string) ([]promSample, error) {
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
	out := make([]promSample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: query %s: value %q: %w", ErrProm, q, str, err)
		}
		out = append(out, promSample{labels: s.Metric, value: v})
	}
	return out, nil
}
