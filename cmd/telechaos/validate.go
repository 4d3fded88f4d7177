package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/scenarios"
)

var validateCommand = &command{
	name: "validate", args: "[--set KEY=VALUE]... FILE|NAME...",
	summary: "check scenario files (or built-in names) without running them",
	doc: `Loads each scenario as run would (the same loader and validator, defaults
applied, --set applied after), sends no traffic, and prints "FILE: ok" with
a one-line summary, or every problem of the file as FILE:LINE: FIELD: what.
Every file is checked, also after a bad one. Exit 0 if all are valid, 2 if
any is not.
`,
	run: cmdValidate,
}

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr)
	var sets multiFlag
	fs.Var(&sets, "set", "override a scenario field `KEY=VALUE` (as run --set), repeatable")
	files, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	if len(files) == 0 {
		return usageError(stderr, "validate", "no scenario file")
	}
	code := harness.ExitPass
	for _, file := range files {
		sc, err := validateOne(ctx, file, sets)
		if err != nil {
			code = harness.ExitUsage
			if ctx.Err() != nil {
				fmt.Fprintf(stderr, "telechaos validate: %v\n", ctx.Err())
				return harness.ExitInterrupted
			}
			printProblems(stderr, file, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok  %s\n", file, scenarioLine(sc))
	}
	return code
}

// validateOne loads file as `run --scenario FILE --set ...` would.
func validateOne(ctx context.Context, file string, sets []string) (*scenarios.Scenario, error) {
	sc, err := scenarios.LoadContext(ctx, file)
	if err != nil {
		return nil, err
	}
	for _, kv := range sets {
		if err := sc.Set(kv); err != nil {
			return nil, fmt.Errorf("--set %s: %w", kv, err)
		}
	}
	sc.ApplyDefaults()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

// printProblems prints one line per problem, each naming its file (and line
// where known).
func printProblems(w io.Writer, file string, err error) {
	var verr *scenarios.ValidationError
	if errors.As(err, &verr) && len(verr.Problems) > 0 {
		for _, p := range verr.Problems {
			fmt.Fprintln(w, p.String())
		}
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, file) {
			line = file + ": " + line
		}
		fmt.Fprintln(w, line)
	}
}

// scenarioLine is a scenario in one line: executor, size, duration, media,
// expectation.
func scenarioLine(sc *scenarios.Scenario) string {
	media := "media"
	if !sc.Media {
		media = "no media"
	}
	return fmt.Sprintf("%s, %d patients, %d clinicians, %v (settle %v), %s, expect %s",
		executorSummary(sc.Executor), sc.Population.Patients, sc.Population.Clinicians,
		sc.Duration.Duration, sc.Settle.Duration, media, expectation(sc))
}
