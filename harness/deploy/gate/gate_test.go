package gate

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/deploy"
	"github.com/telechaos/telechaos/internal/dockertest"
	"github.com/telechaos/telechaos/scenarios"
)

// One clinic image for the package, built on first use and removed by
// TestMain, so each test does not pay for a build.
var (
	imageOnce sync.Once
	imageID   string
	imageErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if imageID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := deploy.RemoveImage(ctx, imageID); err != nil {
			fmt.Fprintf(os.Stderr, "gate tests: remove test image: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		cancel()
	}
	os.Exit(code)
}

// gateRunBudget bounds one gate run (a scenario of seconds plus container
// start and stop): generous, so a loaded 2-core machine never reaches it
// when nothing is wrong; a hung run still ends.
const gateRunBudget = 10 * time.Minute

func testImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("Docker image and containers: slow; make test runs it")
	}
	dockertest.Require(t, deploy.DockerAvailable)
	imageOnce.Do(func() {
		// No limit of the test's own: BuildClinicImage bounds each stage by
		// its build budget (TELECHAOS_IMAGE_BUILD_TIMEOUT), which a loaded
		// machine does not reach when nothing is wrong.
		ctx := context.Background()
		root, err := FindRepoRoot()
		if err != nil {
			imageErr = err
			return
		}
		start := time.Now()
		imageID, imageErr = deploy.BuildClinicImage(ctx, root, "telechaos/clinic:gate-test-"+fmt.Sprint(os.Getpid()))
		t.Logf("BuildClinicImage: %v", time.Since(start).Round(time.Millisecond))
	})
	if imageErr != nil {
		t.Fatalf("build clinic image: %v", imageErr)
	}
	return imageID
}

// small makes release-gate fit a test: about 24 patients over 12 s, real
// WebRTC through the published UDP port, every invariant judged.
func small(sc *scenarios.Scenario) {
	sc.Population.Patients = 24
	sc.Population.Clinicians = 4
	sc.Executor.Rate = 2
	sc.Executor.MaxInFlight = 24
	sc.Duration.Duration = 12 * time.Second
	sc.Settle.Duration = 8 * time.Second
	sc.Behaviour.CallMin.Duration = 2 * time.Second
	sc.Behaviour.CallMax.Duration = 3 * time.Second
}

// describe logs what a gate run did, for the report and for failures.
func describe(t *testing.T, res *Result) {
	t.Helper()
	s := res.Summary
	t.Logf("verdict %s exit %d, report %s", s.Verdict, res.ExitCode, res.ReportDir)
	t.Logf("summary: %+v", s.Counts)
	for i, v := range res.Violations {
		if i == 3 {
			t.Logf("... and %d more violations", len(res.Violations)-i)
			break
		}
		t.Logf("violation %s: %s", v.Invariant, v.Detail)
	}
	if c := res.Chaos; c != nil {
		t.Logf("chaos: rejoins %d (failed %d), retries %d, restarts %d, calls failed %d, users errored %d",
			c.Rejoins, c.RejoinFailed, c.Retries, c.Restarts, c.CallsFailed, c.UsersErrored)
	}
	for _, w := range res.Windows {
		t.Logf("window %s (%s) %s..%s = %v err=%q", w.Fault, w.Trigger, w.Start.Format("15:04:05.000"),
			w.End.Format("15:04:05.000"), w.End.Sub(w.Start).Round(time.Millisecond), w.Err)
	}
}

// The release gate against the correct clinic with a SIGKILL and restart of
// its container in the middle of the run: calls in flight die with it, and
// none of that may be reported as a violation.
func TestGateKillRestartPasses(t *testing.T) {
	img := testImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), gateRunBudget)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, t, Config{
		Image: img,
		Edit: func(sc *scenarios.Scenario) {
			small(sc)
			// A kill makes requests fail by design; the gate under chaos
			// judges the invariants, not the error rate.
			sc.Thresholds = nil
		},
		// Down 2 s, then the start: calls in flight die with the container.
		Faults: []Fault{{Kind: deploy.FaultKill, Trigger: chaos.Trigger{At: chaos.D(6 * time.Second), For: chaos.D(2 * time.Second)}}},
	})
	t.Logf("gate run: %v", time.Since(start).Round(time.Millisecond))
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	describe(t, res)
	if err != nil {
		t.Errorf("run error: %v", err)
	}
	if len(res.Windows) != 1 || res.Windows[0].Open() || res.Windows[0].Err != "" {
		t.Errorf("want one closed kill window without error, got %+v", res.Windows)
	}
	if n := len(res.Violations); n != 0 || res.ExitCode != harness.ExitPass {
		t.Errorf("correct clinic with a kill: %d violations, exit %d, want 0 and %d", n, res.ExitCode, harness.ExitPass)
	}
}

// The same gate with the switch-reuse bug switched on through the
// container's environment must fail with a violation (exit 1).
func TestGateSwitchReuseViaEnvFails(t *testing.T) {
	img := testImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), gateRunBudget)
	defer cancel()
	res, err := Run(ctx, t, Config{
		Image: img,
		Env:   map[string]string{EnvBugs: "switch-reuse:1"},
		Edit: func(sc *scenarios.Scenario) {
			small(sc)
			sc.Behaviour.SwitchToVideo = 1
		},
	})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	describe(t, res)
	if res.ExitCode != harness.ExitViolation {
		t.Errorf("switch-reuse through CLINIC_BUGS: exit %d (%v), want %d", res.ExitCode, err, harness.ExitViolation)
	}
}

// Pause, network disconnect and a graceful stop of the container, one after
// the other in one run: each window opens and heals without error and the
// correct clinic breaks no invariant, recording-durability included (the
// runner knows the container windows: calls that straddle a disconnect or
// a stop rejoin, and the frames sent into the outage are allowed for).
func TestGateOtherContainerFaultsPass(t *testing.T) {
	img := testImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), gateRunBudget)
	defer cancel()
	at := func(a, d time.Duration) chaos.Trigger { return chaos.Trigger{At: chaos.D(a), For: chaos.D(d)} }
	res, err := Run(ctx, t, Config{
		Image: img,
		Edit: func(sc *scenarios.Scenario) {
			small(sc)
			sc.Duration.Duration = 15 * time.Second
			sc.Thresholds = nil
		},
		Faults: []Fault{
			{Kind: deploy.FaultPause, Trigger: at(3*time.Second, 2*time.Second)},
			{Kind: deploy.FaultDisconnect, Trigger: at(7*time.Second, 2*time.Second)},
			{Kind: deploy.FaultStop, Trigger: at(11*time.Second, time.Second)},
		},
	})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	describe(t, res)
	if err != nil {
		t.Errorf("run error: %v", err)
	}
	var kinds []string
	for _, w := range res.Windows {
		kinds = append(kinds, w.Params[chaos.ParamKind])
		if w.Open() || w.Err != "" {
			t.Errorf("window %s: open %v, err %q", w.Fault, w.Open(), w.Err)
		}
	}
	if want := []string{deploy.FaultPause, deploy.FaultDisconnect, deploy.FaultStop}; !slices.Equal(kinds, want) {
		t.Errorf("windows %v, want %v", kinds, want)
	}
	if n := len(res.Violations); n != 0 || res.ExitCode != harness.ExitPass {
		t.Errorf("correct clinic under container faults: %d violations, exit %d, want 0 and %d", n, res.ExitCode, harness.ExitPass)
	}
	if res.Summary.Counts.CallsEnded == 0 {
		t.Error("no call ended: the run did not exercise the clinic")
	}
	// The disconnect and the stop restart the target for the runner.
	if res.Chaos == nil || res.Chaos.Restarts != 2 {
		t.Errorf("chaos report %+v: want 2 restarts (disconnect, stop)", res.Chaos)
	}
}
