package selftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/embedded"
	"github.com/telechaos/telechaos/reports"
)

// fakeRuns stands in for harness.Run: each scenario gets the result outcome
// returns for it, and every config is recorded.
type fakeRuns struct {
	mu      sync.Mutex
	configs []harness.RunConfig
	outcome func(harness.RunConfig) (*harness.Result, error)
}

func (f *fakeRuns) run(_ context.Context, rc harness.RunConfig) (*harness.Result, error) {
	f.mu.Lock()
	f.configs = append(f.configs, rc)
	f.mu.Unlock()
	return f.outcome(rc)
}

// correct: every bug caught (ExpectMet), every clean run clean.
func correct(rc harness.RunConfig) (*harness.Result, error) {
	if len(rc.Scenario.Bugs) > 0 {
		return &harness.Result{Summary: &reports.Summary{Verdict: reports.VerdictViolation, ExpectMet: true}, FirstViolation: 1500 * time.Millisecond}, nil
	}
	return &harness.Result{Summary: &reports.Summary{Verdict: reports.VerdictPass, ExpectMet: true}, FirstViolation: -1}, nil
}

func rowNames(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Name)
	}
	return out
}

func TestAllCaughtIsAPass(t *testing.T) {
	f := &fakeRuns{outcome: correct}
	var progress bytes.Buffer
	res, err := Run(context.Background(), Config{Seeds: 2, ChaosSeeds: 1, Run: f.run, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, id := range embedded.BugIDs() {
		want = append(want, "bug-"+id)
	}
	want = append(want, "chaos-network+switch-race", "chaos-network correct s1", "chaos-restarts correct s1", "correct clinic s1", "correct clinic s2")
	if got := rowNames(res.Rows); !slices.Equal(got, want) {
		t.Errorf("rows %q\nwant %q", got, want)
	}
	for _, r := range res.Rows {
		if !r.OK || r.Infra {
			t.Errorf("row %+v not ok", r)
		}
		if strings.HasPrefix(r.Name, "bug-") && (r.Outcome != "caught" || r.First != 1500*time.Millisecond) {
			t.Errorf("row %+v: want caught at 1.5s", r)
		}
	}
	if res.ExitCode != 0 || res.Interrupted || !strings.Contains(res.Status(), "PASS") {
		t.Errorf("exit %d interrupted %v status %q", res.ExitCode, res.Interrupted, res.Status())
	}
	if n := strings.Count(progress.String(), "selftest: "); n != len(want) {
		t.Errorf("%d progress lines for %d runs:\n%s", n, len(want), progress.String())
	}
}

// What selftest hands to the runner: the bug scenarios as they are (capped in
// Quick mode), the chaos bug at probability 1, the correct clinic with no
// bugs, per-seed report directories, and no repro minimisation.
func TestRunConfigs(t *testing.T) {
	f := &fakeRuns{outcome: correct}
	dir := t.TempDir()
	if _, err := Run(context.Background(), Config{Seeds: 2, ChaosSeeds: 1, Quick: true, ReportDir: dir, Run: f.run}); err != nil {
		t.Fatal(err)
	}
	byRef := map[string][]harness.RunConfig{}
	for _, rc := range f.configs {
		byRef[rc.ScenarioRef] = append(byRef[rc.ScenarioRef], rc)
		if rc.ReproBudget != -1 {
			t.Errorf("%s: repro budget %v, want -1", rc.ScenarioRef, rc.ReproBudget)
		}
		if want := filepath.Join(dir, fmt.Sprintf("%s-s%d", rc.ScenarioRef, rc.Scenario.Seed)); rc.ReportDir != want {
			t.Errorf("report dir %q, want %q", rc.ReportDir, want)
		}
	}
	if ls := byRef["bug-list-scope"]; len(ls) != 1 || ls[0].Scenario.Population.Patients != quickPatients || len(ls[0].Scenario.Bugs) == 0 {
		t.Errorf("bug-list-scope runs %+v", ls)
	}
	cn := byRef["chaos-network"]
	if len(cn) != 2 || !slices.Equal(cn[0].Scenario.Bugs, []string{"switch-race:1"}) || cn[0].Scenario.Expect != "replay-content-ownership" ||
		len(cn[1].Scenario.Bugs) != 0 || cn[1].Scenario.Expect != "pass" || cn[1].Scenario.Population.Patients <= quickPatients {
		t.Errorf("chaos-network runs: %d, first bugs %v expect %q; quick must not shrink a chaos scenario", len(cn), cn[0].Scenario.Bugs, cn[0].Scenario.Expect)
	}
	sm := byRef["smoke"]
	if len(sm) != 2 || sm[0].Scenario.Seed != 1 || sm[1].Scenario.Seed != 2 || sm[0].Scenario.Population.Patients != quickPatients || len(sm[0].Scenario.Bugs) != 0 {
		t.Errorf("smoke runs %+v", sm)
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outcome func(harness.RunConfig) (*harness.Result, error)
		row     string // the failing row
		want    string // its outcome
		exit    int
	}{
		{"missed bug", func(rc harness.RunConfig) (*harness.Result, error) {
			if rc.ScenarioRef == "bug-cache-key" {
				return &harness.Result{Summary: &reports.Summary{Verdict: reports.VerdictPass}, FirstViolation: -1}, nil
			}
			return correct(rc)
		}, "bug-cache-key", "MISSED (verdict pass)", harness.ExitViolation},
		{"false positive", func(rc harness.RunConfig) (*harness.Result, error) {
			if rc.ScenarioRef == "smoke" {
				return &harness.Result{Summary: &reports.Summary{Verdict: reports.VerdictViolation,
					Violations: []reports.Violation{{Invariant: "replay-list-ownership"}, {Invariant: "live-routing"}}}}, nil
			}
			return correct(rc)
		}, "correct clinic s1", "FALSE POSITIVE: 2 (replay-list-ownership)", harness.ExitViolation},
		{"run failed", func(rc harness.RunConfig) (*harness.Result, error) {
			if rc.ScenarioRef == "chaos-restarts" {
				return nil, errors.New("clinic would not start")
			}
			return correct(rc)
		}, "chaos-restarts correct s1", "error: clinic would not start", harness.ExitTarget},
		{"error verdict", func(rc harness.RunConfig) (*harness.Result, error) {
			if rc.ScenarioRef == "bug-list-scope" {
				return &harness.Result{Summary: &reports.Summary{Verdict: reports.VerdictError}}, errors.New("target down")
			}
			return correct(rc)
		}, "bug-list-scope", "error: target down", harness.ExitTarget},
		{"no summary", func(rc harness.RunConfig) (*harness.Result, error) {
			if rc.ScenarioRef == "smoke" {
				return &harness.Result{}, nil
			}
			return correct(rc)
		}, "correct clinic s1", "error: no result", harness.ExitTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRuns{outcome: tc.outcome}
			res, err := Run(context.Background(), Config{Seeds: 1, ChaosSeeds: 1, Run: f.run})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(res.Rows, func(r Row) bool { return r.Name == tc.row })
			if i < 0 {
				t.Fatalf("no row %q in %q", tc.row, rowNames(res.Rows))
			}
			if r := res.Rows[i]; r.OK || r.Outcome != tc.want {
				t.Errorf("row %+v, want outcome %q and not ok", r, tc.want)
			}
			if res.ExitCode != tc.exit || !strings.Contains(res.Status(), "FAILED") {
				t.Errorf("exit %d status %q, want %d", res.ExitCode, res.Status(), tc.exit)
			}
			if len(res.Rows) != len(embedded.BugIDs())+4 {
				t.Errorf("%d rows: a failure must not stop the table", len(res.Rows))
			}
		})
	}
}

// Only narrows the bugs (IDs with or without bug-, comma-separated or
// repeated); the correct clinic on smoke still runs, the chaos rows of other
// bugs and of the correct clinic do not.
func TestOnly(t *testing.T) {
	f := &fakeRuns{outcome: correct}
	res, err := Run(context.Background(), Config{Seeds: 1, ChaosSeeds: 3, Only: []string{"bug-list-scope,switch-race"}, Run: f.run})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bug-list-scope", "bug-switch-race", "chaos-network+switch-race", "correct clinic s1"}
	if got := rowNames(res.Rows); !slices.Equal(got, want) || res.ExitCode != 0 {
		t.Errorf("rows %q exit %d, want %q", got, res.ExitCode, want)
	}
}

// A config that cannot run is an error before anything runs.
func TestBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown bug":    {Seeds: 1, Only: []string{"nope"}},
		"no seeds":       {Seeds: 0},
		"negative chaos": {Seeds: 1, ChaosSeeds: -1},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeRuns{outcome: correct}
			cfg.Run = f.run
			res, err := Run(context.Background(), cfg)
			if err == nil || res != nil || len(f.configs) != 0 {
				t.Errorf("err %v, result %v, %d runs", err, res, len(f.configs))
			}
			if name == "unknown bug" && (!errors.Is(err, ErrUnknownBug) || !strings.Contains(err.Error(), "list-scope")) {
				t.Errorf("err %v: want ErrUnknownBug listing the catalogue", err)
			}
		})
	}
}

// Interrupted mid-table: the rows so far, ExitInterrupted, nothing more run.
func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeRuns{}
	f.outcome = func(rc harness.RunConfig) (*harness.Result, error) {
		if len(f.configs) == 2 {
			cancel()
		}
		return correct(rc)
	}
	res, err := Run(ctx, Config{Seeds: 3, ChaosSeeds: 1, Run: f.run})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.ExitCode != harness.ExitInterrupted || res.Status() != "interrupted" || len(res.Rows) != 2 || len(f.configs) != 2 {
		t.Errorf("interrupted %v exit %d status %q rows %d runs %d", res.Interrupted, res.ExitCode, res.Status(), len(res.Rows), len(f.configs))
	}
}
