package verdict

import (
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/scenarios"
)

func ptr(s string) *string { return &s }

// lat serves one op's latency: every stat is d, with n samples.
func lat(op string, d time.Duration, n int) func(string, string) (time.Duration, int) {
	return func(o, _ string) (time.Duration, int) {
		if o != op {
			return 0, 0
		}
		return d, n
	}
}

// A threshold bound is read once, by the scenario: what validates is what
// the run applies (" 500ms" passed validation and was then refused).
func TestThresholdBoundsReadLikeTheScenario(t *testing.T) {
	for _, tc := range []struct {
		max  string
		want float64
	}{{" 500ms", 0.5}, {"2s", 2}, {"0.25", 0.25}} {
		got := Thresholds([]scenarios.Threshold{{Metric: "latency.join", Max: ptr(tc.max)}},
			Figures{Latency: lat("join", time.Second, 3)})
		if len(got) != 1 || got[0].Max == nil || *got[0].Max != tc.want {
			t.Fatalf("max %q: %+v, want a bound of %v s", tc.max, got, tc.want)
		}
		if pass := 1 <= tc.want; got[0].Pass != pass {
			t.Errorf("max %q with a 1 s p95: pass %v, want %v", tc.max, got[0].Pass, pass)
		}
	}
}

func TestThresholdsJudgeEachMetric(t *testing.T) {
	f := Figures{
		Latency:  lat("switch", 250*time.Millisecond, 40),
		Requests: 200, RequestErrors: 3,
		FramesSent: 1000, FramesAcked: 980,
		Calls: 30, Elapsed: 10 * time.Second,
	}
	ts := []scenarios.Threshold{
		{Metric: "latency.switch", Max: ptr("300ms")},             // 0.25 s: pass
		{Metric: "latency.switch", Stat: "p99", Max: ptr("0.2")},  // fail
		{Metric: "error_rate", Max: ptr("0.01")},                  // 0.015: fail
		{Metric: "media_loss", Max: ptr("0.05")},                  // 0.02: pass
		{Metric: "setup_rate", Min: ptr("2")},                     // 3/s: pass
		{Metric: "setup_rate", Min: ptr("1"), Max: ptr("2.5")},    // 3/s: fail
		{Metric: "judged", Min: ptr("0.9")},                       // not a threshold row
		{Metric: "judged.replay-list-ownership", Min: ptr("0.5")}, // nor this
	}
	got := Thresholds(ts, f)
	want := []struct {
		value float64
		pass  bool
	}{{0.25, true}, {0.25, false}, {0.015, false}, {0.02, true}, {3, true}, {3, false}}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d (judged shares are not thresholds): %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if d := got[i].Value - w.value; d > 1e-9 || d < -1e-9 || got[i].Pass != w.pass {
			t.Errorf("%s %s: value %v pass %v, want %v %v (%s)", got[i].Metric, got[i].Stat, got[i].Value, got[i].Pass, w.value, w.pass, got[i].Note)
		}
	}
	if got[0].Stat != "p95" {
		t.Errorf("latency stat defaults to p95, got %q", got[0].Stat)
	}
	// Ratios carry their parts so merged shards add counts, not ratios.
	if got[2].Num != 3 || got[2].Den != 200 || got[3].Num != 20 || got[3].Den != 1000 {
		t.Errorf("ratio parts: error_rate %v/%v, media_loss %v/%v", got[2].Num, got[2].Den, got[3].Num, got[3].Den)
	}
	if got[0].Limit != "max 300ms" || got[5].Limit != "max 2.5, min 1" {
		t.Errorf("limits as written: %q, %q", got[0].Limit, got[5].Limit)
	}
}

// What was not measured is never passed: a threshold on an op that never
// completed, on a run with no requests or no ended calls fails with a reason.
func TestThresholdWithoutSamplesFails(t *testing.T) {
	ts := []scenarios.Threshold{
		{Metric: "latency.replay", Max: ptr("1s")},
		{Metric: "error_rate", Max: ptr("0.5")},
		{Metric: "media_loss", Max: ptr("0.5")},
		{Metric: "setup_rate", Min: ptr("0")},
	}
	for _, rt := range Thresholds(ts, Figures{Latency: lat("join", time.Millisecond, 1)}) {
		if rt.Pass || !strings.Contains(rt.Note, "no samples") {
			t.Errorf("%s: pass %v note %q, want a failure saying no samples", rt.Metric, rt.Pass, rt.Note)
		}
	}
}

// A threshold the scenario would have refused still gets an honest failed
// row, never a pass.
func TestUnreadableThresholdFails(t *testing.T) {
	for _, th := range []scenarios.Threshold{
		{Metric: "latency.join", Max: ptr("soon")},
		{Metric: "error_rate"},
		{Metric: "throughput", Max: ptr("1")},
	} {
		got := Thresholds([]scenarios.Threshold{th}, Figures{Latency: lat("join", time.Millisecond, 5), Requests: 10})
		if len(got) != 1 || got[0].Pass || got[0].Note == "" {
			t.Errorf("%+v: %+v, want one failed row with a reason", th, got)
		}
	}
}
