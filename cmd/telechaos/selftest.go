package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/selftest"
)

// cmdSelftest runs `telechaos selftest`: harness/selftest runs and judges the
// table; this holds its flags and prints it.
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
	res, err := selftest.Run(ctx, selftest.Config{Seeds: *seeds, ChaosSeeds: *chaosSeeds, Quick: *quick, Only: only,
		ReportDir: *report, Progress: stderr,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		fmt.Fprintf(stderr, "telechaos selftest: %v\n", err)
		return harness.ExitUsage
	}
	printSelftest(stdout, res)
	return res.ExitCode
}

func printSelftest(w io.Writer, res *selftest.Result) {
	fmt.Fprintf(w, "\n%-26s %-26s %-10s %s\n", "selftest", "outcome", "detected", "took")
	for _, r := range res.Rows {
		first := "-"
		if r.First >= 0 {
			first = r.First.Round(10 * time.Millisecond).String()
		}
		took := "-"
		if r.Took > 0 {
			took = r.Took.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "%-26s %-26s %-10s %s\n", truncate(r.Name, 26), truncate(r.Outcome, 26), first, took)
	}
	fmt.Fprintln(w, res.Status())
}
