package scenarios

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Executor types.
const (
	Closed              = "closed"
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
)

// ExecutorKind is one executor type of the spec: what its fields must
// satisfy. Its implementation lives in harness/executor, which registers
// one per type (a test there ties the two). A new executor is one row here
// and one file there.
type ExecutorKind struct {
	Type string
	Doc  string // one line
	// Check reports the problems of the type's own fields (executor.vus,
	// executor.rate, executor.stages...); max_in_flight is checked for all.
	Check func(e Executor, bad func(path, format string, args ...any))
	// Duration is the arrival phase's length when the scenario gives none
	// (nil: the scenario must give one).
	Duration func(e Executor) time.Duration
	// Example is a valid executor of the type (tests build and shard it).
	Example Executor
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// executorTable is every executor type, in the order errors list them.
var executorTable = []ExecutorKind{
	{Type: Closed, Doc: "vus patients at a time (0: max_in_flight), each followed by the next as it ends",
		Check: func(e Executor, bad func(string, string, ...any)) {
			if e.VUs < 0 {
				bad("executor.vus", "must be >= 0 (0 = max_in_flight), got %d", e.VUs)
			}
		},
		Example: Executor{Type: Closed, VUs: 3, MaxInFlight: 10}},
	{Type: ConstantArrivalRate, Doc: "rate patients per second, whatever the target's speed (an open model)",
		Check: func(e Executor, bad func(string, string, ...any)) {
			if !(e.Rate > 0) || !finite(e.Rate) {
				bad("executor.rate", "must be > 0 for constant-arrival-rate, got %g", e.Rate)
			}
		},
		Example: Executor{Type: ConstantArrivalRate, Rate: 7, MaxInFlight: 10}},
	{Type: RampingArrivalRate, Doc: "the arrival rate ramped linearly from rate through each stage's target",
		Check: checkRamping,
		Duration: func(e Executor) time.Duration {
			var total time.Duration
			for _, st := range e.Stages {
				total += max(st.Duration.Duration, 0)
			}
			return total
		},
		Example: Executor{Type: RampingArrivalRate, Rate: 1, MaxInFlight: 10, Stages: []Stage{
			{Duration: Duration{2 * time.Second}, Target: 9}, {Duration: Duration{time.Second}, Target: 9}, {Duration: Duration{3 * time.Second}, Target: 0}}}},
}

func checkRamping(e Executor, bad func(string, string, ...any)) {
	if !(e.Rate >= 0) || !finite(e.Rate) {
		bad("executor.rate", "start rate must be >= 0 for ramping-arrival-rate, got %g", e.Rate)
	}
	if len(e.Stages) == 0 {
		bad("executor.stages", "ramping-arrival-rate needs at least one stage")
	}
	peak := e.Rate
	for i, st := range e.Stages {
		if st.Duration.Duration <= 0 {
			bad(fmt.Sprintf("executor.stages[%d].duration", i), "must be > 0, got %v", st.Duration.Duration)
		}
		if !(st.Target >= 0) || !finite(st.Target) {
			bad(fmt.Sprintf("executor.stages[%d].target", i), "must be a rate >= 0, got %g", st.Target)
		}
		peak = max(peak, st.Target)
	}
	if len(e.Stages) > 0 && !(peak > 0) {
		bad("executor.stages", "every rate is 0: no patient would arrive")
	}
}

// ExecutorTypes lists every executor type, in table order.
func ExecutorTypes() []string {
	out := make([]string, len(executorTable))
	for i, k := range executorTable {
		out[i] = k.Type
	}
	return out
}

// LookupExecutor returns the row of executor type t.
func LookupExecutor(t string) (ExecutorKind, bool) {
	for _, k := range executorTable {
		if k.Type == t {
			k.Example.Stages = slices.Clone(k.Example.Stages)
			return k, true
		}
	}
	return ExecutorKind{}, false
}

// validateExecutor checks the executor section: its type's own rules, then
// those every type shares.
func (s *Scenario) validateExecutor(bad func(path, format string, args ...any)) {
	e := s.Executor
	switch k, ok := LookupExecutor(e.Type); {
	case ok:
		k.Check(e, bad)
	case e.Type == "":
		bad("executor.type", "required (%s)", orList(ExecutorTypes()))
	default:
		bad("executor.type", "unknown %q (want %s)", e.Type, orList(ExecutorTypes()))
	}
	if e.MaxInFlight <= 0 {
		bad("executor.max_in_flight", "must be > 0, got %d", e.MaxInFlight)
	} else if e.MaxInFlight > MaxConcurrency {
		bad("executor.max_in_flight", "%d is over the bound of %d (MaxConcurrency)", e.MaxInFlight, MaxConcurrency)
	}
	if e.VUs > MaxConcurrency {
		bad("executor.vus", "%d is over the bound of %d (MaxConcurrency)", e.VUs, MaxConcurrency)
	}
}

// orList is "a, b or c".
func orList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}
