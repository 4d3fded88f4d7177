package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/drivertest"
	"github.com/telechaos/telechaos/harness/target"
)

const conformUsage = `usage: telechaos conform --target REF [--bug ID[:P]] [--settle D] [--timeout D]

Runs the driver conformance suite (package harness/drivertest) against REF:
"embedded", an http:// or https:// base URL, or a scheme a driver registered.
Each clause of the target contract the oracle relies on (register, book,
join, live forwarding, the switch to video, rejoin, end, list, replay, fetch,
denial of another user's ids, a second end) is checked with real WebRTC
calls through the same client as a run, and printed as clause | result |
detail. A clause whose prerequisite failed is "not run", never passed.

flags:
  --target REF   the target (required)
  --bug ID[:P]   an embedded clinic bug, repeatable (embedded only)
  --settle D     how long an ended recording may take to be listed (default 5s)
  --timeout D    bound on the whole suite (default 5m; clauses left are not run)

exit codes: 0 every clause holds, 1 a clause failed or did not run, 2 usage,
130 interrupted
`

// cmdConform is `telechaos conform --target REF`.
func cmdConform(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ref := fs.String("target", "", "target reference")
	var bugs multiFlag
	fs.Var(&bugs, "bug", "embedded clinic bug ID[:P], repeatable")
	settle := fs.Duration("settle", 5*time.Second, "listing settle time")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on the suite")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, conformUsage)
			return 0
		}
		fmt.Fprintf(stderr, "telechaos conform: %v\n\n%s", err, conformUsage)
		return harness.ExitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "telechaos conform: unexpected argument %q\n\n%s", fs.Arg(0), conformUsage)
		return harness.ExitUsage
	case *ref == "":
		fmt.Fprintf(stderr, "telechaos conform: --target is required\n\n%s", conformUsage)
		return harness.ExitUsage
	case *settle <= 0 || *timeout <= 0:
		fmt.Fprintf(stderr, "telechaos conform: --settle and --timeout must be positive\n")
		return harness.ExitUsage
	}
	opts := target.Options{Bugs: bugs}
	if err := target.Validate(*ref, opts); err != nil {
		fmt.Fprintf(stderr, "telechaos conform: %v\n", err)
		return harness.ExitUsage
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st := time.Now()
	res := drivertest.Check(cctx, drivertest.OpenRef(*ref, opts), drivertest.Options{Settle: *settle})
	took := time.Since(st)
	writeConformTable(stdout, res)
	var failed, notRun []string
	for _, r := range res {
		switch r.Result {
		case drivertest.Fail:
			failed = append(failed, r.Clause)
		case drivertest.NotRun:
			notRun = append(notRun, r.Clause)
		}
	}
	if len(failed) == 0 && len(notRun) == 0 {
		fmt.Fprintf(stdout, "\n%s conforms: %d/%d clauses hold (%s)\n", *ref, len(res), len(res), took.Round(time.Millisecond))
		return harness.ExitPass
	}
	msg := fmt.Sprintf("\n%s does not conform: %d/%d clauses hold", *ref, len(res)-len(failed)-len(notRun), len(res))
	if len(failed) > 0 {
		msg += "; failed: " + strings.Join(failed, ", ")
	}
	if len(notRun) > 0 {
		msg += "; not run: " + strings.Join(notRun, ", ")
	}
	fmt.Fprintf(stdout, "%s (%s)\n", msg, took.Round(time.Millisecond))
	if ctx.Err() != nil {
		return harness.ExitInterrupted
	}
	return harness.ExitViolation
}

// writeConformTable prints clause | result | detail, a failure's request
// and answer on the lines under it.
func writeConformTable(w io.Writer, res []drivertest.ClauseResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLAUSE\tRESULT\tDETAIL")
	oneLine := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Clause, r.Result, oneLine(r.Detail))
		if r.Result != drivertest.Fail {
			continue
		}
		if r.Request != "" {
			fmt.Fprintf(tw, "\t\trequest: %s\n", oneLine(r.Request))
		}
		if r.Answer != "" {
			fmt.Fprintf(tw, "\t\tanswer:  %s\n", oneLine(r.Answer))
		}
	}
	tw.Flush()
}
