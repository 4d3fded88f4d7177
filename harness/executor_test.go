package harness

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"telechaos/scenarios"
)

func TestRampingArrivalSchedule(t *testing.T) {
	r := &RampingArrival{Start: 0, Stages: []scenarios.Stage{
		{Duration: dur(10 * time.Second), Target: 10}, // 50 arrivals
		{Duration: dur(5 * time.Second), Target: 10},  // 50 more
	}}
	prev := time.Duration(-1)
	n := 0
	for k := 0; ; k++ {
		at, ok := r.ArrivalAt(k)
		if !ok {
			break
		}
		if at < prev {
			t.Fatalf("arrival %d at %v before previous %v", k, at, prev)
		}
		prev = at
		n++
	}
	if n != 101 { // k = 0..100 inclusive: the integral reaches 100 at the end
		t.Errorf("arrivals %d, want 101", n)
	}
	if at, _ := r.ArrivalAt(50); at < 9900*time.Millisecond || at > 10100*time.Millisecond {
		t.Errorf("50th arrival at %v, want ~10s (end of the ramp)", at)
	}
	if at, _ := r.ArrivalAt(75); at < 12400*time.Millisecond || at > 12600*time.Millisecond {
		t.Errorf("75th arrival at %v, want ~12.5s", at)
	}
}

func TestArrivalsBeyondMaxInFlightAreDropped(t *testing.T) {
	var started, dropped atomic.Int64
	release := make(chan struct{})
	l := newLauncher(context.Background(), 20, 2, make(chan struct{}), func(ctx context.Context, i int) {
		started.Add(1)
		<-release
	}, func() { dropped.Add(1) })
	(&ConstantArrival{Rate: 1000}).Run(context.Background(), l)
	close(release)
	l.wg.Wait()
	if started.Load() != 2 || dropped.Load() != 18 {
		t.Errorf("started %d dropped %d, want 2 and 18", started.Load(), dropped.Load())
	}
}

func TestClosedKeepsVUsBusyUntilBudget(t *testing.T) {
	var running, peak, total atomic.Int64
	l := newLauncher(context.Background(), 30, 4, make(chan struct{}), func(ctx context.Context, i int) {
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
	Closed{}.Run(context.Background(), l)
	l.wg.Wait()
	if total.Load() != 30 || peak.Load() > 4 {
		t.Errorf("total %d peak %d", total.Load(), peak.Load())
	}
}

func TestValidateExecutorReportsEverything(t *testing.T) {
	errs := ValidateExecutor(scenarios.Executor{Type: ExecRamping, Rate: -1, MaxInFlight: -1,
		Stages: []scenarios.Stage{{Duration: dur(0), Target: -2}}})
	if len(errs) != 4 {
		t.Errorf("want 4 errors, got %d: %v", len(errs), errs)
	}
}
