package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/harness/promverdict"
	"github.com/telechaos/telechaos/scenarios"
)

// `telechaos report verdict --from-prometheus URL --run-id ID` computes a
// run's verdict from what Prometheus holds of its shards (harness/promverdict
// says how) and exits as `run` does. This file holds its flags and output.

type promVerdictFlags struct {
	url, runID, scenario string
	sets                 multiFlag
	window               time.Duration
	shards               int
}

var reportVerdictCommand = &command{
	name: "verdict", args: "--from-prometheus URL --run-id ID [flags]",
	summary: "the verdict of a sharded run from what Prometheus holds of its shards",
	doc: `Give the run's --scenario and --set as given to run: they hold its
thresholds and invariants. Exits with the verdict's code, as run does, or 3
when Prometheus cannot be read.
`,
	run: cmdReportVerdict,
}

func cmdReportVerdict(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := promVerdictFlags{}
	fs := newFlagSet("report verdict", stderr)
	fs.StringVar(&f.url, "from-prometheus", "", "Prometheus base `URL`, e.g. http://prometheus:9090")
	fs.StringVar(&f.runID, "run-id", "", "the run `ID` the shards shared")
	fs.StringVar(&f.scenario, "scenario", scenarios.Default, "the run's scenario `NAME|FILE` (its thresholds and invariants)")
	fs.Var(&f.sets, "set", "override a scenario field `KEY=VALUE`, as given to run")
	fs.DurationVar(&f.window, "window", promverdict.DefaultWindow, "how far back `D` to look for the run's series")
	fs.IntVar(&f.shards, "shards", 0, "fail unless `N` shards reported")
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	if f.url == "" || f.runID == "" || len(pos) > 0 {
		return usageError(stderr, "report verdict", "want --from-prometheus URL --run-id ID [--scenario S] [--set K=V] [--window D] [--shards N]")
	}
	if err := checkRunID(f.runID); err != nil { // it goes into every PromQL selector
		fmt.Fprintf(stderr, "telechaos report verdict: %v\n", err)
		return harness.ExitUsage
	}
	sc, err := scenarios.Load(f.scenario)
	if err == nil {
		for _, kv := range f.sets {
			if err = sc.Set(kv); err != nil {
				err = fmt.Errorf("--set %s: %w", kv, err)
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "telechaos report verdict: %v\n", err)
		return harness.ExitUsage
	}
	v, err := promverdict.Verdict(ctx, promverdict.Query{URL: f.url, RunID: f.runID, Window: f.window, Shards: f.shards}, sc)
	if err != nil {
		fmt.Fprintf(stderr, "telechaos report verdict: %v\n", err)
		return harness.ExitTarget
	}
	printPromVerdict(stdout, v)
	return v.ExitCode
}

func printPromVerdict(w io.Writer, v *promverdict.Result) {
	fmt.Fprintf(w, "\nverdict: %s (exit %d)  scenario %s  run %s  from prometheus, %d shards (%s)\n",
		strings.ToUpper(v.Verdict), v.ExitCode, v.Scenario, v.RunID, len(v.Shards), strings.Join(orNone(v.Shards), ","))
	if v.Reason != "" {
		printWrapped(w, "reason: ", v.Reason)
	}
	for _, a := range v.Also {
		printWrapped(w, "also: ", a)
	}
	fmt.Fprintf(w, "operations ok %g  denied %g  error %g\n", v.Operations[metrics.OutcomeOK], v.Operations[metrics.OutcomeDenied], v.Operations[metrics.OutcomeError])
	printInvariants(w, v.Invariants, func(inv string) float64 { return v.Violations[inv] }, v.Judgement)
	if v.Ignored > 0 {
		fmt.Fprintf(w, "  (%g violations of invariants the scenario does not judge)\n", v.Ignored)
	}
	printThresholds(w, v.Thresholds, true)
}

func orNone(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x
		if x == "" {
			out[i] = "unsharded"
		}
	}
	return out
}
