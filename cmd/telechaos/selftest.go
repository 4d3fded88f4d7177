package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/selftest"
)

var selftestCommand = &command{
	name: "selftest", args: "[flags]",
	summary: "prove every catalogue bug is caught, and no false positives",
	doc: `Runs each catalogue bug's scenario against the clinic with that bug (it
must be caught), and the correct clinic over --seeds seeds, also under each
chaos scenario (no violation may be reported), and prints the table.
Exit 0 when every row met its expectation, 1 otherwise.
`,
	run: cmdSelftest,
}

// cmdSelftest runs `telechaos selftest`: harness/selftest runs and judges the
// table; this holds its flags and prints it.
func cmdSelftest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("selftest", stderr)
	seeds := fs.Int("seeds", 5, "`N` seeds for the correct clinic (zero false positives over each)")
	chaosSeeds := fs.Int("chaos-seeds", 1, "`N` seeds for the correct clinic under each chaos scenario (the issue's sweep: 10)")
	quick := fs.Bool("quick", false, "smaller populations, and one seed unless --seeds is given")
	report := fs.String("report", "", "keep every run's report under `DIR`")
	verbose := fs.Bool("v", false, "verbose logs on stderr")
	var only multiFlag
	fs.Var(&only, "only", "run only catalogue bug `ID` (repeatable); the correct clinic still runs")
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	seedsGiven := false
	fs.Visit(func(f *flag.Flag) { seedsGiven = seedsGiven || f.Name == "seeds" })
	if *quick && !seedsGiven {
		*seeds = 1
	}
	if *seeds < 1 || *chaosSeeds < 0 || len(pos) > 0 {
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
