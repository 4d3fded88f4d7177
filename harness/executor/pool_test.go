package executor

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telechaos/telechaos/scenarios"
)

func newExec(t *testing.T, e scenarios.Executor) Executor {
	t.Helper()
	x, err := New(e)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestArrivalsBeyondMaxInFlightAreDropped(t *testing.T) {
	var started, dropped atomic.Int64
	release := make(chan struct{})
	l := NewPool(context.Background(), 20, 2, make(chan struct{}), func(ctx context.Context, i int) {
		started.Add(1)
		<-release
	}, func() { dropped.Add(1) })
	newExec(t, scenarios.Executor{Type: scenarios.ConstantArrivalRate, Rate: 1000}).Run(context.Background(), l)
	close(release)
	l.Done()
	if started.Load() != 2 || dropped.Load() != 18 {
		t.Errorf("started %d dropped %d, want 2 and 18", started.Load(), dropped.Load())
	}
}

func TestClosedKeepsVUsBusyUntilBudget(t *testing.T) {
	var running, peak, total atomic.Int64
	l := NewPool(context.Background(), 30, 4, make(chan struct{}), func(ctx context.Context, i int) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		total.Add(1)
		running.Add(-1)
	}, func() { t.Error("closed executor dropped an arrival") })
	newExec(t, scenarios.Executor{Type: scenarios.Closed, VUs: 4}).Run(context.Background(), l)
	l.Done()
	if total.Load() != 30 || peak.Load() > 4 {
		t.Errorf("total %d peak %d", total.Load(), peak.Load())
	}
}
