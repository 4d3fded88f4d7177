// Package executor decides when a run's patients arrive (the shapes follow
// k6's executors). Each executor type of the spec (scenarios.ExecutorKind)
// has one file here that registers its builder; the executor carries its
// own sharding (Shard), so a sharded run cannot silently run a new type
// unsharded in every shard.
package executor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/telechaos/telechaos/scenarios"
)

// Executor starts patients through a Launcher.
type Executor interface {
	// Run starts patients through l until l reports the budget spent or ctx
	// (the arrival phase, bounded by the scenario's duration) is done.
	Run(ctx context.Context, l Launcher)
	// Slots is how many patients may run at once (the launcher's slots) in
	// a run of patients patients in all shards together; a shard's
	// executor gives its own part.
	Slots(patients int) int
	// Shard is the executor of shard i of n (0 <= i < n) of the run: its
	// k-th arrival is the run's arrival i+k·n, at the offset the unsharded
	// executor gives it, and its slots are its part of the whole. Shard of
	// a sharded executor re-slices the whole run.
	Shard(i, n int) Executor
}

// Launcher starts patients on behalf of an executor.
type Launcher interface {
	// Wait blocks until a slot is free, then starts the next patient. It returns
	// false when no more patients may start (budget spent, ctx done).
	Wait(ctx context.Context) bool
	// Try starts the next patient if a slot is free; if none is, the arrival is
	// dropped and counted (never queued). It returns false when the budget is
	// spent.
	Try() bool
}

// Scheduled is implemented by executors whose arrivals follow a fixed
// schedule (the open models); tests check their sharding against it.
type Scheduled interface {
	// ArrivalAt is the offset from the start of the executor's k-th arrival
	// (k from 0); false when the schedule ends first.
	ArrivalAt(k int) (time.Duration, bool)
}

// builder makes the executor of one type from its spec (validated by the
// scenario: see scenarios.Scenario.Validate).
type builder func(e scenarios.Executor) Executor

var builders = map[string]builder{}

// register adds the builder of executor type typ; called from the init of
// the type's file. A type registered twice is a programming error.
func register(typ string, b builder) {
	if _, dup := builders[typ]; dup {
		panic(fmt.Sprintf("executor: type %q registered twice", typ))
	}
	builders[typ] = b
}

// Types lists the registered executor types, sorted.
func Types() []string {
	out := make([]string, 0, len(builders))
	for t := range builders {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// New builds the executor a scenario names. e must be valid (the scenario
// validator checked it, with file and line); New fails only for a type
// without an implementation.
func New(e scenarios.Executor) (Executor, error) {
	b, ok := builders[e.Type]
	if !ok {
		return nil, fmt.Errorf("executor.type: no implementation of %q (have %v)", e.Type, Types())
	}
	return b(e), nil
}

// part is a shard's slice of the run: index i of n (the zero value: all).
type part struct{ i, n int }

func (p part) count() int { return max(p.n, 1) }

// global is the run's index of the part's k-th arrival.
func (p part) global(k int) int { return p.i + k*p.count() }

func (p part) split(n int) int { return Split(n, p.i, p.count()) }

// Split is shard i of count's part of n (slots, VUs): n/count, plus one for
// the first n mod count shards; at least 1 when n > 0.
func Split(n, i, count int) int {
	count = max(count, 1)
	if n <= 0 {
		return n
	}
	p := n / count
	if i < n%count {
		p++
	}
	return max(p, 1)
}

// Arrivals is an open-model executor: the run's arrival k starts At(k)
// after the start whatever the target's speed (a slow target does not slow
// arrivals, it fills max_in_flight). The constant and ramping executors are
// Arrivals with their own At.
type Arrivals struct {
	// At is the offset of the run's k-th arrival (k from 0); false when the
	// schedule ends first.
	At          func(k int) (time.Duration, bool)
	MaxInFlight int // cap on patients at once (0: none)
	part        part
}

// ArrivalAt implements Scheduled: the offset of this executor's (this
// shard's) k-th arrival.
func (a *Arrivals) ArrivalAt(k int) (time.Duration, bool) { return a.At(a.part.global(k)) }

// Run implements Executor.
func (a *Arrivals) Run(ctx context.Context, l Launcher) { runSchedule(ctx, l, a.ArrivalAt) }

// Slots implements Executor: max_in_flight (at most the patients), split
// between the shards.
func (a *Arrivals) Slots(patients int) int {
	s := patients
	if a.MaxInFlight > 0 {
		s = min(s, a.MaxInFlight)
	}
	return a.part.split(s)
}

// Shard implements Executor.
func (a *Arrivals) Shard(i, n int) Executor {
	c := *a
	c.part = part{i, n}
	return &c
}

// runSchedule starts arrival k at offset at(k) from now.
func runSchedule(ctx context.Context, l Launcher, at func(k int) (time.Duration, bool)) {
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ; k++ {
		off, ok := at(k)
		if !ok {
			return
		}
		if wait := time.Until(start.Add(off)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		if !l.Try() {
			return
		}
	}
}

var (
	_ Executor  = (*Arrivals)(nil)
	_ Scheduled = (*Arrivals)(nil)
)
