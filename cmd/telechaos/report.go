package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/reports"
)

// cmdReport is `telechaos report DIR` (redraw a report from its summary.json)
// and `telechaos report merge DIR... --out DIR` (one verdict for shards). Both
// exit with the verdict's code, as run does, so CI can gate on either.
func cmdReport(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "merge" {
		return cmdReportMerge(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "verdict" { // prom.go: --from-prometheus
		return cmdReportVerdict(context.Background(), args[1:], stdout, stderr)
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "telechaos report: want one report directory (or: report merge DIR... --out DIR)\n")
		return harness.ExitUsage
	}
	dir := args[0]
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

func cmdReportMerge(args []string, stdout, stderr io.Writer) int {
	var dirs []string
	out := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--out" || a == "-out":
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "telechaos report merge: --out needs a directory\n")
				return harness.ExitUsage
			}
			out = args[i+1]
			i++
		case strings.HasPrefix(a, "--out=") || strings.HasPrefix(a, "-out="):
			_, out, _ = strings.Cut(a, "=")
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(stderr, "telechaos report merge: unknown flag %s\n", a)
			return harness.ExitUsage
		default:
			dirs = append(dirs, a)
		}
	}
	if out == "" || len(dirs) == 0 {
		fmt.Fprintf(stderr, "telechaos report merge: want DIR... --out DIR\n")
		return harness.ExitUsage
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
