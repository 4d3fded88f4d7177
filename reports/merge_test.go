package reports

import (
	"github.com/telechaos/telechaos/models"

	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestHistIndexBounds(t *testing.T) {
	for _, sec := range []float64{0, 1e-6, 50e-6, 51e-6, 0.001, 0.0123, 0.5, 1, 7.3, 100, 1e6, math.NaN()} {
		i := HistIndex(sec)
		if i < 0 || i >= HistBuckets {
			t.Fatalf("HistIndex(%g) = %d out of range", sec, i)
		}
		if sec > 50e-6 && sec < HistBound(HistBuckets-2) {
			if sec > HistBound(i)*(1+1e-9) || sec <= HistBound(i-1)*(1-1e-9) {
				t.Errorf("%g in bucket %d (%g, %g]", sec, i, HistBound(i-1), HistBound(i))
			}
		}
	}
}

func TestHistogramQuantileWithinABucket(t *testing.T) {
	var b Buckets
	for i := 1; i <= 1000; i++ {
		b.Observe(float64(i) / 1000) // 1ms .. 1s
	}
	for _, q := range []float64{.5, .9, .95, .99} {
		got, want := b.Quantile(q), q
		if got < want || got > want*math.Exp2(1.0/8)*1.001 {
			t.Errorf("p%g = %g, want within a bucket above %g", q*100, got, want)
		}
	}
	if b.Quantile(1) != 1 || b.Latency().Max != 1 {
		t.Errorf("max %g", b.Quantile(1))
	}
	var empty Buckets
	if empty.Quantile(.5) != 0 || empty.Compact() != nil {
		t.Error("empty histogram")
	}
}

func TestHistogramMergeIsExact(t *testing.T) {
	var a, b, all Buckets
	for i := range 500 {
		v := 0.001 * float64(1+i%97)
		a.Observe(v)
		all.Observe(v)
		w := 0.01 * float64(1+i%13)
		b.Observe(w)
		all.Observe(w)
	}
	// Through the JSON form, as a merge reads it.
	var merged Buckets
	for _, x := range []*Buckets{&a, &b} {
		raw, _ := json.Marshal(x.Compact())
		var h Histogram
		if err := json.Unmarshal(raw, &h); err != nil {
			t.Fatal(err)
		}
		d, err := h.Dense()
		if err != nil {
			t.Fatal(err)
		}
		merged.Add(d)
	}
	for _, q := range []float64{.5, .9, .99} {
		if merged.Quantile(q) != all.Quantile(q) {
			t.Errorf("p%g: merged %g, whole %g", q*100, merged.Quantile(q), all.Quantile(q))
		}
	}
	if merged.N != all.N || merged.Count != all.Count {
		t.Error("buckets differ")
	}
}

func TestHistogramRejectsBadInput(t *testing.T) {
	for name, h := range map[string]Histogram{
		"schema":   {Schema: "other", Count: 1, Counts: []int64{1}},
		"range":    {Schema: HistSchema, Count: 1, Offset: HistBuckets, Counts: []int64{1}},
		"negative": {Schema: HistSchema, Count: -1, Counts: []int64{-1}},
		"count":    {Schema: HistSchema, Count: 5, Counts: []int64{1}},
	} {
		if _, err := h.Dense(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := (&Histogram{Schema: "x"}).Dense(); !errors.Is(err, ErrHistSchema) {
		t.Errorf("schema error %v does not wrap ErrHistSchema", err)
	}
}

// shard builds a passing shard whose switch latencies are all lat.
func shard(id string, start time.Time, lat float64, n int, errs, reqs int) *Summary {
	var b Buckets
	for range n {
		b.Observe(lat)
	}
	return &Summary{
		Verdict: VerdictPass, RunID: id, Seed: 1, Scenario: "launch-video-switch", Target: "embedded",
		StartedAt: start, DurationSeconds: 30, Repro: "telechaos run --shard " + id, Invariants: AllInvariants,
		ViolationsByInvariant: map[string]int{}, Violations: []Violation{}, Expect: "pass",
		Counts:            Counts{Patients: 10, CallsEnded: 9, Operations: reqs, OperationErrors: errs, FramesSent: 1000},
		Latency:           map[string]Latency{"switch": b.Latency()},
		LatencyHistograms: map[string]*Histogram{"switch": b.Compact()},
		Thresholds: []Threshold{
			{Metric: "latency.switch", Stat: "p95", Limit: "max 750ms", Value: b.Quantile(.95), Pass: b.Quantile(.95) <= .75},
			{Metric: "error_rate", Limit: "max 0.02", Value: float64(errs) / float64(reqs), Pass: float64(errs)/float64(reqs) <= .02,
				Note: fmt.Sprintf("%d of %d requests (probes excluded)", errs, reqs)},
			{Metric: "setup_rate", Limit: "min 1", Value: 0.6, Pass: false},
		},
		Timeline: []Sample{{T: 1, Ops: 10, UsersActive: 2}, {T: 2, Ops: 25, UsersActive: 3}, {T: 30, Ops: int64(reqs)}},
		Coverage: map[string]map[string]int64{"switch": {"none": 5}},
	}
}

func TestMergeAddsAndReevaluates(t *testing.T) {
	a := shard("a", t0, 0.1, 96, 1, 100)                   // p95 100ms, 1% errors
	b := shard("b", t0.Add(2*time.Second), 1.5, 4, 2, 100) // 4 slow switches
	b.Violations = []Violation{{Invariant: "replay-access-control", At: t0.Add(10 * time.Second), Detail: "x", Evidence: EvidenceFile(1)}}
	b.ViolationsByInvariant["replay-access-control"] = 1
	b.Verdict, b.ExitCode = VerdictViolation, 1
	b.FaultWindows = []FaultWindow{{Fault: "http-latency", Start: t0.Add(5 * time.Second), End: t0.Add(8 * time.Second)}}
	a.Authz = &models.AuthzMatrix{Status: models.AuthzRun, Cells: []models.AuthzCell{{Route: "GET /r", Identity: "patient", Variant: "token", Tried: 3, Denied: 3}}}
	b.Authz = &models.AuthzMatrix{Status: models.AuthzRun, Cells: []models.AuthzCell{{Route: "GET /r", Identity: "patient", Variant: "token", Tried: 2, Denied: 1, Leaked: 1}, {Route: "GET /c", Identity: "clinician", Variant: "no-token", Tried: 1, Denied: 1}}}
	a.ICE = &ICE{Connected: 30, Relayed: 30, RelayedShare: 1, RelayOnly: true}
	b.ICE = &ICE{Connected: 10, Relayed: 0}
	m, err := Merge([]*Summary{a, b}, []string{"shard-0", "shard-1"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Authz == nil || len(m.Authz.Cells) != 2 || m.Authz.Totals().Tried != 6 || m.Authz.Totals().Leaked != 1 {
		t.Errorf("authz not added across shards: %+v", m.Authz)
	}
	if m.ICE == nil || m.ICE.Connected != 40 || m.ICE.Relayed != 30 || m.ICE.RelayedShare != 0.75 || m.ICE.RelayOnly {
		t.Errorf("ice not added across shards: %+v", m.ICE)
	}
	if m.Counts.Patients != 20 || m.Counts.Operations != 200 || m.Counts.FramesSent != 2000 {
		t.Errorf("counts not added: %+v", m.Counts)
	}
	if m.Verdict != VerdictViolation || m.ExitCode != 1 || len(m.Violations) != 1 || m.Violations[0].Shard != "shard-1" ||
		m.Violations[0].Repro != b.Repro || m.ViolationsByInvariant["replay-access-control"] != 1 {
		t.Errorf("violation not kept with its shard: %s %+v", m.Verdict, m.Violations)
	}
	if len(m.FaultWindows) != 1 || m.FaultWindows[0].Shard != "shard-1" {
		t.Errorf("fault windows %+v", m.FaultWindows)
	}
	if m.Coverage["switch"]["none"] != 10 {
		t.Errorf("coverage %v", m.Coverage)
	}
	th := map[string]Threshold{}
	for _, x := range m.Thresholds {
		th[x.Metric] = x
	}
	// 100 switches, 4 of them at 1.5s: p95 is still fast (rank 95 of 100),
	// p99 is not; each shard alone would say otherwise for p95 (b fails).
	if x := th["latency.switch"]; !x.Pass || x.Value > 0.11 {
		t.Errorf("merged p95 %+v", x)
	}
	if x := th["error_rate"]; x.Value != 0.015 || !x.Pass || x.Den != 200 {
		t.Errorf("merged error rate %+v", x)
	}
	if x := th["setup_rate"]; math.Abs(x.Value-1.2) > 1e-9 || !x.Pass {
		t.Errorf("setup rate adds across shards: %+v", x)
	}
	if m.Latency["switch"].Count != 100 || m.Latency["switch"].Max != 1.5 {
		t.Errorf("latency %+v", m.Latency["switch"])
	}
	if m.Seeds != nil {
		t.Errorf("one seed reported as %v", m.Seeds)
	}
	if m.DurationSeconds != 32 || len(m.Timeline) < 30 {
		t.Errorf("duration %g timeline %d", m.DurationSeconds, len(m.Timeline))
	}
	if last := m.Timeline[len(m.Timeline)-1]; last.Ops != 200 {
		t.Errorf("timeline end ops %d, want 200", last.Ops)
	}
}

func TestMergeThresholdFailsOverMergedData(t *testing.T) {
	a := shard("a", t0, 0.1, 90, 0, 100)
	b := shard("b", t0, 1.5, 10, 5, 100) // 10% slow overall: p95 fails
	m, err := Merge([]*Summary{a, b}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Verdict != VerdictThresholdsFailed || m.ExitCode != 4 {
		t.Errorf("verdict %s exit %d, thresholds %+v", m.Verdict, m.ExitCode, m.Thresholds)
	}
}

func TestMergeErrors(t *testing.T) {
	if _, err := Merge(nil, nil); !errors.Is(err, ErrMerge) {
		t.Errorf("empty merge: %v", err)
	}
	a := shard("a", t0, 0.1, 10, 0, 10)
	a.LatencyHistograms["switch"].Schema = "old"
	if _, err := Merge([]*Summary{a}, []string{"a"}); !errors.Is(err, ErrHistSchema) {
		t.Errorf("bad schema: %v", err)
	}
	// A shard without histograms cannot support a merged percentile: the
	// threshold fails and says why, rather than guessing.
	b := shard("b", t0, 0.1, 10, 0, 10)
	b.LatencyHistograms = nil
	m, err := Merge([]*Summary{shard("c", t0, 0.1, 10, 0, 10), b}, []string{"c", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Thresholds[0].Pass || !strings.Contains(m.Thresholds[0].Note, "no latency histogram in b") {
		t.Errorf("threshold without histogram: %+v", m.Thresholds[0])
	}
	e := shard("e", t0, 0.1, 10, 0, 10)
	e.Verdict, e.ExitCode, e.Error = VerdictError, 3, "target down"
	m, _ = Merge([]*Summary{shard("d", t0, 0.1, 10, 0, 10), e}, []string{"d", "e"})
	if m.ExitCode != 3 || !strings.Contains(m.Error, "e: target down") {
		t.Errorf("error shard: %d %q", m.ExitCode, m.Error)
	}
}

func TestParseLimit(t *testing.T) {
	mx, mn, err := parseLimit("max 750ms, min 0.5")
	if err != nil || *mx != 0.75 || *mn != 0.5 {
		t.Errorf("got %v %v %v", mx, mn, err)
	}
	for _, bad := range []string{"", "750ms", "max fast", "above 2"} {
		if _, _, err := parseLimit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A merge judges a threshold by the bounds the shards' runs read (Max, Min
// in base units), not by re-reading the display string: a limit written as
// the user wrote it (" 500ms", quoted) merges like any other.
func TestMergeJudgesByRecordedBounds(t *testing.T) {
	half := 0.5
	mk := func(num, den float64) *Summary {
		return &Summary{Thresholds: []Threshold{{Metric: "error_rate", Limit: `max " 0.5"`, Max: &half, Value: num / den, Num: num, Den: den, Pass: num/den <= half}}}
	}
	got := mergeThresholds([]*Summary{mk(1, 10), mk(9, 10)}, []string{"a", "b"}, nil, nil)
	if len(got) != 1 || got[0].Note == "" || got[0].Value != 0.5 || !got[0].Pass || got[0].Max == nil {
		t.Fatalf("merged %+v, want 10 of 20 = 0.5 passing max 0.5", got)
	}
	got = mergeThresholds([]*Summary{mk(2, 10), mk(9, 10)}, []string{"a", "b"}, nil, nil)
	if got[0].Pass {
		t.Fatalf("merged %+v, want 11 of 20 failing max 0.5", got[0])
	}
	if strings.Contains(got[0].Note, "neither a number") {
		t.Fatalf("the display string was re-read: %s", got[0].Note)
	}
}
