package promverdict

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/scenarios"
)

// series maps a metric to its samples: a label set plus "value".
type series map[string][]map[string]string

// fakeProm answers instant queries by the metric they name; a
// histogram_quantile query answers quantile (NaN: no answer at all).
func fakeProm(t *testing.T, ss series, quantile float64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		result := []map[string]any{}
		switch {
		case strings.HasPrefix(q, "histogram_quantile("):
			if !math.IsNaN(quantile) {
				result = append(result, map[string]any{"metric": map[string]string{}, "value": []any{1.0, jsonFloat(quantile)}})
			}
		default:
			for metric, samples := range ss {
				if !strings.Contains(q, metric+"{") {
					continue
				}
				for _, s := range samples {
					labels := map[string]string{}
					for k, v := range s {
						if k != "value" {
							labels[k] = v
						}
					}
					result = append(result, map[string]any{"metric": labels, "value": []any{1.0, s["value"]}})
				}
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func jsonFloat(f float64) string { b, _ := json.Marshal(f); return string(b) }

func smoke(t *testing.T) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.Load("smoke")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// judgedAll is every invariant of smoke judged in full: 40 of 40.
func judgedAll() []map[string]string {
	var out []map[string]string
	for _, inv := range []string{"replay-list-ownership", "replay-content-ownership", "replay-access-control",
		"recording-durability", "recording-completeness", "live-routing"} {
		out = append(out, map[string]string{"invariant": inv, "value": "40"})
	}
	return out
}

func str(s string) *string { return &s }

// The verdict is models.Decide's, as in the run: too little judged is
// not-judged (exit 3); a violation outranks it (exit 1) and keeps the
// not-judged line as Also; violations of invariants the scenario does not
// judge are counted apart and do not fail it.
func TestVerdictDecidesLikeTheRun(t *testing.T) {
	ss := series{
		// The fake does not aggregate: one sample per outcome.
		"telechaos_operations_total": {{"shard": "1", "outcome": "ok", "value": "100"}, {"shard": "0", "outcome": "denied", "value": "5"}},
		"telechaos_judged_total": {
			{"invariant": "replay-list-ownership", "value": "40"},
			{"invariant": "recording-durability", "value": "1"},
		},
		"telechaos_not_judged_total": {{"invariant": "recording-durability", "value": "39"}},
	}
	q := Query{URL: fakeProm(t, ss, math.NaN()), RunID: "r1"}
	sc := smoke(t)
	res, err := Verdict(context.Background(), q, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != "not-judged" || res.ExitCode != 3 || !strings.Contains(res.Reason, "recording-durability judged 1 of 40") {
		t.Errorf("verdict %q exit %d reason %q", res.Verdict, res.ExitCode, res.Reason)
	}
	if !slices.Equal(res.Shards, []string{"0", "1"}) || res.Operations["ok"] != 100 || res.Operations["denied"] != 5 {
		t.Errorf("shards %v operations %v", res.Shards, res.Operations)
	}
	if j := res.Judgement["recording-durability"]; j.Judged != 1 || j.NotJudged != 39 {
		t.Errorf("judgement %+v", j)
	}

	ss["telechaos_violations_total"] = []map[string]string{{"invariant": "replay-list-ownership", "shard": "0", "value": "2"}}
	q.URL = fakeProm(t, ss, math.NaN())
	res, err = Verdict(context.Background(), q, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != "violation" || res.ExitCode != 1 || res.Violations["replay-list-ownership"] != 2 ||
		!slices.ContainsFunc(res.Also, func(a string) bool { return strings.Contains(a, "not judged: recording-durability") }) {
		t.Errorf("verdict %q exit %d violations %v also %q", res.Verdict, res.ExitCode, res.Violations, res.Also)
	}

	// A scenario judging one invariant: the others' violations are ignored.
	ss["telechaos_judged_total"] = judgedAll()
	delete(ss, "telechaos_not_judged_total")
	q.URL = fakeProm(t, ss, math.NaN())
	sc.Invariants = []string{"recording-durability"}
	res, err = Verdict(context.Background(), q, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || res.Ignored != 2 || len(res.Violations) != 0 {
		t.Errorf("verdict %q exit %d ignored %g violations %v", res.Verdict, res.ExitCode, res.Ignored, res.Violations)
	}
}

// Thresholds are the scenario's bounds in base units (a latency limit of
// 500ms is 0.5 s), evaluated from the histograms and the outcome counters;
// one Prometheus cannot give fails with a note naming report merge.
func TestVerdictThresholds(t *testing.T) {
	ss := series{
		"telechaos_operations_total": {
			{"shard": "0", "outcome": "ok", "value": "90"},
			{"shard": "0", "outcome": "error", "value": "10"},
			{"shard": "0", "outcome": "denied", "value": "50"},
		},
		"telechaos_judged_total": judgedAll(),
		"telechaos_operation_duration_seconds_bucket": {
			{"le": "0.1", "value": "5"}, {"le": "0.5", "value": "8"}, {"le": "1", "value": "10"}, {"le": "+Inf", "value": "10"},
		},
	}
	sc := smoke(t)
	sc.Thresholds = []scenarios.Threshold{
		{Metric: "latency.book", Stat: "p95", Max: str("500ms")}, // 0.7 s from the fake: fails
		{Metric: "latency.join", Stat: "max", Max: str("2s")},    // top bucket 1 s: passes
		{Metric: "error_rate", Max: str("0.2")},                  // 10 of 100, denied left out: passes
		{Metric: "media_loss", Max: str("0.01")},                 // not exported: fails with a note
		{Metric: "latency.nope", Max: str("1s")},                 // unknown op: fails
	}
	res, err := Verdict(context.Background(), Query{URL: fakeProm(t, ss, 0.7), RunID: "r1"}, sc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"latency.book": false, "latency.join": true, "error_rate": true, "media_loss": false, "latency.nope": false}
	for _, th := range res.Thresholds {
		if th.Pass != want[th.Metric] {
			t.Errorf("%s: pass %v (value %g, note %q), want %v", th.Metric, th.Pass, th.Value, th.Note, want[th.Metric])
		}
		switch th.Metric {
		case "latency.book":
			if th.Value != 0.7 || th.Max == nil || *th.Max != 0.5 {
				t.Errorf("latency.book: value %g max %v", th.Value, th.Max)
			}
		case "latency.join":
			if th.Value != 1 || !strings.Contains(th.Note, "upper bound") {
				t.Errorf("latency.join max: value %g note %q", th.Value, th.Note)
			}
		case "error_rate":
			if th.Value != 0.1 || th.Den != 100 {
				t.Errorf("error_rate: value %g den %g", th.Value, th.Den)
			}
		case "media_loss":
			if !strings.Contains(th.Note, "report merge") {
				t.Errorf("media_loss note %q", th.Note)
			}
		}
	}
	if len(res.Thresholds) != len(want) || res.Verdict != "thresholds-failed" || res.ExitCode != 4 {
		t.Errorf("%d thresholds, verdict %q exit %d reason %q", len(res.Thresholds), res.Verdict, res.ExitCode, res.Reason)
	}
}

// Every way the query can go wrong is an error naming its class, not a
// verdict and not a panic.
func TestVerdictErrors(t *testing.T) {
	answer := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	empty := fakeProm(t, series{}, math.NaN())
	twoShards := fakeProm(t, series{"telechaos_operations_total": {{"shard": "0", "value": "1"}, {"shard": "1", "value": "1"}}}, math.NaN())
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	sc := smoke(t)
	for _, tc := range []struct {
		name string
		q    Query
		sc   *scenarios.Scenario
		is   error
		msg  string
	}{
		{"no url", Query{RunID: "r"}, sc, ErrInput, "no Prometheus URL"},
		{"no run id", Query{URL: empty}, sc, ErrInput, "no run id"},
		{"no scenario", Query{URL: empty, RunID: "r"}, nil, ErrInput, "no scenario"},
		{"not a url", Query{URL: "prometheus:9090", RunID: "r"}, sc, ErrInput, "want http(s)"},
		{"negative shards", Query{URL: empty, RunID: "r", Shards: -1}, sc, ErrInput, "shards"},
		{"unreachable", Query{URL: closed.URL, RunID: "r", HTTPClient: &http.Client{Timeout: time.Minute}}, sc, ErrProm, "query"},
		{"no series", Query{URL: empty, RunID: "r"}, sc, ErrProm, "no telechaos_operations_total series"},
		{"shard count", Query{URL: twoShards, RunID: "r", Shards: 3}, sc, ErrProm, "2 shards reported"},
		{"not the API", Query{URL: answer(200, "<html>"), RunID: "r"}, sc, ErrProm, "not the Prometheus API"},
		{"error status", Query{URL: answer(400, `{"status":"error","error":"parse error"}`), RunID: "r"}, sc, ErrProm, "parse error"},
		{"matrix", Query{URL: answer(200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`), RunID: "r"}, sc, ErrProm, "want vector"},
		{"bad value", Query{URL: answer(200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`), RunID: "r"}, sc, ErrProm, `value "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verdict(context.Background(), tc.q, tc.sc)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) || res != nil {
				t.Errorf("err = %v (result %v), want %v containing %q", err, res, tc.is, tc.msg)
			}
		})
	}
}

// histBound reads cumulative buckets in any order; the top bucket that
// gained samples bounds the max, +Inf standing for the largest finite bound.
func TestHistBound(t *testing.T) {
	b := func(pairs ...string) []sample {
		var out []sample
		for i := 0; i < len(pairs); i += 2 {
			var v float64
			_ = json.Unmarshal([]byte(pairs[i+1]), &v)
			out = append(out, sample{labels: map[string]string{"le": pairs[i]}, value: v})
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		in           []sample
		count, bound float64
	}{
		{"empty", nil, 0, 0},
		{"unordered", b("1", "10", "0.1", "5", "+Inf", "10", "0.5", "8"), 10, 1},
		{"in +Inf only", b("0.1", "0", "1", "0", "+Inf", "3"), 3, 1},
		{"first bucket", b("0.1", "4", "1", "4", "+Inf", "4"), 4, 0.1},
		{"bad le skipped", b("x", "9", "0.2", "2", "+Inf", "2"), 2, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, bd := histBound(tc.in); c != tc.count || bd != tc.bound {
				t.Errorf("histBound = %g, %g, want %g, %g", c, bd, tc.count, tc.bound)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{6 * time.Hour: "21600s", 1500 * time.Millisecond: "1s", 0: "1s", time.Millisecond: "1s"} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %s, want %s", d, got, want)
		}
	}
}
