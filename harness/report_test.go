package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/repro"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// The package's many runs with a report directory must not each append to
// the CI job summary of the job running these tests.
func init() { os.Unsetenv(reports.StepSummaryEnv) }

// TestLinkTracesRelative: the trace files repro wrote under the report
// directory are recorded relative to it, on the summary and on each
// violation, whatever the directory's path (here one needing shell quotes).
func TestLinkTracesRelative(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my report")
	cmd := func(n string) string {
		return "telechaos repro " + repro.ShellQuote(filepath.Join(dir, n)) + " --times 10"
	}
	s := &reports.Summary{
		ReproTraces: []string{cmd("repro-1.trace"), cmd("repro-2.trace"), "something else"},
		Violations: []reports.Violation{
			{Invariant: "replay-list-ownership", ReproTrace: cmd("repro-1.trace")},
			{Invariant: "replay-list-ownership"},
			{Invariant: "live-media-isolation", ReproTrace: cmd("repro-2.trace")},
			{Invariant: "recording-durability", ReproTrace: "telechaos repro /elsewhere/repro-3.trace --times 10"},
		},
	}
	linkTraces(dir, s)
	if got := strings.Join(s.TraceFiles, ","); got != "repro-1.trace,repro-2.trace" {
		t.Errorf("trace files %q", got)
	}
	want := []string{"repro-1.trace", "", "repro-2.trace", ""}
	for i, v := range s.Violations {
		if v.TraceFile != want[i] {
			t.Errorf("violation %d: trace file %q, want %q", i, v.TraceFile, want[i])
		}
		if filepath.IsAbs(v.TraceFile) {
			t.Errorf("absolute trace path %q", v.TraceFile)
		}
	}
	// The links render relative in every report file.
	md := reports.Markdown(s)
	if !strings.Contains(md, "[`repro-2.trace`](repro-2.trace)") || strings.Contains(md, "]("+dir) {
		t.Errorf("summary.md trace links:\n%s", md)
	}
}

// TestReportLinksTracesRelative: a run that finds a violation links its
// minimal trace from index.html, summary.md and the invariant's JUnit
// failure by a path relative to the report directory.
func TestReportLinksTracesRelative(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls and minimisation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	sc := &scenarios.Scenario{
		Name: "report-traces", Seed: 3, Media: true, Target: TargetEmbedded, Bugs: []string{"list-scope:1"},
		Population: scenarios.Population{Patients: 4, Clinicians: 1},
		Executor:   scenarios.Executor{Type: scenarios.Closed, VUs: 2},
		Duration:   dur(10 * time.Second),
		Settle:     dur(2 * time.Second),
		Behaviour: scenarios.Behaviour{SwitchToVideo: 0, Replay: 1, ProbeOther: 0,
			CallMin: dur(300 * time.Millisecond), CallMax: dur(500 * time.Millisecond),
			ThinkMin: dur(0), ThinkMax: dur(10 * time.Millisecond)},
		Expect: "replay-list-ownership",
	}
	dir, err := filepath.Abs(filepath.Join(t.TempDir(), "report"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, RunConfig{Scenario: sc, ReportDir: dir, ReproBudget: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != ExitViolation {
		t.Fatalf("exit %d, want a violation", res.ExitCode)
	}
	s, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.TraceFiles) == 0 {
		t.Fatalf("no trace file recorded (repro traces %q)", s.ReproTraces)
	}
	for _, f := range s.TraceFiles {
		if filepath.IsAbs(f) || strings.Contains(f, dir) {
			t.Errorf("trace path not relative: %q", f)
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("linked trace missing: %v", err)
		}
		for _, name := range []string{reports.HTMLFile, reports.MarkdownFile, reports.JUnitFile} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), f) {
				t.Errorf("%s does not name %s", name, f)
			}
			if name != reports.JUnitFile && strings.Contains(string(b), dir+"/"+f) {
				t.Errorf("%s links %s by its absolute path", name, f)
			}
		}
	}
	linked := 0
	for _, v := range s.Violations {
		if v.TraceFile == "" || v.Evidence == "" {
			continue
		}
		linked++
		b, err := os.ReadFile(filepath.Join(dir, v.Evidence))
		if err != nil || !strings.Contains(string(b), `"trace_file": "`+v.TraceFile+`"`) {
			t.Errorf("%s does not name its trace %s relative (%v)", v.Evidence, v.TraceFile, err)
		}
	}
	if linked == 0 {
		t.Error("no violation with evidence names its trace")
	}
	html, _ := os.ReadFile(filepath.Join(dir, reports.HTMLFile))
	if !strings.Contains(string(html), `href="`+s.TraceFiles[0]+`"`) {
		t.Errorf("index.html does not link %s", s.TraceFiles[0])
	}
}
