// Package selftest proves the harness on the embedded clinic: every
// catalogue bug is caught by its bug-<ID> scenario, the chaos profiles still
// find a bug under faults, and the correct clinic passes with zero
// violations over several seeds (no false positives). The CLI's
// `telechaos selftest` holds its flags and prints Result.Rows.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/embedded"
	"github.com/telechaos/telechaos/scenarios"
)

// ErrUnknownBug: Config.Only names a bug the catalogue does not have.
var ErrUnknownBug = errors.New("unknown bug")

// skippedBugs need machinery a plain run does not have yet, with the reason.
// (lost-on-crash runs with its scenario's restart chaos.)
var skippedBugs = map[string]string{}

// chaosRows are the chaos checks: a bug a fault profile must still find, or
// the correct clinic (bug "") that must pass with zero violations under
// every fault.
var chaosRows = []struct{ scenario, bug, expect string }{
	{"chaos-network", "switch-race", "replay-content-ownership"},
	{"chaos-network", "", "pass"},
	{"chaos-restarts", "", "pass"},
}

// quickPatients caps the population of the non-chaos runs in Quick mode, and
// of the correct-clinic runs always.
const quickPatients = 10

// Config is one selftest.
type Config struct {
	Seeds      int      // seeds of the correct clinic (smoke): >= 1
	ChaosSeeds int      // seeds of the correct clinic under each chaos scenario: >= 0
	Quick      bool     // smaller populations (the caller picks fewer seeds)
	Only       []string // run only these bugs (IDs, "bug-" prefix allowed); the correct clinic still runs
	ReportDir  string   // write every run's report under this directory ("" = none)
	Logger     *slog.Logger
	Progress   io.Writer // a "selftest: NAME ..." line before each run (nil = none)
	// Run runs one scenario (nil: harness.Run); tests stand in for it.
	Run func(context.Context, harness.RunConfig) (*harness.Result, error)
}

// Row is one line of the selftest table.
type Row struct {
	Name, Expect, Outcome string
	First                 time.Duration // time to the first violation; -1: none
	Took                  time.Duration // 0: did not run
	OK                    bool          // the row met its expectation
	Infra                 bool          // the run did not complete
}

// Result is a whole selftest.
type Result struct {
	Rows        []Row
	Interrupted bool // ctx ended before every row ran
	ExitCode    int  // harness.Exit*: 0 pass, ExitViolation a miss or false positive, ExitTarget a run failed, ExitInterrupted
}

// Status is the closing line of the table.
func (r *Result) Status() string {
	switch r.ExitCode {
	case 0:
		return "selftest: PASS (every bug caught, no false positives)"
	case harness.ExitInterrupted:
		return "interrupted"
	case harness.ExitTarget:
		return "selftest: FAILED (runs failed to complete)"
	}
	return "selftest: FAILED"
}

func (c *Config) check() (map[string]bool, error) {
	if c.Seeds < 1 || c.ChaosSeeds < 0 {
		return nil, fmt.Errorf("selftest: want seeds >= 1 and chaos seeds >= 0, got %d and %d", c.Seeds, c.ChaosSeeds)
	}
	all := embedded.BugIDs()
	want := map[string]bool{}
	for _, o := range c.Only {
		for _, id := range strings.Split(o, ",") {
			id = strings.TrimPrefix(strings.TrimSpace(id), "bug-")
			if !slices.Contains(all, id) {
				return nil, fmt.Errorf("%w: %q (the catalogue: %s)", ErrUnknownBug, id, strings.Join(all, ", "))
			}
			want[id] = true
		}
	}
	return want, nil
}

// Run runs the selftest. An error means the config is unusable (before
// anything ran); a bug missed or a run that failed is a row and an exit code.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	want, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if cfg.Run == nil {
		cfg.Run = harness.Run
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	progress := func(label string) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "selftest: %s ...\n", label)
		}
	}
	runOne := func(name string, sc *scenarios.Scenario) (*harness.Result, time.Duration, error) {
		// Chaos scenarios are already small; fewer users would miss the
		// event triggers (the Nth end) and the overlapping switches.
		if cfg.Quick && sc.Population.Patients > quickPatients && len(sc.Chaos.Faults) == 0 {
			sc.Population.Patients = quickPatients
		}
		dir := ""
		if cfg.ReportDir != "" {
			dir = filepath.Join(cfg.ReportDir, fmt.Sprintf("%s-s%d", name, sc.Seed))
		}
		st := time.Now()
		res, err := cfg.Run(ctx, harness.RunConfig{Scenario: sc, ScenarioRef: name, ReportDir: dir, Logger: cfg.Logger,
			// selftest proves detection; minimising each catch would add up to a minute per bug.
			ReproBudget: -1})
		return res, time.Since(st), err
	}
	loadErr := func(label string, err error) Row {
		return Row{Name: label, Outcome: "error: " + err.Error(), First: -1, Infra: true}
	}

	var rows []Row
	for _, id := range embedded.BugIDs() {
		if len(want) > 0 && !want[id] {
			continue
		}
		name := "bug-" + id
		if ctx.Err() != nil {
			break
		}
		if why, skip := skippedBugs[id]; skip {
			rows = append(rows, Row{Name: name, Outcome: "skipped: " + why, First: -1, OK: true})
			continue
		}
		progress(name)
		sc, err := scenarios.Load(name)
		if err != nil {
			rows = append(rows, loadErr(name, err))
			continue
		}
		res, took, err := runOne(name, sc)
		rows = append(rows, judgeBug(Row{Name: name, Expect: sc.Expect, First: -1, Took: took}, res, err))
	}
	for _, cr := range chaosRows {
		if len(want) > 0 && (cr.bug == "" || !want[cr.bug]) {
			continue
		}
		n := 1
		if cr.bug == "" {
			n = cfg.ChaosSeeds
		}
		for seed := 1; seed <= n && ctx.Err() == nil; seed++ {
			label := cr.scenario + "+" + cr.bug
			if cr.bug == "" {
				label = fmt.Sprintf("%s correct s%d", cr.scenario, seed)
			}
			progress(label)
			sc, err := scenarios.Load(cr.scenario)
			if err != nil {
				rows = append(rows, loadErr(label, err))
				continue
			}
			sc.Bugs, sc.Seed, sc.Expect = nil, uint64(seed), cr.expect
			if cr.bug != "" {
				sc.Bugs = []string{cr.bug + ":1"}
			}
			res, took, err := runOne(cr.scenario, sc)
			row := Row{Name: label, Expect: cr.expect, First: -1, Took: took}
			if cr.bug != "" {
				rows = append(rows, judgeBug(row, res, err))
			} else {
				rows = append(rows, judgeCorrect(row, res, err))
			}
		}
	}
	for seed := 1; seed <= cfg.Seeds && ctx.Err() == nil; seed++ {
		const name = "smoke"
		label := fmt.Sprintf("correct clinic s%d", seed)
		progress(fmt.Sprintf("correct clinic, seed %d", seed))
		sc, err := scenarios.Load(name)
		if err != nil {
			rows = append(rows, loadErr(label, err))
			continue
		}
		sc.Bugs, sc.Seed, sc.Expect = nil, uint64(seed), "pass"
		sc.Population.Patients = min(sc.Population.Patients, quickPatients)
		res, took, err := runOne(name, sc)
		rows = append(rows, judgeCorrect(Row{Name: label, Expect: "no violations", First: -1, Took: took}, res, err))
	}

	out := &Result{Rows: rows, Interrupted: ctx.Err() != nil}
	infra, failed := false, false
	for _, r := range rows {
		failed = failed || !r.OK
		infra = infra || r.Infra
	}
	switch {
	case out.Interrupted:
		out.ExitCode = harness.ExitInterrupted
	case infra:
		out.ExitCode = harness.ExitTarget
	case failed:
		out.ExitCode = harness.ExitViolation
	}
	return out, nil
}

// runFailed reports whether a run did not complete: no result, or an error
// the verdict calls one.
func runFailed(res *harness.Result, err error) bool {
	return res == nil || res.Summary == nil || (err != nil && res.Summary.Verdict == "error")
}

// judgeBug: a bug run passes when the run met its expectation (the expected
// invariant was violated).
func judgeBug(row Row, res *harness.Result, err error) Row {
	switch {
	case runFailed(res, err):
		row.Outcome, row.Infra = fmt.Sprintf("error: %v", runErr(res, err)), true
	case res.Summary.ExpectMet:
		row.Outcome, row.OK, row.First = "caught", true, res.FirstViolation
	default:
		row.Outcome = fmt.Sprintf("MISSED (verdict %s)", res.Summary.Verdict)
	}
	return row
}

// judgeCorrect: a correct-clinic run passes with zero violations. Coverage
// shortfalls (exit 4) are not false positives; a quick run may be too small
// to meet them.
func judgeCorrect(row Row, res *harness.Result, err error) Row {
	switch {
	case runFailed(res, err):
		row.Outcome, row.Infra = fmt.Sprintf("error: %v", runErr(res, err)), true
	case len(res.Summary.Violations) == 0:
		row.Outcome, row.OK = "clean", true
	default:
		v := res.Summary.Violations[0]
		row.Outcome = fmt.Sprintf("FALSE POSITIVE: %d (%s)", len(res.Summary.Violations), v.Invariant)
	}
	return row
}

func runErr(res *harness.Result, err error) error {
	if err == nil && (res == nil || res.Summary == nil) {
		return errors.New("no result")
	}
	return err
}
