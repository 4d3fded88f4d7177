package reports

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/telechaos/telechaos/models"
)

// maxMarkdownViolations keeps summary.md short: CI job summaries are read at a
// glance; the rest is in index.html.
const maxMarkdownViolations = 10

// Markdown renders summary.md: a short job summary for CI (GitHub's
// $GITHUB_STEP_SUMMARY, GitLab's MR notes). Everything the target can
// influence (ids, details, error texts, the target URL) goes in code spans,
// so a hostile target cannot put links, images or markup into a CI page.
func Markdown(s *Summary) string {
	var b strings.Builder
	icon := "✅"
	if s.Verdict != VerdictPass {
		icon = "❌"
	}
	fmt.Fprintf(&b, "### %s telechaos %s: **%s** (exit %d)\n\n", icon, mdCode(s.Scenario, false), dash(s.Verdict), s.ExitCode)
	// The verdict's reason first: what an on-call engineer acts on.
	fmt.Fprintf(&b, "> **%s**: %s\n", verdictClass(s), mdCode(truncateRunes(VerdictReason(s), 400), false))
	for _, a := range s.Also {
		fmt.Fprintf(&b, "> also: %s\n", mdCode(truncateRunes(a, 300), false))
	}
	if s.Error != "" && !strings.Contains(s.Reason, s.Error) {
		fmt.Fprintf(&b, "> error: %s\n", mdCode(truncateRunes(s.Error, 400), false))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "seed %d · target %s · %s · run %s", s.Seed, mdCode(s.Target, false), secs(s.DurationSeconds), mdCode(s.RunID, false))
	if len(s.Bugs) > 0 {
		fmt.Fprintf(&b, " · bugs %s", mdCode(strings.Join(s.Bugs, ","), false))
	}
	if len(s.Shards) > 0 {
		fmt.Fprintf(&b, " · %d shards", len(s.Shards))
	}
	b.WriteString("\n\n")
	c := s.Counts
	fmt.Fprintf(&b, "patients %d · calls %d ended, %d failed · switches %d · replays %d · frames checked %d+%d live · requests %d (%d non-2xx, %d of them probes rightly denied)\n\n",
		c.Patients, c.CallsEnded, c.CallsFailed, c.Switches, c.ReplaysFetched, c.FramesChecked, c.LiveFramesChecked,
		c.Operations, c.OperationErrors, c.ProbesDenied)

	b.WriteString("| check | result |\n|---|---|\n")
	for _, inv := range AllInvariants {
		r := "✅ 0"
		j, hasJ := s.Judgement[inv]
		switch n := s.ViolationsByInvariant[inv]; {
		case len(s.Invariants) > 0 && !slices.Contains(s.Invariants, inv):
			r = "not checked"
		case n > 0:
			r = fmt.Sprintf("❌ %d", n)
		case hasJ && j.Status == JudgementShort:
			r = fmt.Sprintf("❌ not judged: %d of %d (%.0f%%, %.0f%% required)", j.Judged, j.Judged+j.NotJudged, 100*j.Share, 100*j.Required)
		case !invariantRan(s, inv):
			r = "⏹ not run"
		case hasJ && j.Status == JudgementNotExercised:
			r = "➖ not exercised"
		}
		if hasJ && j.Status != JudgementNotChecked && j.Judged+j.NotJudged > 0 && j.Status != JudgementShort {
			r += fmt.Sprintf(" (judged %d of %d)", j.Judged, j.Judged+j.NotJudged)
		}
		fmt.Fprintf(&b, "| %s | %s |\n", inv, r)
	}
	for _, t := range s.Thresholds {
		r := "✅ " + thresholdValue(t)
		switch {
		case !t.Pass:
			r = "❌ " + thresholdValue(t)
		case !thresholdRan(s, t):
			r = "⏹ not run"
		}
		fmt.Fprintf(&b, "| %s | %s (%s) |\n", mdCode(thresholdName(t), true), r, mdCode(t.Limit, true))
	}
	b.WriteString("\n")
	if len(s.Latency) > 0 {
		b.WriteString("**Latency**\n\n| operation | count | p50 | p90 | p95 | p99 | max |\n|---|--:|--:|--:|--:|--:|--:|\n")
		for _, op := range slices.Sorted(maps.Keys(s.Latency)) {
			l := s.Latency[op]
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", mdCode(op, true), l.Count,
				dur(l.P50), dur(l.P90), dur(l.P95), dur(l.P99), dur(l.Max))
		}
		b.WriteString("\n")
	}
	if m := AuthzMarkdown(s.Authz); m != "" {
		b.WriteString(m)
		b.WriteString("\n")
	}
	if s.ICE != nil {
		fmt.Fprintf(&b, "**Media connections**: %d connected, %d through a TURN relay (%.0f%%)\n\n", s.ICE.Connected, s.ICE.Relayed, 100*s.ICE.RelayedShare)
	}
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
			fmt.Fprintf(&b, "- %s %s (evidence %s", mdCode(v.Invariant, false), mdCode(truncateRunes(v.Detail, 160), false), mdCode(where, false))
			if tl := TraceLink(v); tl != "" {
				fmt.Fprintf(&b, ", minimal trace %s", mdLink(tl))
			}
			b.WriteString(")\n")
		}
		fmt.Fprintf(&b, "\nrepro:\n%s\n", mdFence(s.Repro))
	}
	if tl := traceLinks(s); len(tl) > 0 {
		b.WriteString("\n**Minimal traces** (paths relative to the report directory; `telechaos repro REPORT_DIR/FILE` replays one)\n\n")
		for _, f := range tl {
			fmt.Fprintf(&b, "- %s\n", mdLink(f))
		}
	}
	if len(s.FaultWindows) > 0 || len(s.CoverageShortfalls) > 0 {
		failed := 0
		for _, w := range s.FaultWindows {
			if w.Err != "" {
				failed++
			}
		}
		fmt.Fprintf(&b, "\nfaults: %d windows (%d with errors)", len(s.FaultWindows), failed)
		if len(s.CoverageShortfalls) > 0 {
			fmt.Fprintf(&b, " · coverage shortfalls: %s", mdCode(strings.Join(s.CoverageShortfalls, "; "), false))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// verdictClass names the kind of verdict in words for the top line.
func verdictClass(s *Summary) string {
	switch s.Verdict {
	case VerdictPass:
		return "pass"
	case VerdictViolation:
		return "invariant violation"
	case VerdictThresholdsFailed:
		if len(s.CoverageShortfalls) > 0 && !slices.ContainsFunc(s.Thresholds, func(t Threshold) bool { return !t.Pass }) {
			return "chaos coverage shortfall"
		}
		return "thresholds failed"
	case VerdictNotJudged:
		return "not judged"
	case VerdictError:
		if s.ExitCode == models.ExitUsage {
			return "configuration error"
		}
		return "infrastructure failure"
	case VerdictInterrupted:
		return "interrupted"
	}
	return dash(s.Verdict)
}

// VerdictReason is the one line saying why the verdict is what it is: the
// summary's reason, or for a summary written without one, a line derived
// from its figures (the violations, the failed thresholds and coverage
// shortfalls, the run's first error).
func VerdictReason(s *Summary) string {
	if s.Reason != "" {
		return s.Reason
	}
	switch s.Verdict {
	case VerdictPass:
		return "every checked invariant held and every threshold passed"
	case VerdictViolation:
		return fmt.Sprintf("%d distinct invariant violation(s)", len(s.Violations))
	case VerdictThresholdsFailed:
		var failed []string
		for _, t := range s.Thresholds {
			if !t.Pass {
				failed = append(failed, t.FailureLine())
			}
		}
		failed = append(failed, s.CoverageShortfalls...)
		return "failed: " + strings.Join(failed, "; ")
	case VerdictInterrupted:
		return "interrupted"
	}
	if s.Error != "" {
		return s.Error
	}
	return dash(s.Verdict)
}

// mdLink links a relative path of the report directory; a path with other
// characters than letters, digits and ._-/ (no scheme, no markup) is shown
// as code, never linked.
func mdLink(p string) string {
	if !linkable(p) {
		return mdCode(p, false)
	}
	return "[`" + p + "`](" + p + ")"
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

// mdCode puts s in an inline code span, inside which Markdown makes no
// links, images, autolinks or HTML: the delimiter is one backtick longer than
// the longest run of backticks in s. In a table cell a pipe would still end
// the cell, so it is escaped (GFM unescapes \| inside code spans there).
// Control characters and line breaks become spaces.
func mdCode(s string, inTable bool) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	if inTable {
		s = strings.ReplaceAll(s, "|", `\|`)
	}
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// mdFence puts s in a fenced code block whose fence is longer than any run
// of backticks in s.
func mdFence(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	return fence + "sh\n" + s + "\n" + fence
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
