package harness

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// Chaos runs against the embedded clinic (issue 5's "done when"), on the
// built-in chaos scenarios with fixed seeds.

func loadBuiltin(t *testing.T, name string) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func runChaos(t *testing.T, sc *scenarios.Scenario, dir string) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir})
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	return res
}

// The correct clinic survives crashes and restarts mid-call and during
// finalisation with zero violations; the report shows every window and the
// coverage, and the calls really rejoined.
func TestChaosRestartsCorrectClinic(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls and clinic restarts")
	}
	dir := filepath.Join(t.TempDir(), "report")
	res := runChaos(t, loadBuiltin(t, "chaos-restarts"), dir)
	s := res.Summary
	for _, v := range res.Violations {
		t.Errorf("false positive: %s: %s", v.Invariant, v.Detail)
	}
	if res.ExitCode != ExitPass {
		t.Errorf("exit %d (%s), want 0; shortfalls %v", res.ExitCode, s.Verdict, s.CoverageShortfalls)
	}
	b, err := os.ReadFile(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var js reports.Summary
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if len(js.FaultWindows) != 3 {
		t.Errorf("summary.json has %d fault windows, want 3 (crash, restart, crash-finalising): %+v", len(js.FaultWindows), js.FaultWindows)
	}
	for _, w := range js.FaultWindows {
		if w.End.IsZero() || w.Err != "" || w.Params[chaos.ParamKind] == "" {
			t.Errorf("window %+v: want closed, without error, with its kind", w)
		}
	}
	if js.Coverage[chaos.PathRejoin]["clinic-crash"] == 0 || js.Coverage[chaos.PathEnd][chaos.NoFault] == 0 {
		t.Errorf("coverage %v: want rejoins after clinic-crash and ends", js.Coverage)
	}
	cr := res.Chaos
	if cr == nil || cr.Restarts != 3 || cr.Rejoins == 0 {
		t.Fatalf("chaos report %+v: want 3 restarts and rejoins", cr)
	}
	if _, err := os.Stat(filepath.Join(dir, ChaosFile)); err != nil {
		t.Error(err)
	}
	// Every call is accounted for: ended, or failed and counted.
	if c := s.Counts; c.CallsEnded+c.CallsFailed+c.CallsAbandoned < c.Patients {
		t.Errorf("counts %+v: calls unaccounted for", c)
	}
	// Loss was measured per track against what was sent, and the calls the
	// crash reached were judged against it.
	judged := 0
	for _, l := range cr.Losses {
		if l.Sent > 0 && l.Allowed < l.Sent {
			judged++
		}
	}
	if judged == 0 {
		t.Errorf("no track judged against frames sent: %+v", cr.Losses)
	}
}

// With lost-on-crash the frames written before a crash are gone; the clinic
// recounts from its files, so only frames sent reveal it.
func TestChaosLostOnCrashCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls and clinic restarts")
	}
	res := runChaos(t, loadBuiltin(t, "bug-lost-on-crash"), "")
	if res.ExitCode != ExitViolation || !res.Summary.ExpectMet {
		t.Fatalf("exit %d, verdict %s, want 1 with recording-durability", res.ExitCode, res.Summary.Verdict)
	}
	found := false
	for _, v := range res.Violations {
		if v.Invariant == oracle.RecordingDurability && strings.Contains(v.Detail, "of those sent") && strings.Contains(v.Detail, "lost") {
			found = true
		}
	}
	if !found {
		t.Errorf("no recording-durability evidence measured against frames sent: %+v", res.Violations)
	}
}

// chaos-network's "end under a fault" coverage holds by construction: a quick
// fault opened by the end event (injected before the end is sent, with a
// window long enough for the wave's ends to answer) is required on the end
// path, so the requirement does not hang on where the switch-timed windows
// happen to fall on a loaded machine (it failed 4 runs in 10 when it did).
func TestChaosNetworkEndCoverageByConstruction(t *testing.T) {
	sc := loadBuiltin(t, "chaos-network")
	names := sc.Chaos.Names()
	required := map[string]int64{}
	for _, r := range sc.Chaos.Coverage {
		if r.Path == chaos.PathEnd {
			required[r.Fault] = r.Min
		}
	}
	if required[chaos.AnyFault] < 1 {
		t.Errorf("chaos-network no longer requires an end under a fault: %+v", sc.Chaos.Coverage)
	}
	found := false
	for i, f := range sc.Chaos.Faults {
		tr := f.Trigger
		if tr.On != chaos.EventEnd || tr.Delay.Duration != 0 || !strings.HasPrefix(f.Kind, "http-") {
			continue
		}
		if tr.For.Duration < 2*time.Second {
			t.Errorf("%s: window %v, want >= 2s so a loaded end still answers inside it", names[i], tr.For)
		}
		if required[names[i]] < 1 {
			t.Errorf("%s opens on end but no coverage requires end under it", names[i])
		}
		found = true
	}
	if !found {
		t.Errorf("chaos-network has no HTTP fault triggered on: end without delay; faults %v", names)
	}
}

// switch-race is still found when HTTP and media faults are on.
func TestChaosNetworkFindsSwitchRace(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	sc := loadBuiltin(t, "chaos-network")
	sc.Bugs = []string{"switch-race:1"}
	res := runChaos(t, sc, "")
	if res.Summary.ViolationsByInvariant[oracle.ReplayContentOwnership] == 0 {
		t.Errorf("switch-race missed under chaos-network: %v", res.Summary.ViolationsByInvariant)
	}
	if len(res.Summary.FaultWindows) == 0 {
		t.Error("no fault window opened")
	}
}

// A coverage requirement the run cannot meet fails it with exit 4, naming
// the shortfall.
func TestChaosCoverageShortfallExit4(t *testing.T) {
	sc := &scenarios.Scenario{
		Name: "coverage-shortfall", Seed: 1, Media: false, Target: TargetEmbedded,
		Population: scenarios.Population{Patients: 3, Clinicians: 1},
		Executor:   scenarios.Executor{Type: scenarios.Closed, VUs: 3},
		Duration:   dur(10 * time.Second), Settle: dur(time.Second),
		Behaviour: scenarios.Behaviour{Replay: 1, CallMin: dur(100 * time.Millisecond), CallMax: dur(100 * time.Millisecond),
			ThinkMin: dur(0), ThinkMax: dur(0)},
		Chaos: chaos.Profile{
			Faults:   []chaos.FaultSpec{{Kind: chaos.KindHTTPLatency, Latency: chaos.D(20 * time.Millisecond), Trigger: chaos.Trigger{On: chaos.EventEnd, Nth: 2, For: chaos.D(time.Second)}}},
			Coverage: []chaos.Requirement{{Path: chaos.PathSwitch, Fault: chaos.KindHTTPLatency, Min: 1}},
		},
	}
	res := runChaos(t, sc, "")
	if res.ExitCode != ExitThresholds {
		t.Errorf("exit %d (%s), want 4", res.ExitCode, res.Summary.Verdict)
	}
	if sf := res.Summary.CoverageShortfalls; len(sf) != 1 || !strings.Contains(sf[0], "switch under http-latency") {
		t.Errorf("shortfalls %v", sf)
	}
	if len(res.Summary.FaultWindows) != 1 || res.Summary.FaultWindows[0].Trigger != "end#2" {
		t.Errorf("windows %+v, want one opened by end#2", res.Summary.FaultWindows)
	}
}

// A profile that cannot run here is a configuration error (exit 2).
func TestChaosUnavailableIsConfigError(t *testing.T) {
	sc := &scenarios.Scenario{
		Name: "no-media", Seed: 1, Media: false, Target: TargetEmbedded,
		Population: scenarios.Population{Patients: 1, Clinicians: 1},
		Executor:   scenarios.Executor{Type: scenarios.Closed, VUs: 1},
		Duration:   dur(time.Second),
		Chaos:      chaos.Profile{Faults: []chaos.FaultSpec{{Kind: chaos.KindMediaLoss, Loss: 0.1}}},
	}
	res, err := Run(context.Background(), RunConfig{Scenario: sc})
	if err == nil || res == nil || res.ExitCode != ExitUsage {
		t.Fatalf("err %v, result %+v: want a config error (exit 2)", err, res)
	}
	if !strings.Contains(err.Error(), "media-loss") {
		t.Errorf("error %q does not name the fault", err)
	}
}

// The sweep: both chaos scenarios on the correct clinic over 10
// seeds, zero violations. About 4 minutes; TELECHAOS_CHAOS_SWEEP=1 runs it.
func TestChaosSweep10Seeds(t *testing.T) {
	if os.Getenv("TELECHAOS_CHAOS_SWEEP") == "" {
		t.Skip("set TELECHAOS_CHAOS_SWEEP=1 (about 4 minutes)")
	}
	for _, name := range []string{"chaos-network", "chaos-restarts"} {
		for seed := uint64(1); seed <= 10; seed++ {
			sc := loadBuiltin(t, name)
			sc.Seed = seed
			res := runChaos(t, sc, "")
			for _, v := range res.Violations {
				t.Errorf("%s seed %d: false positive %s: %s", name, seed, v.Invariant, v.Detail)
			}
			t.Logf("%s seed %d: exit %d, calls ended %d failed %d, windows %d, rejoins %d",
				name, seed, res.ExitCode, res.Summary.Counts.CallsEnded, res.Summary.Counts.CallsFailed,
				len(res.Summary.FaultWindows), res.Chaos.Rejoins)
		}
	}
}
