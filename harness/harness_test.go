package harness

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/drivertest"
	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

func dur(d time.Duration) scenarios.Duration { return scenarios.Duration{Duration: d} }

// smallScenario is a quick media-free scenario for the fake target.
func smallScenario(patients int) *scenarios.Scenario {
	return &scenarios.Scenario{
		Name: "test", Seed: 42, Media: false,
		Population: scenarios.Population{Patients: patients, Clinicians: 3},
		Executor:   scenarios.Executor{Type: scenarios.Closed, VUs: 5},
		Duration:   dur(20 * time.Second),
		Settle:     dur(2 * time.Second),
		Behaviour: scenarios.Behaviour{Replay: 1, ProbeOther: 0.5, CallMin: dur(10 * time.Millisecond),
			CallMax: dur(20 * time.Millisecond), SwitchMin: 0.3, SwitchMax: 0.6},
		Expect: "pass",
	}
}

func fakeRun(t *testing.T, ctx context.Context, sc *scenarios.Scenario, tweak func(*drivertest.Fake)) (*Result, error, *drivertest.Fake) {
	t.Helper()
	var ft *drivertest.Fake
	res, err := Run(ctx, RunConfig{
		Scenario:  sc,
		ReportDir: filepath.Join(t.TempDir(), "report"),
		NewTarget: func(obs driver.Observer) (driver.Target, error) {
			ft = drivertest.New(obs)
			if tweak != nil {
				tweak(ft)
			}
			return ft, nil
		},
		Grace: 2 * time.Second,
	})
	return res, err, ft
}

func TestFakeRunPasses(t *testing.T) {
	res, err, ft := fakeRun(t, context.Background(), smallScenario(20), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Verdict != reports.VerdictPass || res.ExitCode != ExitPass || !s.ExpectMet {
		t.Errorf("verdict %s exit %d expect_met %v violations %+v", s.Verdict, res.ExitCode, s.ExpectMet, s.Violations)
	}
	c := s.Counts
	if c.Patients != 20 || c.Clinicians != 3 || c.Consultations != 20 || c.CallsEnded != 20 || ft.Ends() != 20 {
		t.Errorf("counts %+v ends %d", c, ft.Ends())
	}
	// Both participants look at every recording.
	if c.ReplaysFetched != 40 {
		t.Errorf("replays fetched %d, want 40", c.ReplaysFetched)
	}
	if c.Probes == 0 {
		t.Errorf("no probes ran: %+v", c)
	}
	if c.DurabilityChecked != 40 {
		t.Errorf("durability checked %d, want 40", c.DurabilityChecked)
	}
	for _, f := range []string{reports.SummaryFile, reports.JUnitFile} {
		if _, err := os.Stat(filepath.Join(res.ReportDir, f)); err != nil {
			t.Errorf("report file: %v", err)
		}
	}
	if _, err := reports.ReadSummary(filepath.Join(res.ReportDir, reports.SummaryFile)); err != nil {
		t.Error(err)
	}
	if l := s.Latency[metrics.LatBook]; l.Count != 20 {
		t.Errorf("book latency samples %d, want 20", l.Count)
	}
	if got := counterValue(t, res.Metrics.Registry, "telechaos_operations_total", map[string]string{"op": string(driver.OpEnd), "outcome": metrics.OutcomeOK}); got != 20 {
		t.Errorf("end ok counter %v", got)
	}
	if got := testutil.ToFloat64(res.Metrics.UsersActive); got != 0 {
		t.Errorf("users active after run: %v", got)
	}
}

func TestMetricsLintClean(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewMetrics(reg)
	m.Latency(metrics.LatBook, 10*time.Millisecond)
	m.Sent("audio")
	problems, err := testutil.CollectAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// Violations are pre-initialised so dashboards see zeros, not absences.
	if n := testutil.CollectAndCount(reg, "telechaos_violations_total"); n != len(oracle.Invariants) {
		t.Errorf("violation series %d, want %d", n, len(oracle.Invariants))
	}
	want := `
# HELP telechaos_media_frames_sent_total Watermarked media frames sent.
# TYPE telechaos_media_frames_sent_total counter
telechaos_media_frames_sent_total{kind="audio"} 1
telechaos_media_frames_sent_total{kind="video"} 0
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want), "telechaos_media_frames_sent_total"); err != nil {
		t.Error(err)
	}
}

func TestListLeakIsAViolationNamingViewerAndOwner(t *testing.T) {
	sc := smallScenario(10)
	sc.Behaviour.ProbeOther = 0
	res, err, _ := fakeRun(t, context.Background(), sc, func(f *drivertest.Fake) { f.LeakList = true })
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitViolation || res.Summary.ViolationsByInvariant[oracle.ReplayListOwnership] == 0 {
		t.Fatalf("exit %d by invariant %v", res.ExitCode, res.Summary.ViolationsByInvariant)
	}
	v := res.Summary.Violations[0]
	if v.Viewer == "" || v.Owner == "" || v.Viewer == v.Owner {
		t.Errorf("violation should name a viewer and a different owner: %+v", v)
	}
	if _, err := os.Stat(filepath.Join(res.ReportDir, v.Evidence)); err != nil {
		t.Errorf("evidence: %v", err)
	}
	if res.FirstViolation < 0 {
		t.Error("no time to first violation")
	}
}

func TestBOLAProbeIsAnAccessViolation(t *testing.T) {
	sc := smallScenario(12)
	sc.Behaviour.ProbeOther = 1
	res, err, _ := fakeRun(t, context.Background(), sc, func(f *drivertest.Fake) { f.BOLA = true })
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.ViolationsByInvariant[oracle.ReplayAccessControl] == 0 {
		t.Errorf("no access-control violation: %+v counts %+v", res.Summary.ViolationsByInvariant, res.Summary.Counts)
	}
}

func TestCancelStillWritesReport(t *testing.T) {
	sc := smallScenario(50)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	res, err, _ := fakeRun(t, ctx, sc, func(f *drivertest.Fake) { f.EndDelay = 200 * time.Millisecond })
	if err != nil {
		t.Fatalf("interrupt is not an error: %v", err)
	}
	if res.ExitCode != ExitInterrupted || res.Summary.Verdict != reports.VerdictInterrupted {
		t.Errorf("exit %d verdict %s", res.ExitCode, res.Summary.Verdict)
	}
	if res.Summary.Counts.Patients >= 50 {
		t.Errorf("arrivals did not stop: %d patients", res.Summary.Counts.Patients)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("interrupt took %v", time.Since(start))
	}
	s, err := reports.ReadSummary(filepath.Join(res.ReportDir, reports.SummaryFile))
	if err != nil || s.Verdict != reports.VerdictInterrupted {
		t.Errorf("report after interrupt: %v %+v", err, s)
	}
}

func TestUnreachableTargetIsExit3(t *testing.T) {
	res, err, _ := fakeRun(t, context.Background(), smallScenario(3), func(f *drivertest.Fake) { f.Down = true })
	if !errors.Is(err, ErrTarget) {
		t.Fatalf("err %v, want ErrTarget", err)
	}
	if res == nil || res.ExitCode != ExitTarget || res.Summary.Verdict != reports.VerdictError {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(filepath.Join(res.ReportDir, reports.JUnitFile)); err != nil {
		t.Errorf("report not written on target failure: %v", err)
	}
}

func TestUnreachableURLIsExit3(t *testing.T) {
	sc := smallScenario(3)
	sc.Target = "http://127.0.0.1:1"
	res, err := Run(context.Background(), RunConfig{Scenario: sc})
	if !errors.Is(err, ErrTarget) || res == nil || res.ExitCode != ExitTarget {
		t.Fatalf("err %v res %+v", err, res)
	}
}

func TestBadScenarioIsConfigError(t *testing.T) {
	for name, mod := range map[string]func(*scenarios.Scenario){
		"no patients":     func(s *scenarios.Scenario) { s.Population.Patients = 0 },
		"unknown exec":    func(s *scenarios.Scenario) { s.Executor.Type = "bogus" },
		"bad rate":        func(s *scenarios.Scenario) { s.Executor = scenarios.Executor{Type: scenarios.ConstantArrivalRate} },
		"bad target":      func(s *scenarios.Scenario) { s.Target = "ftp://x" },
		"bad threshold":   func(s *scenarios.Scenario) { s.Thresholds = []scenarios.Threshold{{Metric: "latency.nope"}} },
		"bad probability": func(s *scenarios.Scenario) { s.Behaviour.Replay = 2 },
		"unknown bug":     func(s *scenarios.Scenario) { s.Bugs = []string{"no-such-bug"} },
		"bug on a URL":    func(s *scenarios.Scenario) { s.Bugs = []string{"list-scope"}; s.Target = "http://127.0.0.1:1" },
	} {
		t.Run(name, func(t *testing.T) {
			sc := smallScenario(3)
			mod(sc)
			res, err := Run(context.Background(), RunConfig{Scenario: sc})
			if !errors.Is(err, ErrConfig) || res != nil {
				t.Errorf("err %v res %v", err, res)
			}
		})
	}
}

func TestThresholdsFail(t *testing.T) {
	sc := smallScenario(5)
	tiny, big := "1ns", "0.5"
	sc.Thresholds = []scenarios.Threshold{
		{Metric: "latency.book", Stat: "p50", Max: &tiny},
		{Metric: "error_rate", Max: &big},
	}
	res, err, _ := fakeRun(t, context.Background(), sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitThresholds || res.Summary.Verdict != reports.VerdictThresholdsFailed {
		t.Errorf("exit %d verdict %s thresholds %+v", res.ExitCode, res.Summary.Verdict, res.Summary.Thresholds)
	}
	th := res.Summary.Thresholds
	if len(th) != 2 || th[0].Pass || !th[1].Pass {
		t.Errorf("thresholds %+v", th)
	}
}

func TestMetricsServedDuringRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sc := smallScenario(10)
	var body string
	_, err = Run(context.Background(), RunConfig{
		Scenario: sc, MetricsAddr: addr, ProgressEvery: 20 * time.Millisecond,
		NewTarget: func(obs driver.Observer) (driver.Target, error) {
			f := drivertest.New(obs)
			f.EndDelay = 100 * time.Millisecond // keep the run alive for a scrape
			return f, nil
		},
		Progress: func(p Progress) {
			if body != "" || p.Final {
				return
			}
			c := http.Client{Timeout: 2 * time.Second}
			resp, err := c.Get("http://" + addr + "/metrics")
			if err != nil {
				t.Errorf("scrape: %v", err)
				body = "failed"
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Parse the exposition rather than match strings: every series carries
	// the run's labels (run_id, and shard when sharded) beside its own.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("scrape is not Prometheus text: %v\n%s", err, body)
	}
	for _, name := range []string{"telechaos_operations_total", "telechaos_users_active", "telechaos_judged_total",
		"telechaos_not_judged_total", "go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes"} {
		if families[name] == nil {
			t.Errorf("scrape lacks %s", name)
		}
	}
	found := false
	for _, m := range families["telechaos_violations_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["invariant"] != "replay-list-ownership" {
			continue
		}
		found = true
		if v := m.GetCounter().GetValue(); v != 0 {
			t.Errorf("violations{replay-list-ownership} = %v, want 0", v)
		}
		if labels["run_id"] == "" {
			t.Errorf("scraped series lacks the run_id label: %v", labels)
		}
	}
	if !found {
		t.Errorf("scrape lacks telechaos_violations_total{invariant=\"replay-list-ownership\"}")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("metrics listener still open after the run")
	}
}

func TestReproCarriesOverrides(t *testing.T) {
	sc := smallScenario(2)
	sc.Bugs = []string{"list-scope:0.5"}
	res, err := Run(context.Background(), RunConfig{Scenario: sc, ScenarioRef: "my file.yaml", ReproArgs: []string{"--set", "behaviour.replay=0.5"},
		NewTarget: func(obs driver.Observer) (driver.Target, error) { return drivertest.New(obs), nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := "telechaos run --scenario 'my file.yaml' --seed 42 --users 2 --bug list-scope:0.5 --media=false --set behaviour.replay=0.5"
	if res.Summary.Repro != want {
		t.Errorf("repro\n got %s\nwant %s", res.Summary.Repro, want)
	}
}

func TestAbandonedCallsAreNotEnded(t *testing.T) {
	sc := smallScenario(30)
	sc.Behaviour.Abandon = 0.5
	res, err, ft := fakeRun(t, context.Background(), sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Summary.Counts
	if c.CallsAbandoned == 0 || c.CallsEnded == 0 || c.CallsAbandoned+c.CallsEnded != 30 || ft.Ends() != c.CallsEnded {
		t.Errorf("counts %+v ends %d", c, ft.Ends())
	}
	if res.Summary.Verdict != reports.VerdictPass {
		t.Errorf("verdict %s: %+v", res.Summary.Verdict, res.Summary.Violations)
	}
	// The same seed draws the same plans: a second run abandons the same count.
	res2, err, _ := fakeRun(t, context.Background(), sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Summary.Counts.CallsAbandoned != c.CallsAbandoned {
		t.Errorf("abandoned %d then %d with the same seed", c.CallsAbandoned, res2.Summary.Counts.CallsAbandoned)
	}
}

func TestUncheckedInvariantsDoNotFailTheRun(t *testing.T) {
	sc := smallScenario(10)
	sc.Behaviour.ProbeOther = 0
	sc.Invariants = []string{oracle.ReplayAccessControl}
	res, err, _ := fakeRun(t, context.Background(), sc, func(f *drivertest.Fake) { f.LeakList = true })
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitPass || res.Summary.IgnoredViolations == 0 || len(res.Violations) != 0 {
		t.Errorf("exit %d ignored %d violations %d", res.ExitCode, res.Summary.IgnoredViolations, len(res.Violations))
	}
}

func TestRefusedJoinsAreEndedAndFailTheRun(t *testing.T) {
	sc := smallScenario(4)
	sc.Media = true
	res, err, ft := fakeRun(t, context.Background(), sc, nil)
	if !errors.Is(err, ErrTarget) || res.ExitCode != ExitTarget {
		t.Fatalf("err %v exit %d", err, res.ExitCode)
	}
	if c := res.Summary.Counts; c.CallsFailed != 4 || ft.Ends() != 4 {
		t.Errorf("failed %d ended %d, want 4 and 4", c.CallsFailed, ft.Ends())
	}
	if !strings.Contains(res.Summary.Error, "join") {
		t.Errorf("error does not name the join: %s", res.Summary.Error)
	}
}

// TestUnwritableReportIsExit3: a report directory that was writable when
// the run began but is gone when the report is written (a full disk, a
// cleaner) makes the run a failure, never a silent pass.
func TestUnwritableReportIsExit3(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "report")
	var once sync.Once
	res, err := Run(context.Background(), RunConfig{Scenario: smallScenario(2), ReportDir: dir,
		NewTarget: func(obs driver.Observer) (driver.Target, error) {
			return drivertest.New(func(o driver.Observation) {
				// On the first request, replace the directory by a file.
				once.Do(func() {
					if err := os.RemoveAll(dir); err != nil {
						t.Error(err)
					}
					if err := os.WriteFile(dir, nil, 0o644); err != nil {
						t.Error(err)
					}
				})
				if obs != nil {
					obs(o)
				}
			}), nil
		}})
	if !errors.Is(err, ErrTarget) || res == nil || res.ExitCode != ExitTarget || res.ReportDir != "" {
		t.Errorf("err %v result %+v", err, res)
	}
}

// TestViolationOutranksInterrupt: a run interrupted after it found
// violations exits 1, not 130, and still says it was interrupted.
func TestViolationOutranksInterrupt(t *testing.T) {
	sc := smallScenario(200)
	sc.Behaviour.ProbeOther = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ft *drivertest.Fake
	res, err := Run(ctx, RunConfig{
		Scenario: sc, ReportDir: filepath.Join(t.TempDir(), "report"), Grace: 2 * time.Second, ReproBudget: -1,
		NewTarget: func(obs driver.Observer) (driver.Target, error) {
			ft = drivertest.New(obs)
			ft.LeakList, ft.EndDelay = true, 20*time.Millisecond
			return ft, nil
		},
		ProgressEvery: 20 * time.Millisecond,
		Progress: func(p Progress) {
			if p.Violations >= 30 {
				cancel()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if !s.Interrupted || s.Counts.Patients >= 200 {
		t.Fatalf("the run was not interrupted (patients %d): the test proves nothing", s.Counts.Patients)
	}
	if res.ExitCode != ExitViolation || s.Verdict != reports.VerdictViolation || len(s.Violations) < 30 {
		t.Fatalf("exit %d verdict %s with %d violations, want exit 1", res.ExitCode, s.Verdict, len(s.Violations))
	}
	if !slices.ContainsFunc(s.Also, func(a string) bool { return strings.Contains(a, "interrupted") }) {
		t.Errorf("the interrupt is not reported beside the verdict: %q", s.Also)
	}
	j := reports.JUnit(s)
	if j.Suites[0].Errors == 0 {
		t.Errorf("JUnit hides the interrupt: %+v", j.Suites[0].Cases)
	}
}

// TestViolationOutranksInfrastructureFailure: every patient failed (the end
// answers 500), which is a target failure, but the lists leaked first: the
// leak decides (exit 1) and the failure is reported beside it.
func TestViolationOutranksInfrastructureFailure(t *testing.T) {
	sc := smallScenario(40)
	sc.Behaviour.ProbeOther = 0
	res, err, _ := fakeRun(t, context.Background(), sc, func(f *drivertest.Fake) { f.LeakList, f.EndFails = true, true })
	if !errors.Is(err, ErrTarget) {
		t.Fatalf("err %v, want the target failure reported too", err)
	}
	s := res.Summary
	if len(s.Violations) < 30 {
		t.Fatalf("%d violations: the test needs 30", len(s.Violations))
	}
	if res.ExitCode != ExitViolation || s.Verdict != reports.VerdictViolation || s.ExitCode != ExitViolation {
		t.Fatalf("exit %d verdict %s, want exit 1 (a CI retry on exit 3 would retry a leak away)", res.ExitCode, s.Verdict)
	}
	if s.Error == "" || !slices.ContainsFunc(s.Also, func(a string) bool { return strings.Contains(a, "all 40 patients failed") }) {
		t.Errorf("the failure is not reported beside the verdict: error %q also %q", s.Error, s.Also)
	}
	got, rerr := reports.ReadSummary(filepath.Join(res.ReportDir, reports.SummaryFile))
	if rerr != nil || got.ExitCode != ExitViolation {
		t.Errorf("summary.json: %v exit %d", rerr, got.ExitCode)
	}
}

// TestUnwritableReportDirIsRefusedBeforeTraffic: the report directory is
// proven writable before the target sees a request.
func TestUnwritableReportDirIsRefusedBeforeTraffic(t *testing.T) {
	// A path under a regular file cannot be created, even by root (who
	// writes through permission bits).
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	requests := 0
	res, err := Run(context.Background(), RunConfig{Scenario: smallScenario(3), ReportDir: filepath.Join(file, "report"),
		NewTarget: func(obs driver.Observer) (driver.Target, error) {
			return drivertest.New(func(driver.Observation) { requests++ }), nil
		}})
	if !errors.Is(err, ErrConfig) || !errors.Is(err, reports.ErrReportDir) || res != nil {
		t.Fatalf("err %v result %v, want a configuration error naming the report directory", err, res)
	}
	if requests != 0 {
		t.Fatalf("%d requests reached the target before the report directory was checked", requests)
	}
}
