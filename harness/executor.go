package harness

import (
	"context"
	"sync"
	"sync/atomic"

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

// launcher is the runner's Launcher: a budget of patients, a semaphore of
// slots, and the goroutines it started.
type launcher struct {
	work    context.Context // patients run on this context, not the executor's
	budget  int             // arrivals allowed (started + dropped)
	next    atomic.Int64
	slots   chan struct{}
	wg      sync.WaitGroup
	start   func(ctx context.Context, i int)
	dropped func()
	stop    <-chan struct{} // closed on interrupt: no new arrivals
}

func newLauncher(work context.Context, budget, slots int, stop <-chan struct{}, start func(context.Context, int), dropped func()) *launcher {
	return &launcher{work: work, budget: budget, slots: make(chan struct{}, max(slots, 1)), start: start, dropped: dropped, stop: stop}
}

func (l *launcher) claim() (int, bool) {
	select {
	case <-l.stop:
		return 0, false
	default:
	}
	i := int(l.next.Add(1) - 1)
	if i >= l.budget {
		return 0, false
	}
	return i, true
}

func (l *launcher) launch(i int) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.slots }()
		l.start(l.work, i)
	}()
}

func (l *launcher) Wait(ctx context.Context) bool {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	case <-l.stop:
		return false
	}
	i, ok := l.claim()
	if !ok {
		<-l.slots
		return false
	}
	l.launch(i)
	return true
}

func (l *launcher) Try() bool {
	i, ok := l.claim()
	if !ok {
		return false
	}
	select {
	case l.slots <- struct{}{}:
		l.launch(i)
	default:
		l.dropped()
	}
	return true
}

// started is how many arrivals were claimed (started or dropped).
func (l *launcher) started() int { return min(int(l.next.Load()), l.budget) }
