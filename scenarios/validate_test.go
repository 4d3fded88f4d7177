package scenarios

import (
	"strings"
	"testing"
	"time"
)

// The clinic's bugs need the embedded clinic; the validator says so with
// the line of bugs, not the run later without one.
func TestBugsNeedTheEmbeddedTarget(t *testing.T) {
	s := &Scenario{Name: "x", Target: "http://127.0.0.1:9", Bugs: []string{"list-scope"}, Population: Population{Patients: 4},
		Executor: Executor{Type: Closed, MaxInFlight: 1}, Duration: Duration{time.Second}}
	s.ApplyDefaults()
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "bugs: [list-scope] apply only to the embedded clinic, not to http://127.0.0.1:9") {
		t.Errorf("err %v", err)
	}
	s.Target = Embedded
	if err := s.Validate(); err != nil {
		t.Errorf("embedded: %v", err)
	}
}
