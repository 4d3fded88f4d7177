package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/drivertest"
	"github.com/telechaos/telechaos/harness/target"
)

var conformCommand = &command{
	name: "conform", args: "--target REF [flags]",
	summary: "check a target against the driver contract, clause by clause",
	doc: `Runs the driver conformance suite (package harness/drivertest) against REF:
"embedded", an http:// or https:// base URL, or a scheme a driver registered.
Each clause of the target contract the oracle relies on (register, book,
join, live forwarding, the switch to video, rejoin, end, list, replay, fetch,
denial of another user's ids, a second end) is checked with real WebRTC
calls through the same client as a run, and printed as clause | result |
detail. A clause whose prerequisite failed is "not run", never passed.

Exit codes: 0 every clause holds, 1 a clause failed or did not run, 2 usage,
130 interrupted.
`,
	run: cmdConform,
}

// cmdConform is `telechaos conform --target REF`.
func cmdConform(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("conform", stderr)
	ref := fs.String("target", "", "the target `REF` (required): embedded, a base URL or a registered scheme")
	var bugs multiFlag
	fs.Var(&bugs, "bug", "an embedded clinic bug `ID[:P]`, repeatable (embedded only)")
	settle := fs.Duration("settle", 5*time.Second, "how long an ended recording may take to be listed")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on the whole suite (clauses left are not run)")
	caFile := fs.String("ca-file", "", "PEM `FILE` of CA certificates an https target may chain to")
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	switch {
	case len(pos) > 0:
		return usageError(stderr, "conform", "unexpected argument %q", pos[0])
	case *ref == "":
		return usageError(stderr, "conform", "--target is required")
	case *settle <= 0 || *timeout <= 0:
		fmt.Fprintf(stderr, "telechaos conform: --settle and --timeout must be positive\n")
		return harness.ExitUsage
	}
	opts := target.Options{Bugs: bugs}
	opts.HTTP.CAFile = *caFile
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
