package executor

import (
	"context"
	"sync"
	"sync/atomic"
)

// Pool is the run's Launcher: a budget of arrivals, a semaphore of slots,
// and the goroutines it started. Wait for them with Done.
type Pool struct {
	work    context.Context // patients run on this context, not the executor's
	budget  int             // arrivals allowed (started + dropped)
	next    atomic.Int64
	slots   chan struct{}
	wg      sync.WaitGroup
	start   func(ctx context.Context, i int)
	dropped func()
	stop    <-chan struct{} // closed on interrupt: no new arrivals
}

// NewPool runs start(ctx, i) for arrivals 0..budget-1 on work, at most slots
// at once; an arrival with no free slot is dropped (dropped is called). stop
// closed means no new arrivals.
func NewPool(work context.Context, budget, slots int, stop <-chan struct{}, start func(context.Context, int), dropped func()) *Pool {
	return &Pool{work: work, budget: budget, slots: make(chan struct{}, max(slots, 1)), start: start, dropped: dropped, stop: stop}
}

func (l *Pool) claim() (int, bool) {
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

func (l *Pool) launch(i int) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.slots }()
		l.start(l.work, i)
	}()
}

func (l *Pool) Wait(ctx context.Context) bool {
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

func (l *Pool) Try() bool {
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
// Started is how many arrivals were claimed (started or dropped).
func (l *Pool) Started() int { return min(int(l.next.Load()), l.budget) }

// Done waits for every started arrival to return.
func (l *Pool) Done() { l.wg.Wait() }
