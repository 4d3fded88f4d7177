package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/scenarios"
)

var scenariosCommand = &command{
	name: "scenarios", args: "",
	summary: "list the built-in scenarios: size, duration, executor, expectation",
	doc: `USERS is the number of patients (CLIN. their clinicians), DURATION the
arrival phase (a ramping executor's is the sum of its stages), EXECUTOR the
arrival model (a ramping one with its peak rate), EXPECT "pass" or the
invariant a run must violate, BUGS the clinic bugs it enables (ID:P) to make
it so. Each name is a --scenario for run and validate.
`,
	run: cmdScenarios,
}

func cmdScenarios(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("scenarios", stderr)
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	if len(pos) > 0 {
		return usageError(stderr, "scenarios", "unexpected arguments %q", pos)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUSERS\tCLIN.\tDURATION\tEXECUTOR\tEXPECT\tBUGS\tDESCRIPTION")
	code := 0
	for _, name := range scenarios.Names() {
		sc, err := scenarios.LoadContext(ctx, name)
		if err != nil {
			// A built-in that does not load is a broken binary: say so, exit 3.
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\tinvalid: %s\n", name, firstLine(err.Error()))
			code = harness.ExitTarget
			continue
		}
		bugs := strings.Join(sc.Bugs, ",")
		if bugs == "" {
			bugs = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", name, sc.Population.Patients, sc.Population.Clinicians,
			sc.Duration.Duration, executorSummary(sc.Executor), sc.Expect, bugs, truncate(firstLine(sc.Description), 50))
	}
	tw.Flush()
	return code
}

// executorSummary is an executor in a few words: "constant-arrival-rate 3/s",
// "closed 20 vus", "ramping-arrival-rate to 30/s" (its peak).
func executorSummary(e scenarios.Executor) string {
	rate := func(r float64) string { return strconv.FormatFloat(r, 'g', 4, 64) + "/s" }
	switch e.Type {
	case scenarios.Closed:
		if e.VUs == 0 {
			return fmt.Sprintf("closed %d vus (max_in_flight)", e.MaxInFlight)
		}
		return fmt.Sprintf("closed %d vus", e.VUs)
	case scenarios.ConstantArrivalRate:
		return "constant-arrival-rate " + rate(e.Rate)
	case scenarios.RampingArrivalRate:
		peak := e.Rate
		for _, st := range e.Stages {
			peak = max(peak, st.Target)
		}
		return fmt.Sprintf("ramping-arrival-rate to %s", rate(peak))
	}
	return e.Type
}

// expectation is what the scenario expects of a run: "pass", or "violate
// INVARIANT (bug ID[:P], ...)".
func expectation(sc *scenarios.Scenario) string {
	if sc.Expect == "" || sc.Expect == scenarios.ExpectPass {
		if len(sc.Bugs) > 0 {
			return "pass (bugs " + strings.Join(sc.Bugs, ",") + ")"
		}
		return "pass"
	}
	s := "violate " + sc.Expect
	if len(sc.Bugs) > 0 {
		s += " (bug " + strings.Join(sc.Bugs, ",") + ")"
	}
	return s
}
