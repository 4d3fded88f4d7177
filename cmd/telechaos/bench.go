package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/internal/bench"
)

const benchUsage = `usage: telechaos bench [--quick] [--out FILE] [--only SECTION,...] [--no-install]

Runs the performance suite and writes its figures as JSON (default
bench-out/bench.json; profiles go next to it) and as a table on stdout.
Sections: floor, cpu, oracle, users, mixed, media, setup, detect.
--quick runs smaller, shorter sizes (under 5 minutes when k6, vegeta and wrk
are already installed: make bench-tools).
`

// cmdBench runs `telechaos bench`; `telechaos bench serve-clinic` is the
// clinic process the suite starts from this same binary.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve-clinic" {
		return bench.ServeClinic(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage) }
	quick := fs.Bool("quick", false, "smaller, shorter runs")
	out := fs.String("out", filepath.Join("bench-out", "bench.json"), "JSON report file")
	only := fs.String("only", "", "comma-separated sections to run")
	noInstall := fs.Bool("no-install", false, "do not install missing comparison tools")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return harness.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "telechaos bench: unexpected arguments %q\n", fs.Args())
		return harness.ExitUsage
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
