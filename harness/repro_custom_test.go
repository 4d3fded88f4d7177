package harness

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/harness/trace"
	"github.com/telechaos/telechaos/scenarios"
)

// reproLabOpens counts the opens of the test's registered target.
var reproLabOpens atomic.Int32

// A user's driver registered as its own scheme: it stands up its system (an
// embedded clinic with list-scope, as a lab's build with the bug would be).
func init() {
	target.MustRegister("harnesstest-lab", target.OpenerFunc(func(ctx context.Context, ref string, opts target.Options) (*target.Opened, error) {
		reproLabOpens.Add(1)
		opts.Bugs = []string{"list-scope:1"}
		op, err := target.Open(ctx, TargetEmbedded, opts)
		if err != nil {
			return nil, err
		}
		return &target.Opened{Ref: ref, Target: op.Target, URL: op.URL, MediaHost: op.MediaHost, OnClose: op.Close}, nil
	}))
}

// A run against a registered custom target gets its repro trace, naming
// that target, and the trace replays through the same driver.
func TestReproCustomTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls and minimisation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	const ref = "harnesstest-lab://bench-1"
	sc := &scenarios.Scenario{
		Name: "repro-custom-target", Seed: 3, Media: true, Target: ref,
		Population: scenarios.Population{Patients: 4, Clinicians: 1},
		Executor:   scenarios.Executor{Type: scenarios.Closed, VUs: 2},
		Duration:   dur(20 * time.Second),
		Settle:     dur(3 * time.Second),
		Behaviour: scenarios.Behaviour{SwitchToVideo: 0, Replay: 1, ProbeOther: 0,
			CallMin: dur(300 * time.Millisecond), CallMax: dur(500 * time.Millisecond),
			ThinkMin: dur(0), ThinkMax: dur(10 * time.Millisecond)},
		Expect: "replay-list-ownership",
	}
	dir := filepath.Join(t.TempDir(), "report")
	before := reproLabOpens.Load()
	res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitViolation {
		t.Fatalf("exit %d, want a violation (%+v)", res.ExitCode, res.Summary.Violations)
	}
	runOpens := reproLabOpens.Load() - before
	if runOpens < 2 {
		t.Errorf("the custom target was opened %d times: want the run's and the minimisation's", runOpens)
	}
	file := filepath.Join(dir, "repro-1.trace")
	tr, err := trace.ParseFile(file)
	if err != nil {
		t.Fatalf("repro-1.trace: %v (summary repro traces %q)", err, res.Summary.ReproTraces)
	}
	if tr.Target != ref || tr.Expect != "replay-list-ownership" || len(tr.Bugs) != 0 {
		t.Errorf("trace header %+v: want target %s, the invariant, no bugs", tr.Header, ref)
	}
	m, err := driver.NewMediaFactory(driver.MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before = reproLabOpens.Load()
	n, total, err := trace.Repro(ctx, file, trace.ReproOptions{Options: trace.Options{Media: m, DataDir: t.TempDir()}, Times: 3})
	if err != nil || n != 3 || total != 3 {
		t.Errorf("repro: reproduced %d/%d, err %v", n, total, err)
	}
	if got := reproLabOpens.Load() - before; got != 3 {
		t.Errorf("repro opened the custom target %d times, want 3", got)
	}
}

// crashLabControl counts the stops of the test's controllable custom target.
type crashLabControl struct {
	target.Control
	stops atomic.Int32
}

func (c *crashLabControl) Stop(ctx context.Context, crash bool) error {
	c.stops.Add(1)
	return c.Control.Stop(ctx, crash)
}

var crashLabStops atomic.Int32

// A registered driver whose targets the harness can crash: its Control is
// what the scenario's clinic-crash faults and the trace's crash_target ops
// act through.
func init() {
	target.MustRegister("harnesstest-crashlab", target.OpenerFunc(func(ctx context.Context, ref string, opts target.Options) (*target.Opened, error) {
		op, err := target.Open(ctx, TargetEmbedded, opts) // the scenario's bugs, as the run passes them
		if err != nil {
			return nil, err
		}
		ctl := &crashLabControl{Control: op.Control}
		return &target.Opened{Target: op.Target, URL: op.URL, MediaHost: op.MediaHost, Control: ctl,
			OnClose: func() error { crashLabStops.Add(ctl.stops.Load()); return op.Close() }}, nil
	}))
}

// bug-lost-on-crash against a registered controllable target: the faults
// crash it through its Control, and the repro trace carries crash_target
// ops that replay through the same driver.
func TestReproCustomTargetCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls, target crashes and minimisation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	const ref = "harnesstest-crashlab://rack-2"
	sc := loadBuiltin(t, "bug-lost-on-crash")
	sc.Target = ref
	dir := filepath.Join(t.TempDir(), "report")
	before := crashLabStops.Load()
	res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir, ReproBudget: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitViolation || !res.Summary.ExpectMet {
		t.Fatalf("exit %d, verdict %s", res.ExitCode, res.Summary.Verdict)
	}
	if crashLabStops.Load() == before {
		t.Error("the faults never stopped the custom target through its Control")
	}
	file := filepath.Join(dir, "repro-1.trace")
	tr, err := trace.ParseFile(file)
	if err != nil {
		t.Fatalf("repro-1.trace: %v (summary repro traces %q)", err, res.Summary.ReproTraces)
	}
	crashes := 0
	for _, op := range tr.Ops {
		if op.Op == trace.OpCrashTarget {
			crashes++
		}
	}
	if crashes == 0 || tr.Target != ref || len(tr.Bugs) != 1 {
		t.Errorf("trace %+v has %d crash_target ops: want >= 1, target %s, the scenario's bug", tr.Header, crashes, ref)
	}
	m, err := driver.NewMediaFactory(driver.MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, total, err := trace.Repro(ctx, file, trace.ReproOptions{Options: trace.Options{Media: m, DataDir: t.TempDir()}, Times: 2})
	if err != nil || n != 2 || total != 2 {
		t.Errorf("repro: reproduced %d/%d, err %v", n, total, err)
	}
}
