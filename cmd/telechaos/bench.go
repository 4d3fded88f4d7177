package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/internal/bench"
)

var benchCommand = &command{
	name: "bench", args: "[--quick] [--out FILE] [--only SECTION,...] [--no-install]",
	summary: "the performance suite, side by side with k6/vegeta/wrk",
	doc: `Runs the performance suite and writes its figures as JSON to --out (profiles
go next to it) and as a table on stdout.
Sections: floor, cpu, oracle, users, mixed, media, setup, detect.
--quick runs smaller, shorter sizes (under 5 minutes when k6, vegeta and wrk
are already installed: make bench-tools).
`,
	run: cmdBench,
	subs: []*command{{name: "serve-clinic", hidden: true, summary: "the clinic process the suite starts from this binary",
		run: func(ctx context.Context, args []string, _, stderr io.Writer) int {
			return bench.ServeClinic(ctx, args, stderr)
		}}},
}

// cmdBench runs `telechaos bench`; `telechaos bench serve-clinic` (a hidden
// subcommand) is the clinic process the suite starts from this same binary.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", stderr)
	quick := fs.Bool("quick", false, "smaller, shorter runs")
	out := fs.String("out", filepath.Join("bench-out", "bench.json"), "JSON results `FILE`")
	only := fs.String("only", "", "comma-separated `SECTIONS` to run")
	noInstall := fs.Bool("no-install", false, "do not install missing comparison tools")
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	if len(pos) > 0 {
		return usageError(stderr, "bench", "unexpected arguments %q", pos)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "telechaos bench: own executable: %v\n", err)
		return harness.ExitTarget
	}
	var sections []string
	if *only != "" {
		sections = strings.Split(*only, ",")
	}
	rep, err := bench.Run(ctx, bench.Config{Quick: *quick, OutDir: filepath.Dir(*out), Self: []string{self},
		Install: !*noInstall, Only: sections, Log: stderr})
	if rep == nil {
		fmt.Fprintf(stderr, "telechaos bench: %v\n", err)
		return harness.ExitUsage
	}
	rep.WriteTable(stdout)
	if werr := rep.WriteJSON(*out); werr != nil {
		fmt.Fprintf(stderr, "telechaos bench: write %s: %v\n", *out, werr)
		return harness.ExitTarget
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", *out)
	if err != nil {
		fmt.Fprintf(stderr, "telechaos bench: %v\n", err)
		return harness.ExitInterrupted
	}
	return 0
}
