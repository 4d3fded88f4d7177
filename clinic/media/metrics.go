package media

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the engine's clinic_media_* collectors, indexed by kind so the
// per-packet path does no label lookup.
type metrics struct {
	received       [2]prometheus.Counter
	forwarded      [2]prometheus.Counter
	written        [2]prometheus.Counter
	tracks         [2]prometheus.Counter
	prerollDropped prometheus.Counter
}

// newMetrics builds the collectors; with a nil registerer they are live but
// unregistered.
func newMetrics(reg prometheus.Registerer, e *Engine) *metrics {
	f := promauto.With(reg)
	received := f.NewCounterVec(prometheus.CounterOpts{
		Name: "clinic_media_frames_received_total",
		Help: "RTP packets (frames) received from participants, by kind.",
	}, []string{"kind"})
	forwarded := f.NewCounterVec(prometheus.CounterOpts{
		Name: "clinic_media_frames_forwarded_total",
		Help: "RTP packets (frames) forwarded to the other participant, by kind.",
	}, []string{"kind"})
	written := f.NewCounterVec(prometheus.CounterOpts{
		Name: "clinic_media_bytes_written_total",
		Help: "Bytes of Ogg/IVF written to track files (headers included), by kind.",
	}, []string{"kind"})
	tracks := f.NewCounterVec(prometheus.CounterOpts{
		Name: "clinic_media_tracks_opened_total",
		Help: "Track files opened, by kind.",
	}, []string{"kind"})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clinic_media_calls_active",
		Help: "Calls joined in this process and not yet ended.",
	}, func() float64 { return float64(e.ActiveCalls()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clinic_media_tracks_open",
		Help: "Track files being written.",
	}, func() float64 { return float64(e.open.len()) })
	m := &metrics{
		prerollDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "clinic_media_preroll_dropped_total",
			Help: "Frames dropped from a full pre-roll buffer.",
		}),
	}
	for _, k := range []kind{kindAudio, kindVideo} {
		m.received[k] = received.WithLabelValues(k.String())
		m.forwarded[k] = forwarded.WithLabelValues(k.String())
		m.written[k] = written.WithLabelValues(k.String())
		m.tracks[k] = tracks.WithLabelValues(k.String())
	}
	return m
}
