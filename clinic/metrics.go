package clinic

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the clinic's own series, on the server's registry (never the
// global one: tests and the harness run several clinics in one process).
type metrics struct {
	duration  *prometheus.HistogramVec
	switches  prometheus.Counter
	finalised prometheus.Counter
	handler   http.Handler
}

func newMetrics(reg *prometheus.Registry, activeCalls func() int) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clinic_http_request_duration_seconds",
			Help:    "HTTP request duration by route pattern and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		switches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clinic_switches_total",
			Help: "Successful audio-to-video switches.",
		}),
		finalised: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clinic_recordings_finalised_total",
			Help: "Recordings marked ready (at end, or recovered at startup).",
		}),
	}
	calls := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clinic_calls_active",
		Help: "Calls the media engine currently holds.",
	}, func() float64 { return float64(activeCalls()) })
	reg.MustRegister(m.duration, m.switches, m.finalised, calls)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// registerRuntime adds Go and process collectors unless the engine already did.
func registerRuntime(reg *prometheus.Registry) {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		_ = reg.Register(c) // best effort: AlreadyRegistered is fine, the series exist
	}
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	m.duration.WithLabelValues(route, strconv.Itoa(code)).Observe(d.Seconds())
}
