package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/reports"
)

// writeShard writes a shard's report whose switch latencies are all lat.
func writeShard(t *testing.T, dir string, lat float64, n int, viol bool) {
	t.Helper()
	var b reports.Buckets
	for range n {
		b.Observe(lat)
	}
	s := &reports.Summary{
		Verdict: reports.VerdictPass, RunID: filepath.Base(dir), Seed: 1, Scenario: "launch-video-switch",
		Target: "embedded", StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), DurationSeconds: 20,
		Repro: "telechaos run --seed 1", Invariants: reports.AllInvariants, ViolationsByInvariant: map[string]int{},
		Violations: []reports.Violation{}, Counts: reports.Counts{Patients: 5, Operations: 50},
		Latency:           map[string]reports.Latency{"switch": b.Latency()},
		LatencyHistograms: map[string]*reports.Histogram{"switch": b.Compact()},
		Thresholds: []reports.Threshold{{Metric: "latency.switch", Stat: "p95", Limit: "max 750ms",
			Value: b.Quantile(.95), Pass: b.Quantile(.95) <= .75}},
		Expect: "pass",
	}
	if !s.Thresholds[0].Pass {
		s.Verdict, s.ExitCode = reports.VerdictThresholdsFailed, 4
	}
	if viol {
		s.Violations = append(s.Violations, reports.Violation{Invariant: "replay-access-control", Detail: "leak",
			At: s.StartedAt.Add(3 * time.Second), Evidence: reports.EvidenceFile(1)})
		s.ViolationsByInvariant["replay-access-control"] = 1
		s.Verdict, s.ExitCode = reports.VerdictViolation, 1
	}
	if err := reports.Write(dir, s, nil); err != nil {
		t.Fatal(err)
	}
}

func TestReportRerendersFromSummary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	writeShard(t, dir, 0.1, 20, false)
	for _, f := range []string{reports.HTMLFile, reports.MarkdownFile, reports.JUnitFile} {
		os.Remove(filepath.Join(dir, f))
	}
	code, out, stderr := runCLI(t, "report", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{reports.HTMLFile, reports.MarkdownFile, reports.JUnitFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not redrawn: %v", f, err)
		}
	}
	if !strings.Contains(out, "verdict: PASS") {
		t.Errorf("no verdict printed:\n%s", out)
	}
	for _, args := range [][]string{{"report"}, {"report", dir, "extra"}, {"report", t.TempDir()},
		{"report", "merge", dir}, {"report", "merge", "--out", t.TempDir()}, {"report", "merge", dir, "--nope", "--out", "x"}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestReportMergeShards(t *testing.T) {
	root := t.TempDir()
	a, b, out := filepath.Join(root, "shard-0"), filepath.Join(root, "shard-1"), filepath.Join(root, "merged")
	writeShard(t, a, 0.1, 96, false)
	writeShard(t, b, 2, 4, true) // fails p95 alone; merged p95 passes
	code, stdout, stderr := runCLI(t, "report", "merge", a, b, "--out", out)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a violation in shard-1)\n%s%s", code, stdout, stderr)
	}
	m, err := reports.ReadSummary(filepath.Join(out, reports.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if m.Counts.Patients != 10 || len(m.Violations) != 1 || m.Violations[0].Shard != "../shard-1" {
		t.Errorf("merged: patients %d violations %+v", m.Counts.Patients, m.Violations)
	}
	if len(m.Thresholds) != 1 || !m.Thresholds[0].Pass || m.Latency["switch"].Count != 100 {
		t.Errorf("thresholds over merged data: %+v", m.Thresholds)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if len(l) > 80 {
			t.Errorf("verdict line wider than 80 columns: %q", l)
		}
	}
	html, _ := os.ReadFile(filepath.Join(out, reports.HTMLFile))
	if !strings.Contains(string(html), `href="../shard-1/evidence-1.json"`) {
		t.Error("merged report does not link the shard's evidence")
	}
	// Without the violation the merged verdict passes though shard-1 alone
	// failed its threshold.
	writeShard(t, b, 2, 4, false)
	if code, _, stderr := runCLI(t, "report", "merge", a, b, "--out="+out); code != 0 {
		t.Errorf("exit %d, want 0: %s", code, stderr)
	}
}

// TestRunReportIsComplete runs a small media-free scenario and checks the
// report directory a CI job would publish: every file, histograms and
// per-step latency for merges and plots, and plots with data.
func TestRunReportIsComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := filepath.Join(t.TempDir(), "report")
	code, out, stderr := runCLI(t, "run", "--scenario", "smoke", "--media=false", "--users", "20",
		"--duration", "3s", "--set", "settle=1s", "--report", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	for _, f := range []string{reports.SummaryFile, reports.HTMLFile, reports.MarkdownFile, reports.JUnitFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	s, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if h := s.LatencyHistograms["book"]; h == nil || h.Count != int64(s.Latency["book"].Count) {
		t.Errorf("book histogram %+v, latency %+v", h, s.Latency["book"])
	}
	windows := 0
	for _, p := range s.Timeline {
		windows += int(p.Latency["book"].N)
	}
	if windows != s.Latency["book"].Count {
		t.Errorf("per-step book latencies add to %d, want %d", windows, s.Latency["book"].Count)
	}
	html, _ := os.ReadFile(filepath.Join(dir, reports.HTMLFile))
	for _, id := range []string{"plot-ops", "plot-active", "plot-frames", "plot-violations", "plot-latency-book"} {
		if !strings.Contains(string(html), `id="`+id+`"`) {
			t.Errorf("index.html lacks %s", id)
		}
	}
}
