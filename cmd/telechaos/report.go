package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/reports"
)

var reportCommand = &command{
	name: "report", args: "DIR",
	summary: "redraw index.html, summary.md, junit.xml from DIR/summary.json",
	doc: `Exits with the verdict's code, as run does, so CI can gate on it.
`,
	run:  cmdReport,
	subs: []*command{reportMergeCommand, reportVerdictCommand},
}

var reportMergeCommand = &command{
	name: "merge", args: "DIR... --report DIR",
	summary: "merge shard reports into one verdict (exit code as run)",
	doc: `Reads each shard's DIR/summary.json and writes the merged summary and
report under --report (evidence links point into the shards' directories,
relative to it). Exits with the merged verdict's code.
`,
	run: cmdReportMerge,
}

// cmdReport is `telechaos report DIR` (redraw a report from its
// summary.json); its subcommands merge and verdict are dispatched before.
// Both exit with the verdict's code, as run does, so CI can gate on either.
func cmdReport(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", stderr)
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	if len(pos) != 1 {
		return usageError(stderr, "report", "want one report directory (or: report merge DIR... --report DIR)")
	}
	dir := pos[0]
	s, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		fmt.Fprintf(stderr, "telechaos report: %v\n", err)
		return harness.ExitUsage
	}
	if err := reports.Render(dir, s); err != nil {
		fmt.Fprintf(stderr, "telechaos report: %v\n", err)
		return harness.ExitTarget
	}
	printVerdict(stdout, s, dir)
	return s.ExitCode
}

func cmdReportMerge(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report merge", stderr)
	var out string
	fs.StringVar(&out, "report", "", "write the merged report to `DIR`")
	aliasFlag(fs, "out", "report") // the name before the flags were made consistent (deploy/k8s)
	dirs, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	if out == "" || len(dirs) == 0 {
		return usageError(stderr, "report merge", "want DIR... --report DIR")
	}
	sums := make([]*reports.Summary, 0, len(dirs))
	names := make([]string, 0, len(dirs))
	for _, d := range dirs {
		s, err := reports.ReadSummary(filepath.Join(d, reports.SummaryFile))
		if err != nil {
			fmt.Fprintf(stderr, "telechaos report merge: %v\n", err)
			return harness.ExitUsage
		}
		sums = append(sums, s)
		// Named relative to the output, so evidence links open from it.
		name := d
		if absD, err1 := filepath.Abs(d); err1 == nil {
			if absO, err2 := filepath.Abs(out); err2 == nil {
				if rel, err := filepath.Rel(absO, absD); err == nil {
					name = filepath.ToSlash(rel)
				}
			}
		}
		names = append(names, name)
	}
	m, err := reports.Merge(sums, names)
	if err != nil {
		fmt.Fprintf(stderr, "telechaos report merge: %v\n", err)
		return harness.ExitUsage
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintf(stderr, "telechaos report merge: %v\n", err)
		return harness.ExitTarget
	}
	if err := reports.WriteSummary(out, m); err != nil {
		fmt.Fprintf(stderr, "telechaos report merge: %v\n", err)
		return harness.ExitTarget
	}
	if err := reports.Render(out, m); err != nil {
		fmt.Fprintf(stderr, "telechaos report merge: %v\n", err)
		return harness.ExitTarget
	}
	// The merged verdict is the one a CI job shows (GitHub Actions).
	if err := reports.AppendStepSummary(os.Getenv(reports.StepSummaryEnv), m); err != nil {
		fmt.Fprintf(stderr, "telechaos report merge: warning: %v\n", err)
	}
	printVerdict(stdout, m, out)
	return m.ExitCode
}

// pushMetrics pushes a finished run's metrics (--push). A failed push is
// reported, not turned into a failed run: the verdict and report stand.
func pushMetrics(ctx context.Context, url string, res *harness.Result, stderr io.Writer) {
	if res.Metrics == nil || res.Summary == nil {
		return
	}
	// The run may have been interrupted; the push still gets its own time.
	err := metrics.Push(context.WithoutCancel(ctx), url, res.Metrics.Registry, res.Summary.RunID, res.Summary.Scenario)
	if err != nil {
		fmt.Fprintf(stderr, "telechaos run: warning: %v\n", err)
		return
	}
	fmt.Fprintf(stderr, "telechaos: metrics pushed to %s (job %s, run_id %s)\n", url, metrics.PushJob, res.Summary.RunID)
}
