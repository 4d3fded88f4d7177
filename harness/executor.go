package harness

import (
	"telechaos/harness/executor"
	"telechaos/scenarios"
)

// Executor decides when patients arrive; the executors live in
// harness/executor, one file per type.
type Executor = executor.Executor

// Launcher starts patients on behalf of an executor.
type Launcher = executor.Launcher

// Executor types. Kept while callers move; use scenarios.Closed and its
// siblings (remove once no file uses them).
const (
	ExecClosed   = scenarios.Closed
	ExecConstant = scenarios.ConstantArrivalRate
	ExecRamping  = scenarios.RampingArrivalRate
)

// NewExecutor builds the executor a scenario names (validated by
// scenarios.Scenario.Validate, which Run calls first).
func NewExecutor(e scenarios.Executor) (Executor, error) { return executor.New(e) }
