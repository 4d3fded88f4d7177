package executor

import (
	"context"

	"github.com/telechaos/telechaos/scenarios"
)

func init() {
	register(scenarios.Closed, func(e scenarios.Executor) Executor {
		return &Closed{VUs: e.VUs, MaxInFlight: e.MaxInFlight}
	})
}

// Closed keeps a fixed number of patients running (its slots: VUs, or all
// patients if 0, capped by MaxInFlight) until the budget is spent: a closed
// model, where a slow target slows arrivals. Sharded, each shard runs its
// part of the slots over its patients.
type Closed struct {
	VUs, MaxInFlight int
	part             part
}

var _ Executor = (*Closed)(nil)

// Run implements Executor.
func (c *Closed) Run(ctx context.Context, l Launcher) {
	for l.Wait(ctx) {
	}
}

// Slots implements Executor.
func (c *Closed) Slots(patients int) int {
	s := patients
	if c.VUs > 0 {
		s = c.VUs
	}
	if c.MaxInFlight > 0 {
		s = min(s, c.MaxInFlight)
	}
	return c.part.split(s)
}

// Shard implements Executor.
func (c *Closed) Shard(i, n int) Executor {
	x := *c
	x.part = part{i, n}
	return &x
}
