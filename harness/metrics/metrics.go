package metrics

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
)

// Outcomes of an operation in telechaos_operations_total.
const (
	OutcomeOK     = "ok"     // 2xx
	OutcomeDenied = "denied" // 401/403/404: expected for probes, a failure elsewhere
	OutcomeError  = "error"  // anything else: other status, garbage, unreachable
)

// Timed operations in telechaos_operation_duration_seconds and in threshold
// metrics latency.<op>. Join is measured from the join request to the first
// received frame (join-to-media); switch is the renegotiation (re-offer, request,
// accept).
const (
	LatBook   = "book"
	LatJoin   = "join"
	LatSwitch = "switch"
	LatEnd    = "end"
	LatList   = "list"
	LatReplay = "replay"
	LatMedia  = "media"
)

// LatencyOps lists the timed operations in report order.
var LatencyOps = []string{LatBook, LatJoin, LatSwitch, LatEnd, LatList, LatReplay, LatMedia}

var driverOps = []driver.Op{driver.OpRegister, driver.OpBook, driver.OpJoin, driver.OpSwitch, driver.OpEnd,
	driver.OpList, driver.OpReplay, driver.OpMedia, driver.OpConsultation, driver.OpHealth}

// Metrics are one run's Prometheus collectors on their own registry (no globals),
// with every label value bound once so that hot paths do no label lookups. It
// also keeps the raw latency samples that thresholds are judged on.
type Metrics struct {
	Registry *prometheus.Registry

	ops           map[driver.Op]*opMetrics
	lat           map[string]*latOp // the LatencyOps
	UsersActive   prometheus.Gauge
	CallsActive   prometheus.Gauge
	framesSent    [2]prometheus.Counter // audio, video
	framesRecv    [2]prometheus.Counter
	FramesChecked prometheus.Counter
	violations    map[string]prometheus.Counter
	Dropped       prometheus.Counter

	// winMu guards the latency histograms' previous step snapshots.
	winMu sync.Mutex
}

// opMetrics is what one driver op's observation touches, found with one map
// lookup: its outcome counters and, for ops timed by their request, its
// latency.
type opMetrics struct {
	outcome [3]prometheus.Counter // ok, denied, error
	lat     *latOp                // nil: not timed, or timed elsewhere (join, switch)
}

// latOp is one timed op's latency, kept three ways: the Prometheus histogram,
// summary.json's fixed log buckets (for merged percentiles and per-step
// latency plots) and raw samples that thresholds are judged on.
type latOp struct {
	prom prometheus.Observer
	hist opHist
	mu   sync.Mutex
	res  reservoir
}

// reqTimed are the driver ops whose request duration is their latency.
var reqTimed = map[driver.Op]string{driver.OpBook: LatBook, driver.OpEnd: LatEnd, driver.OpList: LatList,
	driver.OpReplay: LatReplay, driver.OpMedia: LatMedia}

// sampleLimit bounds the raw latency samples kept per op.
const sampleLimit = 50_000

// NewMetrics registers the run's collectors on reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{Registry: reg, ops: map[driver.Op]*opMetrics{}, lat: map[string]*latOp{},
		violations: map[string]prometheus.Counter{}}
	durVec := f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "telechaos_operation_duration_seconds",
		Help:    "Duration of timed operations (join: join request to first received frame; switch: renegotiation).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"op"})
	for _, op := range LatencyOps {
		m.lat[op] = &latOp{prom: durVec.WithLabelValues(op)}
	}
	opsVec := f.NewCounterVec(prometheus.CounterOpts{
		Name: "telechaos_operations_total",
		Help: "Requests to the target by operation and outcome (ok, denied, error).",
	}, []string{"op", "outcome"})
	for _, op := range driverOps {
		m.ops[op] = &opMetrics{outcome: [3]prometheus.Counter{
			opsVec.WithLabelValues(string(op), OutcomeOK),
			opsVec.WithLabelValues(string(op), OutcomeDenied),
			opsVec.WithLabelValues(string(op), OutcomeError),
		}}
		if l, ok := reqTimed[op]; ok {
			m.ops[op].lat = m.lat[l]
		}
	}
	m.UsersActive = f.NewGauge(prometheus.GaugeOpts{Name: "telechaos_users_active", Help: "Virtual patients in their lifecycle now."})
	m.CallsActive = f.NewGauge(prometheus.GaugeOpts{Name: "telechaos_calls_active", Help: "Calls with media flowing now."})
	sent := f.NewCounterVec(prometheus.CounterOpts{Name: "telechaos_media_frames_sent_total", Help: "Watermarked media frames sent."}, []string{"kind"})
	recv := f.NewCounterVec(prometheus.CounterOpts{Name: "telechaos_media_frames_received_total", Help: "Media frames received live."}, []string{"kind"})
	m.framesSent = [2]prometheus.Counter{sent.WithLabelValues(string(models.Audio)), sent.WithLabelValues(string(models.Video))}
	m.framesRecv = [2]prometheus.Counter{recv.WithLabelValues(string(models.Audio)), recv.WithLabelValues(string(models.Video))}
	m.FramesChecked = f.NewCounter(prometheus.CounterOpts{Name: "telechaos_frames_checked_total", Help: "Replay frames checked by the oracle."})
	viol := f.NewCounterVec(prometheus.CounterOpts{Name: "telechaos_violations_total", Help: "Invariant violations found."}, []string{"invariant"})
	for _, inv := range oracle.Invariants {
		m.violations[inv] = viol.WithLabelValues(inv)
	}
	m.Dropped = f.NewCounter(prometheus.CounterOpts{Name: "telechaos_arrivals_dropped_total", Help: "Arrivals dropped because max_in_flight patients were running."})
	return m
}

// Observe counts one driver observation and, for an op timed by its
// request that succeeded, records its duration.
func (m *Metrics) Observe(o driver.Observation) {
	om, ok := m.ops[o.Op]
	if !ok {
		return
	}
	i := outcomeIndex(o)
	om.outcome[i].Inc()
	if i == 0 && om.lat != nil {
		om.lat.add(o.End.Sub(o.Start))
	}
}

func outcomeIndex(o driver.Observation) int {
	switch {
	case o.Err == nil && o.Status/100 == 2:
		return 0
	case o.Status == 401 || o.Status == 403 || o.Status == 404:
		return 1
	case o.Err == nil && o.Status == 0:
		return 0 // a driver that does not speak HTTP
	}
	return 2
}

// Latency records one timed operation (one of LatencyOps; others are
// ignored, as thresholds and reports name only those).
func (m *Metrics) Latency(op string, d time.Duration) {
	if l, ok := m.lat[op]; ok {
		l.add(d)
	}
}

func (l *latOp) add(d time.Duration) {
	l.prom.Observe(d.Seconds())
	l.hist.observe(d)
	l.mu.Lock()
	l.res.add(d, sampleLimit)
	l.mu.Unlock()
}

// opHist is one op's latencies in reports' log buckets, lock-free on the hot
// path; prev is the snapshot at the previous timeline step.
type opHist struct {
	n        [reports.HistBuckets]atomic.Int64
	count    atomic.Int64
	sumNanos atomic.Int64
	maxNanos atomic.Int64
	prev     [reports.HistBuckets]int64
}

func (h *opHist) observe(d time.Duration) {
	h.n[reports.HistIndex(d.Seconds())].Add(1)
	h.count.Add(1)
	h.sumNanos.Add(int64(d))
	for cur := h.maxNanos.Load(); int64(d) > cur && !h.maxNanos.CompareAndSwap(cur, int64(d)); cur = h.maxNanos.Load() {
	}
}

func (h *opHist) buckets() *reports.Buckets {
	b := &reports.Buckets{}
	for i := range h.n {
		b.N[i] = h.n[i].Load()
		b.Count += b.N[i] // consistent with the buckets even mid-observe
	}
	b.Sum = time.Duration(h.sumNanos.Load()).Seconds()
	b.MaxSec = time.Duration(h.maxNanos.Load()).Seconds()
	return b
}

// LatencyHistograms returns each timed op's histogram so far (ops never
// timed are left out), for summary.json.
func (m *Metrics) LatencyHistograms() map[string]*reports.Histogram {
	out := map[string]*reports.Histogram{}
	for op, l := range m.lat {
		if c := l.hist.buckets().Compact(); c != nil {
			out[op] = c
		}
	}
	return out
}

// LatencyWindow returns the percentiles of the ops timed since its previous
// call (one timeline step); ops with none are left out.
func (m *Metrics) LatencyWindow() map[string]reports.WindowLatency {
	m.winMu.Lock()
	defer m.winMu.Unlock()
	var out map[string]reports.WindowLatency
	for op, l := range m.lat {
		h := &l.hist
		cur := h.buckets()
		var win reports.Buckets
		for i := range cur.N {
			win.N[i] = cur.N[i] - h.prev[i]
			win.Count += win.N[i]
		}
		h.prev = cur.N
		if win.Count == 0 {
			continue
		}
		win.MaxSec = cur.MaxSec // bounds the top bucket only
		if out == nil {
			out = map[string]reports.WindowLatency{}
		}
		out[op] = reports.WindowLatency{N: win.Count, P50: win.Quantile(.5), P95: win.Quantile(.95), P99: win.Quantile(.99)}
	}
	return out
}

// Sent and Received count media frames.
func (m *Metrics) Sent(k models.Kind)     { m.framesSent[kindIndex(k)].Inc() }
func (m *Metrics) Received(k models.Kind) { m.framesRecv[kindIndex(k)].Inc() }

// Violation counts one violation.
func (m *Metrics) Violation(invariant string) {
	if c, ok := m.violations[invariant]; ok {
		c.Inc()
	}
}

func kindIndex(k models.Kind) int {
	if k == models.Video {
		return 1
	}
	return 0
}

// reservoir keeps up to a limit of one op's latency samples (reservoir
// sampling beyond, with a fixed seed) so percentiles stay exact for ordinary
// runs and bounded in memory for huge ones.
type reservoir struct {
	seen int
	v    []time.Duration
	rng  *rand.Rand // fixed seed, made at the first sample past the limit
}

// add keeps d if fewer than limit were kept, else replaces a kept sample
// with probability limit/seen.
func (r *reservoir) add(d time.Duration, limit int) {
	r.seen++
	if len(r.v) < limit {
		r.v = append(r.v, d)
		return
	}
	if r.rng == nil {
		r.rng = rand.New(rand.NewPCG(1, 2))
	}
	if j := r.rng.IntN(r.seen); j < limit {
		r.v[j] = d
	}
}

// stats returns the percentiles (nearest rank) of the kept samples.
func (r *reservoir) stats() LatencyStats {
	if len(r.v) == 0 {
		return LatencyStats{}
	}
	v := slices.Clone(r.v)
	slices.Sort(v)
	q := func(p float64) time.Duration {
		i := int(p*float64(len(v))+0.999999) - 1
		return v[min(max(i, 0), len(v)-1)]
	}
	return LatencyStats{Count: r.seen, P50: q(.50), P90: q(.90), P95: q(.95), P99: q(.99), Max: v[len(v)-1]}
}

// LatencyStats summarises one op's samples.
type LatencyStats struct {
	Count                   int
	P50, P90, P95, P99, Max time.Duration
}

// Stat returns one statistic by name (p50, p90, p95, p99, max; 0 for
// another name).
func (s LatencyStats) Stat(name string) time.Duration {
	switch name {
	case "p50":
		return s.P50
	case "p90":
		return s.P90
	case "p95":
		return s.P95
	case "p99":
		return s.P99
	case "max":
		return s.Max
	}
	return 0
}

// LatencyStats returns the percentiles of one timed op.
func (m *Metrics) LatencyStats(op string) LatencyStats {
	if l, ok := m.lat[op]; ok {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.res.stats()
	}
	return LatencyStats{}
}
