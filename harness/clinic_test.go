package harness

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// Runs against the embedded clinic with real WebRTC calls.

func mediaScenario(patients int) *scenarios.Scenario {
	return &scenarios.Scenario{
		Name: "harness-media", Seed: 7, Media: true, Target: TargetEmbedded,
		Population: scenarios.Population{Patients: patients, Clinicians: 4},
		Executor:   scenarios.Executor{Type: scenarios.Closed, VUs: 10},
		Duration:   dur(30 * time.Second),
		Settle:     dur(5 * time.Second),
		Behaviour: scenarios.Behaviour{SwitchToVideo: 0.6, Replay: 1, ProbeOther: 0.3,
			CallMin: dur(1 * time.Second), CallMax: dur(2 * time.Second), SwitchMin: 0.3, SwitchMax: 0.5,
			ThinkMin: dur(0), ThinkMax: dur(50 * time.Millisecond)},
		Expect: "pass",
	}
}

func TestEmbeddedMediaRunPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "report")
	var mu sync.Mutex
	events := map[EventKind]int64{}
	res, err := Run(ctx, RunConfig{Scenario: mediaScenario(20), ReportDir: dir, OnEvent: func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		events[e.Kind]++
		if e.N != events[e.Kind] {
			t.Errorf("%s event N=%d, want %d", e.Kind, e.N, events[e.Kind])
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	mu.Lock()
	if events[EventConnected] != 20 || events[EventEnded] != 20 || events[EventEnding] != 20 ||
		events[EventSwitched] != int64(s.Counts.Switches) || events[EventSwitching] < events[EventSwitched] {
		t.Errorf("events %v, switches %d", events, s.Counts.Switches)
	}
	mu.Unlock()
	if s.Verdict != reports.VerdictPass {
		t.Errorf("verdict %s, violations %+v", s.Verdict, s.Violations)
	}
	c := s.Counts
	t.Logf("counts %+v", c)
	if c.Patients != 20 || c.CallsConnected != 20 || c.CallsEnded != 20 || c.CallsFailed != 0 {
		t.Errorf("calls: %+v", c)
	}
	if c.Switches == 0 || c.Switches == 20 {
		t.Errorf("switches %d: the plan switches about 60%% of calls", c.Switches)
	}
	if c.ReplaysFetched != 40 || c.DurabilityChecked != 40 {
		t.Errorf("replays fetched %d durability checked %d, want 40 each", c.ReplaysFetched, c.DurabilityChecked)
	}
	if c.FramesChecked == 0 || c.LiveFramesChecked == 0 || c.UntaggedFrames != 0 {
		t.Errorf("frames checked %d live %d untagged %d", c.FramesChecked, c.LiveFramesChecked, c.UntaggedFrames)
	}
	if c.FramesAcked < c.FramesSent*9/10 {
		t.Errorf("acked %d of %d sent", c.FramesAcked, c.FramesSent)
	}
	if v := counterValue(t, res.Metrics.Registry, "telechaos_media_frames_sent_total", map[string]string{"kind": "video"}); v == 0 {
		t.Error("no video frames sent")
	}
	if v := counterValue(t, res.Metrics.Registry, "telechaos_media_frames_received_total", map[string]string{"kind": "video"}); v == 0 {
		t.Error("no video frames received live")
	}
	for _, op := range []string{metrics.LatBook, metrics.LatJoin, metrics.LatSwitch, metrics.LatEnd, metrics.LatList, metrics.LatReplay, metrics.LatMedia} {
		if s.Latency[op].Count == 0 {
			t.Errorf("no %s latency samples", op)
		}
	}
	if _, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile)); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, reports.HTMLFile)); err != nil {
		t.Error(err)
	}
	if len(s.Timeline) < 2 {
		t.Errorf("timeline has %d samples", len(s.Timeline))
	}
	if problems, err := testutil.CollectAndLint(res.Metrics.Registry); err != nil || len(problems) > 0 {
		t.Errorf("lint after a run: %v %v", err, problems)
	}
}

func TestEmbeddedListScopeBugIsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sc := mediaScenario(12)
	sc.Bugs = []string{"list-scope"}
	sc.Population.Clinicians = 2 // each clinician serves several patients
	sc.Behaviour.ProbeOther = 0
	sc.Expect = oracle.ReplayListOwnership
	dir := filepath.Join(t.TempDir(), "report")
	res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if res.ExitCode != ExitViolation || !s.ExpectMet {
		t.Fatalf("exit %d expect met %v by invariant %v", res.ExitCode, s.ExpectMet, s.ViolationsByInvariant)
	}
	found := false
	for _, v := range s.Violations {
		if v.Invariant != oracle.ReplayListOwnership {
			continue
		}
		found = true
		if v.Viewer == "" || v.Owner == "" || v.Viewer == v.Owner {
			t.Errorf("violation must name a viewer and a different owner: %+v", v)
		}
		if v.Evidence != "" {
			if _, err := os.Stat(filepath.Join(dir, v.Evidence)); err != nil {
				t.Error(err)
			}
		}
	}
	if !found {
		t.Error("no replay-list-ownership violation listed")
	}
	if got := counterValue(t, res.Metrics.Registry, "telechaos_violations_total", map[string]string{"invariant": oracle.ReplayListOwnership}); got == 0 {
		t.Error("violations metric not counted")
	}
}

func TestEmbeddedCancelMidRunWritesReport(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	sc := mediaScenario(200)
	sc.Behaviour.CallMin, sc.Behaviour.CallMax = dur(5*time.Second), dur(6*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 1)
	dir := filepath.Join(t.TempDir(), "report")
	start := time.Now()
	res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir, ProgressEvery: 100 * time.Millisecond,
		Progress: func(p Progress) {
			if p.CallsActive > 0 {
				select {
				case calls <- struct{}{}:
					cancel()
				default:
				}
			}
		}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitInterrupted {
		t.Errorf("exit %d, want %d", res.ExitCode, ExitInterrupted)
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Errorf("interrupted run took %v", d)
	}
	s, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if s.Verdict != reports.VerdictInterrupted || s.Counts.Patients >= 200 {
		t.Errorf("verdict %s patients %d", s.Verdict, s.Counts.Patients)
	}
	// Calls in flight were ended, not abandoned: their recordings were checked.
	if s.Counts.CallsEnded == 0 {
		t.Errorf("no call ended after the interrupt: %+v", s.Counts)
	}
	if len(s.Violations) != 0 {
		t.Errorf("interrupt produced violations: %+v", s.Violations)
	}
}

func TestEmbeddedMediaFreeRun(t *testing.T) {
	sc := mediaScenario(10)
	sc.Media = false
	sc.Behaviour.ProbeOther = 1
	res, err := Run(context.Background(), RunConfig{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Summary.Counts
	if res.Summary.Verdict != reports.VerdictPass || c.CallsEnded != 10 || c.ReplaysFetched != 20 || c.CallsConnected != 0 {
		t.Errorf("verdict %s counts %+v violations %+v", res.Summary.Verdict, c, res.Summary.Violations)
	}
	if c.DurabilityChecked != 20 || c.Probes == 0 {
		t.Errorf("durability %d probes %d", c.DurabilityChecked, c.Probes)
	}
}
