package reports

import (
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.md goldens from the fixtures")

// passSample is richSample as a passing run: no violation, no failed
// threshold, no coverage shortfall.
func passSample() *Summary {
	s := richSample()
	s.Verdict, s.ExitCode = VerdictPass, 0
	s.Reason = "every checked invariant judged, no violation, thresholds met"
	s.Violations, s.ViolationsByInvariant, s.CoverageShortfalls = []Violation{}, map[string]int{}, nil
	s.Bugs = nil
	for i := range s.Thresholds {
		s.Thresholds[i].Pass = true
	}
	s.Thresholds[0].Value = s.Latency["switch"].P95 // consistent with the table
	s.Thresholds[1].Value = 0.001
	return s
}

// violationSample is richSample with a minimal trace for each violation.
func violationSample() *Summary {
	s := richSample()
	s.Reason = "2 distinct invariant violations"
	s.Also = nil
	s.Violations[0].TraceFile = "repro-1.trace"
	s.Violations[0].ReproTrace = "telechaos repro /abs/run/repro-1.trace --times 10"
	s.Violations[1].TraceFile = "repro-2.trace"
	s.TraceFiles = []string{"repro-1.trace", "repro-2.trace"}
	return s
}

// golden compares got with testdata/NAME (rewritten with -update). The
// content assertions of each test are what must hold; the golden shows a
// reviewer the whole page and catches unintended changes.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./reports -run %s -update writes it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("summary.md differs from %s (go test ./reports -run %s -update rewrites it after a deliberate change):\n%s", path, t.Name(), got)
	}
}

func mustContain(t *testing.T, doc string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(doc, w) {
			t.Errorf("lacks %q:\n%s", w, doc)
		}
	}
}

func TestSummaryMarkdownPass(t *testing.T) {
	s := passSample()
	md := Markdown(s)
	lines := strings.Split(md, "\n")
	if !strings.HasPrefix(lines[0], "### ✅ telechaos `launch-video-switch`: **pass** (exit 0)") {
		t.Errorf("first line %q", lines[0])
	}
	if lines[2] != "> **pass**: `every checked invariant judged, no violation, thresholds met`" {
		t.Errorf("verdict line %q", lines[2])
	}
	mustContain(t, md,
		"| operation | count | p50 | p90 | p95 | p99 | max |",
		// 600 switches at 80 ms and 4x slower during the latency fault: the
		// median is a bucket near 80 ms, the tail near 320 ms.
		"| `switch` | 600 | ",
		"| `book` | 600 | ",
		"| `latency.switch p95` | ✅ 320ms (`max 500ms`) |",
	)
	l := s.Latency["switch"]
	row := "| `switch` | 600 | " + dur(l.P50) + " | " + dur(l.P90) + " | " + dur(l.P95) + " | " + dur(l.P99) + " | " + dur(l.Max) + " |"
	mustContain(t, md, row)
	if l.P50 >= l.P99 || l.Max < 0.3 {
		t.Errorf("fixture latency %+v: the table would not show a tail", l)
	}
	for _, bad := range []string{"❌", "not run", "Violations", "trace"} {
		if strings.Contains(md, bad) {
			t.Errorf("a passing run's summary.md shows %q:\n%s", bad, md)
		}
	}
	golden(t, "summary-pass.md", md)
}

func TestSummaryMarkdownViolation(t *testing.T) {
	s := violationSample()
	md := Markdown(s)
	if !strings.HasPrefix(md, "### ❌ telechaos `launch-video-switch`: **violation** (exit 1)\n\n> **invariant violation**: `2 distinct invariant violations`\n") {
		t.Errorf("top of summary.md:\n%s", md)
	}
	mustContain(t, md,
		"| replay-list-ownership | ❌ 1 |",
		"| live-media-isolation | ❌ 1 |",
		"| operation | count | p50 | p90 | p95 | p99 | max |",
		"minimal trace [`repro-1.trace`](repro-1.trace)",
		"minimal trace [`repro-2.trace`](repro-2.trace)",
		"**Minimal traces**",
		"- [`repro-2.trace`](repro-2.trace)",
		"coverage shortfalls: `coverage rejoin under clinic-restart: 0, want >= 1`",
	)
	if strings.Contains(md, "/abs/run") {
		t.Errorf("summary.md shows the absolute trace path:\n%s", md)
	}
	golden(t, "summary-violation.md", md)

	// The invariant's JUnit failure and index.html link the same relative paths.
	var found bool
	for _, c := range JUnit(s).Suites[0].Cases {
		if c.Name == "replay-list-ownership" {
			found = true
			if c.Failure == nil || !strings.Contains(c.Failure.Text, "minimal trace: repro-1.trace (relative to the report directory") {
				t.Errorf("JUnit failure does not name the trace: %+v", c.Failure)
			}
		}
	}
	if !found {
		t.Fatal("no replay-list-ownership case")
	}
	h, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	top := string(h)[:strings.Index(string(h), `<table class="meta">`)]
	mustContain(t, top, `<b>invariant violation</b>: 2 distinct invariant violations`, `<a href="repro-1.trace">repro-1.trace</a>`, `<a href="repro-2.trace">repro-2.trace</a>`)
	mustContain(t, string(h), `trace <a href="repro-2.trace">repro-2.trace</a>`)
}

// TestSummaryMergedTraceLinks: a merged report links each shard's trace
// through the shard's directory.
func TestSummaryMergedTraceLinks(t *testing.T) {
	a, b := violationSample(), passSample()
	m, err := Merge([]*Summary{a, b}, []string{"../shard-1", "../shard-2"})
	if err != nil {
		t.Fatal(err)
	}
	md := Markdown(m)
	mustContain(t, md, "[`../shard-1/repro-1.trace`](../shard-1/repro-1.trace)", "[`../shard-1/repro-2.trace`](../shard-1/repro-2.trace)")
	if strings.Count(md, "- [`../shard-1/repro-1.trace`]") != 1 {
		t.Errorf("a trace listed twice:\n%s", md)
	}
}

// TestTraceLinksRefuseOddPaths: a trace path that is absolute, leaves the
// report directory or carries markup is not linked.
func TestTraceLinksRefuseOddPaths(t *testing.T) {
	for _, p := range []string{"/etc/passwd", "../x.trace", "javascript:alert(1)", "a b.trace", "x](http://e)"} {
		s := violationSample()
		s.TraceFiles = []string{p}
		s.Violations[0].TraceFile, s.Violations[1].TraceFile = p, ""
		md := Markdown(s)
		if strings.Contains(md, "minimal trace") || strings.Contains(md, "Minimal traces") {
			t.Errorf("%q linked:\n%s", p, md)
		}
		h, _ := HTML(s)
		if strings.Contains(string(h), "minimal trace") {
			t.Errorf("%q linked in index.html", p)
		}
	}
}

// TestSummaryNotRun: an unreachable target judged nothing; no check may
// read as passed, and the verdict says the first cause.
func TestSummaryNotRun(t *testing.T) {
	s := sample()
	s.Verdict, s.ExitCode = VerdictError, 3
	s.Error = "target http://127.0.0.1:1: connection refused"
	s.Reason = "target or infrastructure failure: " + s.Error
	s.Violations, s.ViolationsByInvariant, s.Latency = nil, nil, nil
	s.Thresholds = []Threshold{{Metric: "latency.switch", Stat: "p95", Limit: "max 500ms", Pass: true}}
	md := Markdown(s)
	mustContain(t, md, "> **infrastructure failure**: `target or infrastructure failure: target http://127.0.0.1:1: connection refused`",
		"| replay-list-ownership | ⏹ not run |", "| `latency.switch p95` | ⏹ not run (`max 500ms`) |")
	if strings.Contains(md, "✅") {
		t.Errorf("a check of an unreachable target shows as passed:\n%s", md)
	}
	h, _ := HTML(s)
	if strings.Contains(string(h), `class="pass"`) {
		t.Errorf("index.html shows a pass for a run that judged nothing")
	}
	mustContain(t, string(h), "<b>infrastructure failure</b>: target or infrastructure failure: target http://127.0.0.1:1: connection refused", ">not run<")
	var doc JUnitSuites
	b, _ := xml.Marshal(JUnit(s))
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Suites[0].Cases {
		if c.Failure == nil && c.Error == nil && c.Skipped == nil {
			t.Errorf("JUnit case %q passes in a run that judged nothing", c.Name)
		}
	}
}

// TestSummaryCoverageShortfallReason: a coverage shortfall says what was
// missing at the top.
func TestSummaryCoverageShortfallReason(t *testing.T) {
	s := passSample()
	s.Verdict, s.ExitCode = VerdictThresholdsFailed, 4
	s.CoverageShortfalls = []string{"coverage rejoin under clinic-restart: 0, want >= 1"}
	s.Reason = ""
	md := Markdown(s)
	mustContain(t, md, "> **chaos coverage shortfall**: `failed: coverage rejoin under clinic-restart: 0, want >= 1`")
}

func TestAppendStepSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary.md")
	if err := os.WriteFile(path, []byte("earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := passSample()
	for range 2 {
		if err := AppendStepSummary(path, s); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	md := Markdown(s)
	if string(b) != "earlier step\n"+md+"\n"+md+"\n" {
		t.Errorf("step summary not appended:\n%s", b)
	}
	if err := AppendStepSummary("", s); err != nil {
		t.Errorf("empty path: %v", err)
	}
	err := AppendStepSummary(filepath.Join(t.TempDir(), "no", "such", "dir", "f"), s)
	if err == nil || !strings.Contains(err.Error(), StepSummaryEnv) {
		t.Errorf("unwritable path: %v", err)
	}
}
