package reports

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sample() *Summary {
	return &Summary{
		Verdict: VerdictViolation, ExitCode: 1, RunID: "r1", Seed: 7, Scenario: "smoke", Target: "embedded",
		Bugs: []string{"list-scope"}, StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), DurationSeconds: 12.5,
		Repro:      "telechaos run --scenario smoke --seed 7 --bug list-scope",
		Invariants: AllInvariants,
		Violations: []Violation{{Invariant: "replay-list-ownership", Viewer: "u_a", Owner: "u_b", Recording: "r_1",
			Consultation: "c_1", Detail: "offered <r_1> & \"more\"", Evidence: EvidenceFile(1)}},
		ViolationsByInvariant: map[string]int{"replay-list-ownership": 1},
		Thresholds: []Threshold{
			{Metric: "latency.switch", Stat: "p95", Limit: "max 500ms", Value: 0.2, Pass: true},
			{Metric: "error_rate", Limit: "max 0.01", Value: 0.5, Pass: false, Note: "5 of 10"},
		},
		Latency: map[string]Latency{"book": {Count: 3, P50: 0.01}},
		Expect:  "pass",
	}
}

func TestWriteProducesParseableFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "run")
	s := sample()
	ev := []Evidence{{N: 1, RunID: "r1", Invariant: "replay-list-ownership", Summary: "x", Repro: s.Repro,
		Violation: map[string]any{"frames": []int{1, 2}}}}
	if err := Write(dir, s, ev); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSummary(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if got.Verdict != VerdictViolation || got.Seed != 7 || len(got.Violations) != 1 || got.Violations[0].Owner != "u_b" {
		t.Errorf("summary round trip: %+v", got)
	}
	b, err := os.ReadFile(filepath.Join(dir, EvidenceFile(1)))
	if err != nil {
		t.Fatal(err)
	}
	var e Evidence
	if err := json.Unmarshal(b, &e); err != nil || !strings.Contains(e.Repro, "--bug list-scope") {
		t.Errorf("evidence: %v %+v", err, e)
	}
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		if strings.HasSuffix(en.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", en.Name())
		}
	}
}

func TestJUnitRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := sample()
	path := filepath.Join(dir, JUnitFile)
	if err := WriteJUnit(path, s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc JUnitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit does not parse: %v\n%s", err, b)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("want one testsuite, got %d", len(doc.Suites))
	}
	su := doc.Suites[0]
	if su.Tests != len(AllInvariants)+2 || su.Tests != len(su.Cases) {
		t.Errorf("tests=%d cases=%d", su.Tests, len(su.Cases))
	}
	if su.Failures != 2 || doc.Failures != 2 {
		t.Errorf("failures suite=%d doc=%d, want 2", su.Failures, doc.Failures)
	}
	var failed []string
	for _, c := range su.Cases {
		if c.Failure != nil {
			failed = append(failed, c.Name)
			if c.Name == "replay-list-ownership" && !strings.Contains(c.Failure.Text, "evidence-1.json") {
				t.Errorf("failure text lacks evidence: %q", c.Failure.Text)
			}
		}
	}
	if len(failed) != 2 || failed[0] != "replay-list-ownership" {
		t.Errorf("failed cases %v", failed)
	}
}

func TestJUnitSkipsUncheckedAndErrorsRun(t *testing.T) {
	s := sample()
	s.Invariants = []string{"replay-access-control"}
	s.Violations, s.ViolationsByInvariant, s.Thresholds = nil, nil, nil
	s.Verdict, s.Error = VerdictError, "target unreachable"
	doc := JUnit(s)
	su := doc.Suites[0]
	// The unchecked ones are skipped as such; the checked one judged
	// nothing before the target failed: "not run", never a pass.
	if su.Skipped != len(AllInvariants) {
		t.Errorf("skipped %d", su.Skipped)
	}
	for _, c := range su.Cases {
		if c.Name == "replay-access-control" && (c.Skipped == nil || !strings.Contains(c.Skipped.Message, "not run: the run failed: target unreachable")) {
			t.Errorf("checked invariant of a failed run: %+v", c)
		}
	}
	if su.Errors != 1 || su.Cases[len(su.Cases)-1].Error == nil {
		t.Errorf("run error not reported: %+v", su)
	}
}

func TestWriteRemovesStaleEvidence(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, EvidenceFile(7))
	if err := os.WriteFile(stale, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, sample(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("stale evidence kept")
	}
}

// TestJUnitHasTheAttributesCIParsersRead checks the XML itself (not our
// structs) for the attributes Jenkins and GitLab read, on a run with
// violations, thresholds and faults.
func TestJUnitHasTheAttributesCIParsersRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), JUnitFile)
	if err := WriteJUnit(path, richSample()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][]string{
		"testsuites": {"name", "tests", "failures", "errors", "time"},
		"testsuite":  {"name", "tests", "failures", "errors", "skipped", "time", "timestamp"},
		"testcase":   {"classname", "name", "time"},
		"failure":    {"message", "type"},
	}
	seen := map[string]int{}
	dec := xml.NewDecoder(f)
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		seen[se.Name.Local]++
		have := map[string]bool{}
		for _, a := range se.Attr {
			have[a.Name.Local] = true
		}
		for _, a := range want[se.Name.Local] {
			if !have[a] {
				t.Errorf("<%s> lacks %s", se.Name.Local, a)
			}
		}
	}
	// 5 invariants + 2 thresholds + fault coverage; 2 violated invariants + 1
	// threshold + the coverage shortfall (it fails the run: exit 4).
	if seen["testsuites"] != 1 || seen["testsuite"] != 1 || seen["testcase"] != 8 || seen["failure"] != 4 {
		t.Errorf("elements %v", seen)
	}
	doc := JUnit(richSample())
	for _, c := range doc.Suites[0].Cases {
		if c.Name == "live-media-isolation" && (c.Failure == nil || !strings.Contains(c.Failure.Text, "evidence-2.json")) {
			t.Errorf("failure lacks the evidence summary: %+v", c.Failure)
		}
	}
}
