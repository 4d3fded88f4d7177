package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/trace"
)

var reproCommand = &command{
	name: "repro", args: "FILE [--target URL] [--times K]",
	summary: `replay a minimised trace K times: "reproduced N/K"`,
	doc: `Replays a trace file K times (default 1), each against a fresh embedded clinic
(or the --target URL, with new users), and prints how often the trace's
expected violation reproduced. Exit 1 if it reproduced at least once, 0 if
never, 2 for usage errors or a bad trace, 3 if the target is unreachable.

A trace with crash_target or restart_target ops (the clinic crashes or
restarts mid-trace and comes back on the same data) needs the embedded
target: with --target URL it is refused before anything runs (exit 2).
`,
	run: cmdRepro,
}

// cmdRepro is `telechaos repro FILE [--target URL] [--times K]`.
func cmdRepro(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("repro", stderr)
	target := fs.String("target", "", "target base `URL` (default: the trace's)")
	times := fs.Int("times", 1, "executions `K` (1..10000)")
	// FILE may come before or after the flags.
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	var file string
	switch len(pos) {
	case 0:
	case 1:
		file = pos[0]
	default:
		return usageError(stderr, "repro", "one trace file, got %q", pos)
	}
	if file == "" {
		return usageError(stderr, "repro", "no trace file")
	}
	if *times < 1 || *times > 10000 {
		fmt.Fprintf(stderr, "telechaos repro: --times %d: want 1..10000\n", *times)
		return harness.ExitUsage
	}
	n, total, err := trace.Repro(ctx, file, trace.ReproOptions{Options: trace.Options{Target: *target}, Times: *times})
	var pe *trace.ParseError
	switch {
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "telechaos repro: bad trace: %v\n", err)
		return harness.ExitUsage
	case err != nil && errors.Is(err, context.Canceled):
		fmt.Fprintf(stdout, "reproduced %d/%d (interrupted)\n", n, total)
		return harness.ExitInterrupted
	case err != nil && errors.Is(err, trace.ErrTarget):
		fmt.Fprintf(stderr, "telechaos repro: %v\n", err)
		if total > 0 {
			fmt.Fprintf(stdout, "reproduced %d/%d\n", n, total)
		}
		return harness.ExitTarget
	case err != nil:
		// The file could not be opened, or another setup failure.
		fmt.Fprintf(stderr, "telechaos repro: %v\n", err)
		return harness.ExitUsage
	}
	fmt.Fprintf(stdout, "reproduced %d/%d\n", n, total)
	if tr, perr := trace.ParseFile(file); perr == nil {
		fmt.Fprint(stdout, trace.Explain(tr, *target, n, total))
	}
	if n > 0 {
		return harness.ExitViolation
	}
	return harness.ExitPass
}
