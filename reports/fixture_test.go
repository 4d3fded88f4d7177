package reports

import (
	"math"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// richSample is a run with everything a report can show: a 60 s timeline
// with latency windows, fault windows (one healed with an error, one open at
// the end), coverage, two violations with evidence and histograms.
func richSample() *Summary {
	s := sample()
	s.Scenario = "launch-video-switch"
	s.DurationSeconds = 60
	s.StartedAt = t0
	s.Media = true
	s.Violations = []Violation{
		{Invariant: "replay-list-ownership", Viewer: "u_a", Owner: "u_b", Recording: "r_1", Consultation: "c_1",
			At: t0.Add(21 * time.Second), Detail: "offered <r_1> & \"more\"", Evidence: EvidenceFile(1)},
		{Invariant: "live-media-isolation", Viewer: "u_c", Owner: "u_d", At: t0.Add(44 * time.Second),
			Detail: "frame of u_d in u_c's call", Evidence: EvidenceFile(2)},
	}
	s.ViolationsByInvariant = map[string]int{"replay-list-ownership": 1, "live-media-isolation": 1}
	s.FaultWindows = []FaultWindow{
		{Fault: "http-latency", Params: map[string]string{"latency": "200ms"}, Trigger: "clock", Start: t0.Add(15 * time.Second), End: t0.Add(25 * time.Second)},
		{Fault: "clinic-restart", Trigger: "switch#40", Start: t0.Add(38 * time.Second), End: t0.Add(41 * time.Second), Err: "restart: timeout"},
		{Fault: "media-loss", Params: map[string]string{"loss": "0.05"}, Trigger: "clock", Start: t0.Add(50 * time.Second)},
	}
	s.Coverage = map[string]map[string]int64{
		"switch": {"none": 120, "http-latency": 30, "clinic-restart": 2},
		"end":    {"none": 140, "http-latency": 25},
	}
	s.CoverageShortfalls = []string{"coverage rejoin under clinic-restart: 0, want >= 1"}
	book, sw := &Buckets{}, &Buckets{}
	for i := range 60 {
		var p Sample
		p.T = float64(i) + 1
		ramp := math.Min(float64(i), 30)
		p.UsersActive = int64(ramp * 3)
		p.CallsActive = int64(ramp * 2)
		p.Ops = int64(i * i * 4)
		p.OpErrors = int64(i / 10)
		p.FramesSent = int64(ramp * float64(i) * 50)
		p.FramesReceived = int64(ramp * float64(i) * 48)
		p.FramesChecked = int64(i * i * 10)
		if i >= 21 {
			p.Violations = 1
		}
		if i >= 44 {
			p.Violations = 2
		}
		slow := 1.0
		if i >= 15 && i < 25 {
			slow = 4
		}
		p.Latency = map[string]WindowLatency{
			"book":   {N: 10, P50: 0.004 * slow, P95: 0.009 * slow, P99: 0.012 * slow},
			"switch": {N: 6, P50: 0.08 * slow, P95: 0.2 * slow, P99: 0.3 * slow},
		}
		for range 10 {
			book.Observe(0.004 * slow)
			sw.Observe(0.08 * slow)
		}
		s.Timeline = append(s.Timeline, p)
	}
	s.Latency = map[string]Latency{"book": book.Latency(), "switch": sw.Latency()}
	s.LatencyHistograms = map[string]*Histogram{"book": book.Compact(), "switch": sw.Compact()}
	return s
}
