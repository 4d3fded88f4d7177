package reports

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// maxMarkdownViolations keeps summary.md short: CI job summaries are read at a
// glance; the rest is in index.html.
const maxMarkdownViolations = 10

// Markdown renders summary.md: a short job summary for CI (GitHub's
// $GITHUB_STEP_SUMMARY, GitLab's MR notes).
func Markdown(s *Summary) string {
	var b strings.Builder
	icon := "✅"
	if s.Verdict != VerdictPass {
		icon = "❌"
	}
	fmt.Fprintf(&b, "### %s telechaos %s: **%s** (exit %d)\n\n", icon, mdEsc(s.Scenario), s.Verdict, s.ExitCode)
	fmt.Fprintf(&b, "seed %d · target %s · %s · run `%s`", s.Seed, mdEsc(s.Target), secs(s.DurationSeconds), s.RunID)
	if len(s.Bugs) > 0 {
		fmt.Fprintf(&b, " · bugs `%s`", strings.Join(s.Bugs, ","))
	}
	if len(s.Shards) > 0 {
		fmt.Fprintf(&b, " · %d shards", len(s.Shards))
	}
	b.WriteString("\n\n")
	if s.Error != "" {
		fmt.Fprintf(&b, "> %s\n\n", mdEsc(s.Error))
	}
	c := s.Counts
	fmt.Fprintf(&b, "patients %d · calls %d ended, %d failed · switches %d · replays %d · frames checked %d+%d live · requests %d (%d non-2xx, %d of them probes rightly denied)\n\n",
		c.Patients, c.CallsEnded, c.CallsFailed, c.Switches, c.ReplaysFetched, c.FramesChecked, c.LiveFramesChecked,
		c.Operations, c.OperationErrors, c.ProbesDenied)

	b.WriteString("| check | result |\n|---|---|\n")
	for _, inv := range AllInvariants {
		r := "✅ 0"
		switch n := s.ViolationsByInvariant[inv]; {
		case len(s.Invariants) > 0 && !slices.Contains(s.Invariants, inv):
			r = "not checked"
		case n > 0:
			r = fmt.Sprintf("❌ %d", n)
		}
		fmt.Fprintf(&b, "| %s | %s |\n", inv, r)
	}
	for _, t := range s.Thresholds {
		r := "✅"
		if !t.Pass {
			r = "❌"
		}
		fmt.Fprintf(&b, "| %s | %s %s (%s) |\n", mdEsc(thresholdName(t)), r, thresholdValue(t), mdEsc(t.Limit))
	}
	b.WriteString("\n")
	if len(s.Violations) > 0 {
		b.WriteString("**Violations**\n\n")
		for i, v := range s.Violations {
			if i == maxMarkdownViolations {
				fmt.Fprintf(&b, "- … %d more in index.html\n", len(s.Violations)-i)
				break
			}
			where := v.Evidence
			if v.Shard != "" {
				where = v.Shard + "/" + where
			}
			fmt.Fprintf(&b, "- `%s` %s (evidence `%s`)\n", v.Invariant, mdEsc(truncateRunes(v.Detail, 160)), where)
		}
		fmt.Fprintf(&b, "\nrepro:\n```sh\n%s\n```\n", s.Repro)
	}
	if len(s.FaultWindows) > 0 {
		failed := 0
		for _, w := range s.FaultWindows {
			if w.Err != "" {
				failed++
			}
		}
		fmt.Fprintf(&b, "\nfaults: %d windows (%d with errors)", len(s.FaultWindows), failed)
		if len(s.CoverageShortfalls) > 0 {
			fmt.Fprintf(&b, " · coverage shortfalls: %s", mdEsc(strings.Join(s.CoverageShortfalls, "; ")))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// WriteMarkdown writes Markdown(s) to path.
func WriteMarkdown(path string, s *Summary) error {
	return writeFileAtomic(path, []byte(Markdown(s)))
}

func thresholdName(t Threshold) string {
	if t.Stat != "" {
		return t.Metric + " " + t.Stat
	}
	return t.Metric
}

// thresholdValue formats a threshold's value: durations for latencies.
func thresholdValue(t Threshold) string {
	if strings.HasPrefix(t.Metric, "latency.") {
		return dur(t.Value)
	}
	return fmt.Sprintf("%.4g", t.Value)
}

func dur(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(100 * time.Microsecond).String()
}

func secs(sec float64) string { return fmt.Sprintf("%.1fs", sec) }

// mdEsc keeps table cells intact: pipes and newlines would break the row.
func mdEsc(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
