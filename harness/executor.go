package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"telechaos/scenarios"
)

// Executor decides when patients arrive (docs/design.md section 10; the shapes follow
// k6's executors).
type Executor interface {
	// Run starts patients through l until l reports the budget spent or ctx
	// (the arrival phase, bounded by the scenario's duration) is done.
	Run(ctx context.Context, l Launcher)
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

// Executor types.
const (
	ExecClosed   = "closed"
	ExecConstant = "constant-arrival-rate"
	ExecRamping  = "ramping-arrival-rate"
)

// NewExecutor builds the executor a scenario names.
func NewExecutor(e scenarios.Executor) (Executor, error) {
	if errs := ValidateExecutor(e); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	switch e.Type {
	case ExecConstant:
		return &ConstantArrival{Rate: e.Rate}, nil
	case ExecRamping:
		return &RampingArrival{Start: e.Rate, Stages: e.Stages}, nil
	default:
		return &Closed{}, nil
	}
}

// ValidateExecutor reports every problem of an executor config at once.
func ValidateExecutor(e scenarios.Executor) []error {
	var errs []error
	switch e.Type {
	case "", ExecClosed:
		if e.VUs < 0 {
			errs = append(errs, fmt.Errorf("executor.vus: %d must be >= 0", e.VUs))
		}
	case ExecConstant:
		if !(e.Rate > 0) || math.IsInf(e.Rate, 0) {
			errs = append(errs, fmt.Errorf("executor.rate: %g must be > 0 for %s", e.Rate, ExecConstant))
		}
	case ExecRamping:
		if len(e.Stages) == 0 {
			errs = append(errs, fmt.Errorf("executor.stages: %s needs at least one stage", ExecRamping))
		}
		if e.Rate < 0 {
			errs = append(errs, fmt.Errorf("executor.rate: start rate %g must be >= 0", e.Rate))
		}
		for i, s := range e.Stages {
			if s.Duration.Duration <= 0 {
				errs = append(errs, fmt.Errorf("executor.stages[%d].duration: %v must be > 0", i, s.Duration.Duration))
			}
			if s.Target < 0 || math.IsNaN(s.Target) || math.IsInf(s.Target, 0) {
				errs = append(errs, fmt.Errorf("executor.stages[%d].target: %g must be a rate >= 0", i, s.Target))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("executor.type: unknown %q (want %s, %s or %s)", e.Type, ExecClosed, ExecConstant, ExecRamping))
	}
	if e.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("executor.max_in_flight: %d must be >= 0", e.MaxInFlight))
	}
	return errs
}

// Closed keeps a fixed number of patients running (the launcher's slots: the
// scenario's vus, capped by max_in_flight) until the budget is spent.
type Closed struct{}

// Run implements Executor.
func (Closed) Run(ctx context.Context, l Launcher) {
	for l.Wait(ctx) {
	}
}

// ConstantArrival starts Rate patients per second whatever the target's speed
// (an open model: a slow target does not slow arrivals, it fills max_in_flight).
type ConstantArrival struct{ Rate float64 }

// Run implements Executor.
func (c *ConstantArrival) Run(ctx context.Context, l Launcher) {
	runSchedule(ctx, l, func(k int) (time.Duration, bool) {
		return time.Duration(float64(k) / c.Rate * float64(time.Second)), true
	})
}

// RampingArrival ramps the arrival rate linearly from Start through each stage's
// target over the stage's duration, then stops.
type RampingArrival struct {
	Start  float64
	Stages []scenarios.Stage
}

// Run implements Executor.
func (r *RampingArrival) Run(ctx context.Context, l Launcher) {
	runSchedule(ctx, l, r.ArrivalAt)
}

// ArrivalAt is the offset of the k-th arrival (k from 0): the time at which the
// integral of the rate reaches k. false when the stages end first.
func (r *RampingArrival) ArrivalAt(k int) (time.Duration, bool) {
	need := float64(k)
	var base time.Duration
	r0 := r.Start
	for _, st := range r.Stages {
		d := st.Duration.Seconds()
		r1 := st.Target
		area := (r0 + r1) / 2 * d
		if need <= area {
			// Solve r0 t + (r1-r0) t^2 / (2d) = need for t in [0, d].
			a := (r1 - r0) / (2 * d)
			var t float64
			if math.Abs(a) < 1e-12 {
				t = need / r0
			} else {
				t = (-r0 + math.Sqrt(max(r0*r0+4*a*need, 0))) / (2 * a)
			}
			t = min(max(t, 0), d)
			return base + time.Duration(t*float64(time.Second)), true
		}
		need -= area
		base += st.Duration.Duration
		r0 = r1
	}
	return 0, false
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
	_ Executor = Closed{}
	_ Executor = (*ConstantArrival)(nil)
	_ Executor = (*RampingArrival)(nil)
)

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
