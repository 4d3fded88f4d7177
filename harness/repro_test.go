package harness

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/trace"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// A small list-scope run: the violation is minimised into repro-1.trace,
// which replays it every time.
func TestRunWritesMinimisedReproTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls and minimisation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	sc := &scenarios.Scenario{
		Name: "repro-list-scope", Seed: 3, Media: true, Target: TargetEmbedded, Bugs: []string{"list-scope:1"},
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
	res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitViolation {
		t.Fatalf("exit %d, want a violation (%+v)", res.ExitCode, res.Summary.Violations)
	}
	file := filepath.Join(dir, "repro-1.trace")
	tr, err := trace.ParseFile(file)
	if err != nil {
		t.Fatalf("repro-1.trace: %v", err)
	}
	patients := 0
	for _, u := range tr.Users {
		if u.Role == models.Patient {
			patients++
		}
	}
	t.Logf("repro-1.trace: %d users (%d patients), %d ops, bug seed %d", len(tr.Users), patients, len(tr.Ops), tr.BugSeed)
	if patients > 2 || tr.Expect != "replay-list-ownership" || tr.Target != trace.TargetEmbedded || len(tr.Bugs) != 1 {
		t.Errorf("trace header %+v with %d patients", tr.Header, patients)
	}
	// summary.json and the evidence name the repro command.
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s reports.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	want := "telechaos repro " + file + " --times 10"
	if len(s.ReproTraces) != 1 || s.ReproTraces[0] != want {
		t.Errorf("summary repro_traces %q, want [%q]", s.ReproTraces, want)
	}
	found := false
	for _, v := range s.Violations {
		if v.ReproTrace == want {
			found = true
			ev, err := os.ReadFile(filepath.Join(dir, v.Evidence))
			if err != nil || !strings.Contains(string(ev), "repro-1.trace") {
				t.Errorf("evidence %s does not name the trace (%v)", v.Evidence, err)
			}
		}
	}
	if !found {
		t.Error("no violation in the summary carries the repro trace command")
	}
	m, err := driver.NewMediaFactory(driver.MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, total, err := trace.Repro(ctx, file, trace.ReproOptions{Options: trace.Options{Media: m, DataDir: t.TempDir()}, Times: 3})
	if err != nil || n != 3 || total != 3 {
		t.Errorf("repro: reproduced %d/%d, err %v", n, total, err)
	}
}
