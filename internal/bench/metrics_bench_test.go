package bench

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/models"
)

// BenchmarkMetricsLatency: one timed operation (histogram + threshold sample),
// the metrics cost of a request.
func BenchmarkMetricsLatency(b *testing.B) {
	m := metrics.NewMetrics(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.Latency(metrics.LatList, 3*time.Millisecond)
	}
}

// BenchmarkMetricsFrame: one media frame counted (sent and received), the
// metrics cost per frame on the media hot path.
func BenchmarkMetricsFrame(b *testing.B) {
	m := metrics.NewMetrics(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.Sent(models.Audio)
		m.Received(models.Audio)
	}
}

// BenchmarkMetricsLatencyParallel: the same from every P (one mutex guards the
// samples).
func BenchmarkMetricsLatencyParallel(b *testing.B) {
	m := metrics.NewMetrics(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Latency(metrics.LatList, 3*time.Millisecond)
		}
	})
}
