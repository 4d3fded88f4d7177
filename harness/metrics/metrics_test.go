package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// newLintRegistry registers everything a run registers: the harness metrics
// and the chaos recorder and coverage that share the run's registry.
func newLintRegistry(t testing.TB) (*prometheus.Registry, *Metrics) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	rec, err := chaos.NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	cov, err := chaos.NewCoverage(reg)
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Begin("http-latency", nil, "clock")
	rec.End(id, nil)
	cov.Hit(chaos.PathSwitch, "")
	return reg, m
}

func TestMetricsWithChaosLintClean(t *testing.T) {
	reg, m := newLintRegistry(t)
	m.Observe(driver.Observation{Op: driver.OpBook, Status: 201})
	m.Latency(LatBook, 3*time.Millisecond)
	m.Sent(models.Video)
	m.Violation(oracle.Invariants[0])
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "telechaos_") {
			t.Errorf("%s lacks the telechaos_ prefix", mf.GetName())
		}
	}
}

// TestMetricsCountWhatHappened checks values, not just names: outcomes by
// status, frames by kind, violations by invariant, latency in seconds.
func TestMetricsCountWhatHappened(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	for _, o := range []driver.Observation{
		{Op: driver.OpBook, Status: 201}, {Op: driver.OpBook, Status: 201},
		{Op: driver.OpReplay, Status: 403}, {Op: driver.OpReplay, Status: 500},
		{Op: driver.OpList, Err: driver.ErrUnreachable},
		{Op: "unknown-op", Status: 200}, // ignored, not a panic
	} {
		m.Observe(o)
	}
	m.Sent(models.Audio)
	m.Sent(models.Video)
	m.Sent(models.Video)
	m.Received(models.Audio)
	m.Violation(oracle.Invariants[1])
	m.Violation("no-such-invariant")
	m.Latency(LatSwitch, 250*time.Millisecond)
	m.Latency(LatSwitch, 2*time.Second)
	want := `
# HELP telechaos_media_frames_sent_total Watermarked media frames sent.
# TYPE telechaos_media_frames_sent_total counter
telechaos_media_frames_sent_total{kind="audio"} 1
telechaos_media_frames_sent_total{kind="video"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "telechaos_media_frames_sent_total"); err != nil {
		t.Error(err)
	}
	ops := map[[2]string]float64{{"book", "ok"}: 2, {"replay", "denied"}: 1, {"replay", "error"}: 1, {"list", "error"}: 1}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "telechaos_operations_total":
			for _, mt := range mf.GetMetric() {
				var op, out string
				for _, l := range mt.GetLabel() {
					if l.GetName() == "op" {
						op = l.GetValue()
					} else {
						out = l.GetValue()
					}
				}
				if got := mt.GetCounter().GetValue(); got != ops[[2]string{op, out}] {
					t.Errorf("operations{%s,%s} = %g, want %g", op, out, got, ops[[2]string{op, out}])
				}
			}
		case "telechaos_operation_duration_seconds":
			for _, mt := range mf.GetMetric() {
				if mt.GetLabel()[0].GetValue() == LatSwitch {
					if h := mt.GetHistogram(); h.GetSampleCount() != 2 || h.GetSampleSum() != 2.25 {
						t.Errorf("switch histogram count %d sum %g", h.GetSampleCount(), h.GetSampleSum())
					}
				}
			}
		}
	}
	if v := testutil.ToFloat64(m.violations[oracle.Invariants[1]]); v != 1 {
		t.Errorf("violations = %g", v)
	}
	// Book is timed by its request (the two that succeeded); switch by the
	// runner (Latency); the failed list and replays are not timed.
	h := m.LatencyHistograms()
	if len(h) != 2 || h[LatSwitch].Count != 2 || h[LatSwitch].Max != 2 || h[LatBook].Count != 2 {
		t.Errorf("histograms %+v", h)
	}
	if st := m.LatencyStats(LatBook); st.Count != 2 {
		t.Errorf("book samples %+v, want 2", st)
	}
}

func TestLatencyWindowCoversOneStep(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for range 10 {
		m.Latency(LatJoin, 100*time.Millisecond)
	}
	w := m.LatencyWindow()
	if w[LatJoin].N != 10 || w[LatJoin].P50 < 0.1 || w[LatJoin].P50 > 0.11 {
		t.Errorf("first window %+v", w)
	}
	if w := m.LatencyWindow(); len(w) != 0 {
		t.Errorf("empty step reported %+v", w)
	}
	m.Latency(LatJoin, time.Second)
	if w := m.LatencyWindow(); w[LatJoin].N != 1 || w[LatJoin].P99 != 1 {
		t.Errorf("second window %+v", w)
	}
}

func TestMetricsConcurrentObserve(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				m.Latency(LatBook, time.Duration(g*500+i)*time.Microsecond)
				m.Sent(models.Audio)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			m.LatencyWindow()
		}
	})
	wg.Wait()
	if h := m.LatencyHistograms()[LatBook]; h.Count != 2000 || h.Max != (1999*time.Microsecond).Seconds() {
		t.Errorf("histogram %d max %g", h.Count, h.Max)
	}
}

func TestPushSendsGroupedMetrics(t *testing.T) {
	var mu sync.Mutex
	var path, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		buf := make([]byte, 1<<16)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		mu.Lock()
		path, body = r.Method+" "+r.URL.Path, b.String()
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Observe(driver.Observation{Op: driver.OpBook, Status: 201})
	if err := Push(context.Background(), srv.URL, reg, "r-1", "smoke"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The client library builds the grouping part of the path from a map, so
	// the label pairs come in any order: compare them as a set.
	if got, ok := pushGrouping(path, "PUT /metrics/job/telechaos"); !ok ||
		len(got) != 2 || got["run_id"] != "r-1" || got["scenario"] != "smoke" {
		t.Errorf("pushed to %q, want PUT /metrics/job/telechaos with grouping {run_id=r-1, scenario=smoke} in any order", path)
	}
	if body == "" {
		t.Error("empty push body")
	}
	for _, bad := range [][2]string{{"", "r"}, {srv.URL, ""}} {
		if err := Push(context.Background(), bad[0], reg, bad[1], "smoke"); err == nil {
			t.Errorf("Push(%q, run %q) accepted", bad[0], bad[1])
		}
	}
	srv.Close()
	if err := Push(context.Background(), srv.URL, reg, "r-1", "smoke"); err == nil {
		t.Error("push to a closed server succeeded")
	}
}

// pushGrouping splits a Pushgateway push path "<prefix>/k1/v1/k2/v2..." into
// its grouping labels; ok is false when the prefix is wrong, the pairs are
// odd or a label repeats.
func pushGrouping(path, prefix string) (map[string]string, bool) {
	rest, found := strings.CutPrefix(path, prefix)
	if !found {
		return nil, false
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return map[string]string{}, true
	}
	parts := strings.Split(rest, "/")
	if len(parts)%2 != 0 {
		return nil, false
	}
	m := make(map[string]string, len(parts)/2)
	for i := 0; i < len(parts); i += 2 {
		if _, dup := m[parts[i]]; dup {
			return nil, false
		}
		m[parts[i]] = parts[i+1]
	}
	return m, true
}

// Cost per observation on the hot paths. Label values are bound once in
// NewMetrics; BenchmarkObserveOpWithLabelValues shows what a lookup per
// observation would cost instead.
func BenchmarkObserveOp(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	o := driver.Observation{Op: driver.OpReplay, Status: 200}
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(o)
	}
}

func BenchmarkObserveOpWithLabelValues(b *testing.B) {
	reg := prometheus.NewRegistry()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"op", "outcome"})
	reg.MustRegister(vec)
	b.ReportAllocs()
	for b.Loop() {
		vec.WithLabelValues("replay", "ok").Inc()
	}
}

func BenchmarkObserveLatency(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.Latency(LatSwitch, 180*time.Millisecond)
	}
}

func BenchmarkObserveFrame(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.Sent(models.Video)
	}
}

func BenchmarkObserveFrameParallel(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Sent(models.Video)
		}
	})
}
