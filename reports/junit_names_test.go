package reports

import (
	"strings"
	"testing"
)

// TestJUnitThresholdNamesStable: a threshold's test case is named by metric
// and stat only, so changing its limit keeps the name (and CI's history);
// the limit and the observed value are in the message and system-out.
func TestJUnitThresholdNamesStable(t *testing.T) {
	find := func(s *Summary, name string) JUnitCase {
		t.Helper()
		for _, c := range JUnit(s).Suites[0].Cases {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no test case %q in %+v", name, JUnit(s).Suites[0].Cases)
		return JUnitCase{}
	}
	a := sample()
	b := sample()
	b.Thresholds[0].Limit = "max 150ms" // tightened: now fails
	b.Thresholds[0].Pass = false
	ca, cb := find(a, "threshold latency.switch p95"), find(b, "threshold latency.switch p95")
	if ca.Failure != nil || cb.Failure == nil {
		t.Fatalf("pass/fail wrong: %+v %+v", ca, cb)
	}
	if !strings.Contains(ca.SystemOut, "limit max 500ms") || !strings.Contains(ca.SystemOut, "value 200ms") {
		t.Errorf("passing case system-out %q", ca.SystemOut)
	}
	if m := cb.Failure.Message; !strings.Contains(m, "max 150ms") || !strings.Contains(m, "200ms") {
		t.Errorf("failure message lacks limit or value: %q", m)
	}
	for _, c := range JUnit(b).Suites[0].Cases {
		if strings.Contains(c.Name, "max ") || strings.Contains(c.Name, "ms") {
			t.Errorf("a test name carries a limit: %q", c.Name)
		}
	}
	er := find(a, "threshold error_rate")
	if er.Failure == nil || !strings.Contains(er.Failure.Message, "0.5, limit max 0.01") || !strings.Contains(er.Failure.Text, "5 of 10") {
		t.Errorf("error_rate failure %+v", er.Failure)
	}
	// Two limits on one metric and stat get distinct, stable names.
	a.Thresholds = append(a.Thresholds, Threshold{Metric: "latency.switch", Stat: "p95", Limit: "min 1ms", Value: 0.2, Pass: true})
	find(a, "threshold latency.switch p95")
	find(a, "threshold latency.switch p95 #2")
}

// TestJUnitThresholdNotRunInFailedRun: a threshold with nothing under it in
// a run that failed is "not run", not a pass.
func TestJUnitThresholdNotRunInFailedRun(t *testing.T) {
	s := sample()
	s.Violations, s.ViolationsByInvariant = nil, nil
	s.Verdict, s.Error, s.Latency = VerdictError, "target http://x: connection refused", nil
	s.Thresholds = []Threshold{{Metric: "latency.switch", Stat: "p95", Limit: "max 500ms", Pass: true}}
	for _, c := range JUnit(s).Suites[0].Cases {
		if c.Name == "threshold latency.switch p95" {
			if c.Skipped == nil || !strings.Contains(c.Skipped.Message, "not run: the run failed: target http://x: connection refused") {
				t.Errorf("threshold of a failed run: %+v", c)
			}
			return
		}
	}
	t.Fatal("threshold case missing")
}
