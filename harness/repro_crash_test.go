package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/embedded"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/trace"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/scenarios"
)

// The bug-lost-on-crash scenario: its recording-durability violation is
// minimised into a repro trace with a crash_target op that verifies, replays
// every time, and shows nothing on the correct clinic.
func TestRunWritesCrashReproTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls, clinic crashes and minimisation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	sc := loadBuiltin(t, "bug-lost-on-crash")
	dir := filepath.Join(t.TempDir(), "report")
	var logs bytes.Buffer
	res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir, ReproBudget: 40 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitViolation || !res.Summary.ExpectMet {
		t.Fatalf("exit %d, verdict %s", res.ExitCode, res.Summary.Verdict)
	}
	file := filepath.Join(dir, "repro-1.trace")
	tr, err := trace.ParseFile(file)
	if err != nil {
		t.Fatalf("repro-1.trace: %v", err)
	}
	t.Logf("repro-1.trace: %d users, ops %q", len(tr.Users), tr.Ops)
	crashes := 0
	for _, op := range tr.Ops {
		if op.Op == trace.OpCrashTarget {
			crashes++
		}
	}
	if crashes == 0 || tr.Expect != oracle.RecordingDurability || tr.Target != trace.TargetEmbedded {
		t.Errorf("trace %+v has %d crash_target ops, want >= 1", tr.Header, crashes)
	}
	// The runner verified it: every verification run reproduced.
	verified := ""
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "repro trace written") && strings.Contains(msg, "repro-1.trace") {
			verified, _ = rec["verified"].(string)
		}
	}
	if n, total, ok := strings.Cut(verified, "/"); !ok || n != total || n == "0" {
		t.Errorf("repro-1.trace verified %q, want every verification run", verified)
	}
	m, err := driver.NewMediaFactory(driver.MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, total, err := trace.Repro(ctx, file, trace.ReproOptions{Options: trace.Options{Media: m, DataDir: t.TempDir()}, Times: 3})
	if err != nil || n != 3 || total != 3 {
		t.Errorf("repro: reproduced %d/%d, err %v", n, total, err)
	}
	// The correct clinic, same trace: no violation of any kind.
	tr.Bugs = nil
	for i := range 2 {
		out, err := trace.RunOnce(ctx, tr, trace.Options{Media: m, DataDir: t.TempDir()})
		if err != nil || len(out.Violations) != 0 {
			t.Errorf("correct clinic run %d: err %v, violations %+v", i+1, err, out.Violations)
		}
	}
}

// Only a target the run opened with a Control has its crashes and restarts
// in a repro trace (a replay opens the same reference and gets the Control
// again): not a URL, not a NewTarget.
func TestReproRunHandsOverTargetFaultsOnlyWithAControl(t *testing.T) {
	rt, _, _, err := chaos.NewRuntime(chaos.RuntimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec := rt.Recorder()
	rec.End(rec.Begin("clinic-crash", map[string]string{chaos.ParamKind: chaos.KindClinicCrash}, "at 5s"), nil)
	rec.End(rec.Begin("slow", map[string]string{chaos.ParamKind: chaos.KindHTTPLatency}, "at 1s"), nil)
	r := &run{sc: &scenarios.Scenario{Name: "x", Target: TargetEmbedded}, ledger: models.NewLedger(), chaos: rt}
	if got := r.reproRun().TargetFaults; len(got) != 0 {
		t.Errorf("no Control: %d target faults handed over", len(got))
	}
	r.control = &embedded.Clinic{}
	if got := r.reproRun().TargetFaults; len(got) != 1 || got[0].Fault != "clinic-crash" {
		t.Errorf("with a Control: %+v, want the crash only", got)
	}
	r.cfg.NewTarget = func(driver.Observer) (driver.Target, error) { return nil, nil }
	if got := r.reproRun().TargetFaults; len(got) != 0 {
		t.Errorf("NewTarget: %d target faults handed over", len(got))
	}
}
