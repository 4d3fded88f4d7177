package reports

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strings"

	"github.com/telechaos/telechaos/models"
)

// JUnit XML in the common shape CI parsers (Jenkins, GitLab, GitHub actions)
// read: <testsuites><testsuite><testcase><failure|error|skipped>.
type (
	JUnitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Time     float64      `xml:"time,attr"`
		Suites   []JUnitSuite `xml:"testsuite"`
	}
	JUnitSuite struct {
		Name       string          `xml:"name,attr"`
		Tests      int             `xml:"tests,attr"`
		Failures   int             `xml:"failures,attr"`
		Errors     int             `xml:"errors,attr"`
		Skipped    int             `xml:"skipped,attr"`
		Time       float64         `xml:"time,attr"`
		Timestamp  string          `xml:"timestamp,attr,omitempty"`
		Properties []JUnitProperty `xml:"properties>property,omitempty"`
		Cases      []JUnitCase     `xml:"testcase"`
	}
	JUnitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	JUnitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Time      float64       `xml:"time,attr"`
		Failure   *JUnitFailure `xml:"failure,omitempty"`
		Error     *JUnitFailure `xml:"error,omitempty"`
		Skipped   *JUnitSkipped `xml:"skipped,omitempty"`
		SystemOut string        `xml:"system-out,omitempty"`
	}
	JUnitFailure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	JUnitSkipped struct {
		Message string `xml:"message,attr"`
	}
)

// AllInvariants are the stable invariant ids (docs/design.md section 6), so the JUnit
// report lists every one even when a scenario checks fewer.
var AllInvariants = models.InvariantIDs()

// JUnit builds the JUnit document of a summary: one testsuite, a testcase per
// invariant and per threshold, and a "run" testcase that errors when the run
// itself failed (target unreachable, interrupted).
func JUnit(s *Summary) JUnitSuites {
	suite := JUnitSuite{
		Name:      "telechaos." + s.Scenario,
		Time:      s.DurationSeconds,
		Timestamp: s.StartedAt.UTC().Format("2006-01-02T15:04:05"),
		Properties: []JUnitProperty{
			{"run_id", s.RunID}, {"seed", fmt.Sprint(s.Seed)}, {"target", s.Target},
			{"bugs", strings.Join(s.Bugs, ",")}, {"verdict", s.Verdict}, {"repro", s.Repro},
		},
	}
	checked := map[string]bool{}
	for _, inv := range s.Invariants {
		checked[inv] = true
	}
	byInv := map[string][]Violation{}
	for _, v := range s.Violations {
		byInv[v.Invariant] = append(byInv[v.Invariant], v)
	}
	for _, inv := range AllInvariants {
		c := JUnitCase{Name: inv, Classname: "telechaos.invariant"}
		n := s.ViolationsByInvariant[inv]
		j, hasJ := s.Judgement[inv]
		switch {
		case len(s.Invariants) > 0 && !checked[inv]:
			c.Skipped = &JUnitSkipped{Message: "not checked by this scenario"}
			suite.Skipped++
		case n == 0 && hasJ && j.Status == JudgementShort:
			// Never a pass for what could not be checked.
			msg := fmt.Sprintf("not judged: %d of %d observations judged (%.0f%%, %.0f%% required)",
				j.Judged, j.Judged+j.NotJudged, 100*j.Share, 100*j.Required)
			c.Error = &JUnitFailure{Message: msg, Type: "not-judged", Text: judgementText(j)}
			suite.Errors++
		case n == 0 && !invariantRan(s, inv):
			// The run failed before this check could judge anything.
			c.Skipped = &JUnitSkipped{Message: "not run: " + notRunCause(s)}
			suite.Skipped++
		case n == 0 && hasJ && j.Status == JudgementNotExercised:
			c.Skipped = &JUnitSkipped{Message: "not exercised: the run observed nothing this invariant judges"}
			suite.Skipped++
		case n > 0:
			var b strings.Builder
			for _, v := range byInv[inv] {
				ev := v.Evidence
				if v.Shard != "" && ev != "" {
					ev = v.Shard + "/" + ev
				}
				fmt.Fprintf(&b, "%s (viewer %s, owner %s, recording %s, consultation %s) evidence %s\n",
					v.Detail, dash(v.Viewer), dash(v.Owner), dash(v.Recording), dash(v.Consultation), dash(ev))
				if v.Repro != "" && v.Repro != s.Repro {
					fmt.Fprintf(&b, "  repro: %s\n", v.Repro)
				}
				if tf := TraceLink(v); tf != "" {
					fmt.Fprintf(&b, "  minimal trace: %s (relative to the report directory; telechaos repro REPORT_DIR/%s replays it)\n", tf, tf)
				}
			}
			fmt.Fprintf(&b, "repro: %s\n", s.Repro)
			if hasJ && j.NotJudged > 0 {
				fmt.Fprintf(&b, "also not judged: %d of %d observations\n%s", j.NotJudged, j.Judged+j.NotJudged, judgementText(j))
			}
			c.Failure = &JUnitFailure{Message: fmt.Sprintf("%d violation(s) of %s", n, inv), Type: "violation", Text: b.String()}
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
	}
	names := map[string]int{}
	for _, t := range s.Thresholds {
		// The name is the metric and stat only: the limit and the value go
		// in the message, so tightening a limit keeps the test's history.
		name := ThresholdCaseName(t)
		if names[name]++; names[name] > 1 {
			name += fmt.Sprintf(" #%d", names[name]) // a min and a max of one metric
		}
		c := JUnitCase{Name: name, Classname: "telechaos.threshold",
			SystemOut: fmt.Sprintf("value %s, limit %s", thresholdValue(t), t.Limit)}
		if t.Note != "" {
			c.SystemOut += "\n" + t.Note
		}
		switch {
		case !t.Pass:
			c.Failure = &JUnitFailure{Message: fmt.Sprintf("%s = %s, limit %s", thresholdName(t), thresholdValue(t), t.Limit),
				Type: "threshold", Text: c.SystemOut}
			suite.Failures++
		case !thresholdRan(s, t):
			c.Skipped = &JUnitSkipped{Message: "not run: " + notRunCause(s)}
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, c)
	}
	if len(s.FaultWindows) > 0 || len(s.CoverageShortfalls) > 0 {
		// Coverage says whether the faults really met the risky paths; a
		// shortfall fails the run (exit 4): its pass would prove nothing.
		c := JUnitCase{Name: "fault coverage", Classname: "telechaos.coverage"}
		if len(s.CoverageShortfalls) > 0 {
			c.Failure = &JUnitFailure{Message: "coverage not met: " + strings.Join(s.CoverageShortfalls, "; "), Type: "coverage",
				Text: strings.Join(s.CoverageShortfalls, "\n")}
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
	}
	// The run itself failed or was interrupted: reported even when a
	// violation decides the verdict, so CI sees both.
	if s.Error != "" || s.Interrupted || s.Verdict == VerdictError || s.Verdict == VerdictInterrupted {
		msg := s.Error
		if msg == "" {
			msg = s.Verdict
		}
		typ := VerdictError
		if s.Interrupted {
			typ = VerdictInterrupted
		}
		suite.Cases = append(suite.Cases, JUnitCase{Name: "run", Classname: "telechaos.run",
			Error: &JUnitFailure{Message: msg, Type: typ, Text: strings.Join(append([]string{msg}, s.Also...), "\n")}})
		suite.Errors++
	}
	suite.Tests = len(suite.Cases)
	return JUnitSuites{Name: "telechaos", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []JUnitSuite{suite}}
}

// ThresholdCaseName is a threshold's JUnit test name: "threshold " and the
// metric and stat, never the limit.
func ThresholdCaseName(t Threshold) string { return "threshold " + thresholdName(t) }

// judgementText lists why observations were not judged, one reason a line.
func judgementText(j Judgement) string {
	var b strings.Builder
	for _, r := range sortedReasons(j.Reasons) {
		fmt.Fprintf(&b, "%d %s", j.Reasons[r], r)
		if ex := j.Examples[r]; ex != "" {
			fmt.Fprintf(&b, " (first: %s)", ex)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// sortedReasons orders reasons by count, most frequent first.
func sortedReasons(m map[string]int64) []string {
	rs := make([]string, 0, len(m))
	for r := range m {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(a, b int) bool { return m[rs[a]] > m[rs[b]] || m[rs[a]] == m[rs[b]] && rs[a] < rs[b] })
	return rs
}

// WriteJUnit writes JUnit(s) to path.
func WriteJUnit(path string, s *Summary) error {
	b, err := xml.MarshalIndent(JUnit(s), "", "  ")
	if err != nil {
		return fmt.Errorf("encode junit: %w", err)
	}
	return writeFileAtomic(path, append([]byte(xml.Header), append(b, '\n')...))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
