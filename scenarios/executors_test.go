package scenarios

import (
	"strings"
	"testing"
	"time"
)

// TestExecutorTable: every row is documented and its example makes a valid
// scenario; a type the table lacks is refused naming every known type.
func TestExecutorTable(t *testing.T) {
	for _, typ := range ExecutorTypes() {
		k, ok := LookupExecutor(typ)
		if !ok || k.Type != typ || k.Doc == "" || k.Check == nil || k.Example.Type != typ {
			t.Errorf("executor %q: row %+v", typ, k)
			continue
		}
		s := &Scenario{Name: "x", Population: Population{Patients: 4}, Executor: k.Example, Duration: Duration{time.Second}}
		s.ApplyDefaults()
		if err := s.Validate(); err != nil {
			t.Errorf("%s: example invalid: %v", typ, err)
		}
	}
	s := &Scenario{Name: "x", Population: Population{Patients: 4}, Executor: Executor{Type: "open", MaxInFlight: 1}, Duration: Duration{time.Second}}
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), `executor.type: unknown "open" (want `+orList(ExecutorTypes())+")") {
		t.Errorf("unknown type: %v", err)
	}
	if _, ok := LookupExecutor("open"); ok {
		t.Error("an unknown executor type was found")
	}
}

// Every problem of an executor is reported at once, each at its field.
func TestExecutorProblemsAllReported(t *testing.T) {
	s := &Scenario{Name: "x", Population: Population{Patients: 4}, Duration: Duration{time.Second},
		Executor: Executor{Type: RampingArrivalRate, Rate: -1, MaxInFlight: -1, Stages: []Stage{{Target: -2}}}}
	err := s.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{"executor.rate: start rate must be >= 0", "executor.max_in_flight: must be > 0",
		"executor.stages[0].duration: must be > 0", "executor.stages[0].target: must be a rate >= 0", "executor.stages: every rate is 0"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("does not say %q:\n%v", w, err)
		}
	}
}
