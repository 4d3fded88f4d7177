package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"telechaos/clinic/bugs"
	"telechaos/harness"
	"telechaos/scenarios"
)

// skippedBugs need machinery a plain run does not have yet, with the reason.
// (lost-on-crash runs with its scenario's restart chaos.)
var skippedBugs = map[bugs.ID]string{}

// chaosRows are the chaos checks of selftest: a bug a fault profile must
// still find, or the correct clinic (bug "") that must pass with zero
// violations under every fault.
var chaosRows = []struct{ scenario, bug, expect string }{
	{"chaos-network", "switch-race", "replay-content-ownership"},
	{"chaos-network", "", "pass"},
	{"chaos-restarts", "", "pass"},
}

// selftestRow is one line of the selftest table.
type selftestRow struct {
	name, expect, outcome string
	first                 time.Duration // -1: none
	took                  time.Duration
	ok                    bool
	infra                 bool
}

func cmdSelftest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("selftest", stderr)
	seeds := fs.Int("seeds", 5, "seeds for the correct clinic (zero false positives over each)")
	chaosSeeds := fs.Int("chaos-seeds", 1, "seeds for the correct clinic under each chaos scenario (the issue's sweep: 10)")
	quick := fs.Bool("quick", false, "smaller populations and one seed unless --seeds is given")
	report := fs.String("report", "", "write every run's report under this directory")
	verbose := fs.Bool("v", false, "verbose logs")
	var only multiFlag
	fs.Var(&only, "only", "run only these bugs (ID, repeatable); the correct clinic still runs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return harness.ExitUsage
		}
		fmt.Fprintf(stderr, "telechaos selftest: %v\n", err)
		return harness.ExitUsage
	}
	seedsGiven := false
	fs.Visit(func(f *flag.Flag) { seedsGiven = seedsGiven || f.Name == "seeds" })
	if *quick && !seedsGiven {
		*seeds = 1
	}
	if *seeds < 1 || *chaosSeeds < 0 || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "telechaos selftest: want --seeds >= 1, --chaos-seeds >= 0 and no arguments\n")
		return harness.ExitUsage
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cap := 0
	if *quick {
		cap = 10
	}
	runOne := func(name string, sc *scenarios.Scenario) (*harness.Result, time.Duration, error) {
		// Chaos scenarios are already small; fewer users would miss the
		// event triggers (the Nth end) and the overlapping switches.
		if cap > 0 && sc.Population.Patients > cap && len(sc.Chaos.Faults) == 0 {
			sc.Population.Patients = cap
		}
		dir := ""
		if *report != "" {
			dir = filepath.Join(*report, fmt.Sprintf("%s-s%d", name, sc.Seed))
		}
		st := time.Now()
		res, err := harness.Run(ctx, harness.RunConfig{Scenario: sc, ScenarioRef: name, ReportDir: dir, Logger: logger,
			// selftest proves detection; minimising each catch would add up to a minute per bug.
			ReproBudget: -1})
		return res, time.Since(st), err
	}

	want := map[string]bool{}
	for _, o := range only {
		for _, id := range strings.Split(o, ",") {
			id = strings.TrimPrefix(strings.TrimSpace(id), "bug-")
			if !slices.Contains(bugs.All, bugs.ID(id)) {
				fmt.Fprintf(stderr, "telechaos selftest: --only %s: unknown bug\n", id)
				return harness.ExitUsage
			}
			want[id] = true
		}
	}
	var rows []selftestRow
	for _, id := range bugs.All {
		if len(want) > 0 && !want[string(id)] {
			continue
		}
		name := "bug-" + string(id)
		if ctx.Err() != nil {
			break
		}
		if why, skip := skippedBugs[id]; skip {
			rows = append(rows, selftestRow{name: name, outcome: "skipped: " + why, first: -1, ok: true})
			continue
		}
		fmt.Fprintf(stderr, "selftest: %s ...\n", name)
		sc, err := scenarios.Load(name)
		if err != nil {
			rows = append(rows, selftestRow{name: name, outcome: "error: " + err.Error(), first: -1, infra: true})
			continue
		}
		res, took, err := runOne(name, sc)
		row := selftestRow{name: name, expect: sc.Expect, first: -1, took: took}
		switch {
		case res == nil || (err != nil && res.Summary.Verdict == "error"):
			row.outcome, row.infra = fmt.Sprintf("error: %v", err), true
		case res.Summary.ExpectMet:
			row.outcome, row.ok, row.first = "caught", true, res.FirstViolation
		default:
			row.outcome = fmt.Sprintf("MISSED (verdict %s)", res.Summary.Verdict)
		}
		rows = append(rows, row)
	}
	for _, cr := range chaosRows {
		if len(want) > 0 && (cr.bug == "" || !want[cr.bug]) {
			continue
		}
		n := 1
		if cr.bug == "" {
			n = *chaosSeeds
		}
		for seed := 1; seed <= n && ctx.Err() == nil; seed++ {
			label := cr.scenario + "+" + cr.bug
			if cr.bug == "" {
				label = fmt.Sprintf("%s correct s%d", cr.scenario, seed)
			}
			fmt.Fprintf(stderr, "selftest: %s ...\n", label)
			sc, err := scenarios.Load(cr.scenario)
			if err != nil {
				rows = append(rows, selftestRow{name: label, outcome: "error: " + err.Error(), first: -1, infra: true})
				continue
			}
			sc.Bugs, sc.Seed, sc.Expect = nil, uint64(seed), cr.expect
			if cr.bug != "" {
				sc.Bugs = []string{cr.bug + ":1"}
			}
			res, took, err := runOne(cr.scenario, sc)
			row := selftestRow{name: label, expect: cr.expect, first: -1, took: took}
			switch {
			case res == nil || (err != nil && res.Summary.Verdict == "error"):
				row.outcome, row.infra = fmt.Sprintf("error: %v", err), true
			case cr.bug != "" && res.Summary.ExpectMet:
				row.outcome, row.ok, row.first = "caught", true, res.FirstViolation
			case cr.bug != "":
				row.outcome = fmt.Sprintf("MISSED (verdict %s)", res.Summary.Verdict)
			case len(res.Summary.Violations) == 0:
				// Coverage shortfalls (exit 4) are not false positives; a
				// quick run may be too small to meet them.
				row.outcome, row.ok = "clean", true
			default:
				v := res.Summary.Violations[0]
				row.outcome = fmt.Sprintf("FALSE POSITIVE: %d (%s)", len(res.Summary.Violations), v.Invariant)
			}
			rows = append(rows, row)
		}
	}
	for seed := 1; seed <= *seeds && ctx.Err() == nil; seed++ {
		name := "smoke"
		fmt.Fprintf(stderr, "selftest: correct clinic, seed %d ...\n", seed)
		sc, err := scenarios.Load(name)
		label := fmt.Sprintf("correct clinic s%d", seed)
		if err != nil {
			rows = append(rows, selftestRow{name: label, outcome: "error: " + err.Error(), first: -1, infra: true})
			continue
		}
		sc.Bugs, sc.Seed, sc.Expect = nil, uint64(seed), "pass"
		sc.Population.Patients = min(sc.Population.Patients, 10)
		res, took, err := runOne(name, sc)
		row := selftestRow{name: label, expect: "no violations", first: -1, took: took}
		switch {
		case res == nil || (err != nil && res.Summary.Verdict == "error"):
			row.outcome, row.infra = fmt.Sprintf("error: %v", err), true
		case len(res.Summary.Violations) == 0:
			row.outcome, row.ok = "clean", true
		default:
			v := res.Summary.Violations[0]
			row.outcome = fmt.Sprintf("FALSE POSITIVE: %d (%s)", len(res.Summary.Violations), v.Invariant)
		}
		rows = append(rows, row)
	}

	fmt.Fprintf(stdout, "\n%-26s %-26s %-10s %s\n", "selftest", "outcome", "detected", "took")
	exit, infra := 0, false
	for _, r := range rows {
		first := "-"
		if r.first >= 0 {
			first = r.first.Round(10 * time.Millisecond).String()
		}
		took := "-"
		if r.took > 0 {
			took = r.took.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(stdout, "%-26s %-26s %-10s %s\n", truncate(r.name, 26), truncate(r.outcome, 26), first, took)
		if !r.ok {
			exit = harness.ExitViolation
		}
		infra = infra || r.infra
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "interrupted")
		return harness.ExitInterrupted
	}
	switch {
	case infra:
		fmt.Fprintln(stdout, "selftest: FAILED (runs failed to complete)")
		return harness.ExitTarget
	case exit != 0:
		fmt.Fprintln(stdout, "selftest: FAILED")
		return exit
	}
	fmt.Fprintln(stdout, "selftest: PASS (every bug caught, no false positives)")
	return 0
}
