package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// Quick is implemented by faults whose Inject is cheap and never blocks (a
// toxic added, a flag set); see Scheduler.Event.
type Quick interface {
	Quick() bool
}

// SchedulerOptions configures NewScheduler.
type SchedulerOptions struct {
	MaxWindows  int           // bound on windows per run, default 1000
	HealTimeout time.Duration // bound on each Heal, default 30s
}

// Scheduler opens and closes fault windows by clock and by event. Event is
// cheap and never blocks; windows run on their own goroutines. A fault never
// has two windows open at once: a trigger that fires meanwhile is skipped
// (counted in Skipped). Stop heals everything and waits.
type Scheduler struct {
	rec  *Recorder
	opts SchedulerOptions

	entries []*entry
	byEvent map[string][]*entry

	mu      sync.Mutex
	started bool
	stopped bool
	events  map[string]int
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	windows atomic.Int64
	skipped atomic.Int64
}

type entry struct {
	f     Fault
	t     faultspec.Trigger
	busy  atomic.Bool
	fired atomic.Int64 // windows claimed by this entry's trigger
}

// NewScheduler makes a scheduler recording into rec (nil: a recorder without
// metrics).
func NewScheduler(rec *Recorder, opts SchedulerOptions) *Scheduler {
	if rec == nil {
		rec, _ = NewRecorder(nil)
	}
	if opts.MaxWindows <= 0 {
		opts.MaxWindows = 1000
	}
	if opts.HealTimeout <= 0 {
		opts.HealTimeout = 30 * time.Second
	}
	return &Scheduler{rec: rec, opts: opts, byEvent: map[string][]*entry{}, events: map[string]int{}}
}

// Recorder is where the windows go.
func (s *Scheduler) Recorder() *Recorder { return s.rec }

// Add schedules f by t. Faults are added before Start.
func (s *Scheduler) Add(f Fault, t faultspec.Trigger) error {
	if errs := t.Validate(f.Name() + ".trigger"); len(errs) > 0 {
		return errors.Join(errs...)
	}
	return s.add(f, t)
}

// add is Add without the trigger check, for Build (whose profile was
// validated with its scenario).
func (s *Scheduler) add(f Fault, t faultspec.Trigger) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("scheduler: add %s after start", f.Name())
	}
	e := &entry{f: f, t: t}
	s.entries = append(s.entries, e)
	if t.IsEvent() {
		s.byEvent[t.On] = append(s.byEvent[t.On], e)
	}
	return nil
}

// Start begins the clock triggers and the whole-run windows and accepts
// events. Cancelling ctx is the same as Stop without the wait.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("scheduler: already started")
	}
	if s.stopped {
		return fmt.Errorf("scheduler: start: %w", ErrStopped)
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(ctx)
	start := time.Now()
	for _, e := range s.entries {
		switch {
		case e.t.IsZero():
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.window(e, "run", -1) }()
		case !e.t.IsEvent():
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.clock(e, start) }()
		}
	}
	return nil
}

// Event reports one event of kind (the runner calls it just before the
// request: "switch" before sending the re-offer, "end" before the end);
// triggers waiting for it fire. Quick faults (HTTP toxics, media impairments,
// client faults) are injected before Event returns, so the request that
// follows meets them; others (a clinic crash) open on their own goroutine
// and race the request, which is the point of "crash during finalisation".
// Event never waits for a slow Inject and is safe to call before Start and
// after Stop (ignored).
func (s *Scheduler) Event(kind string) {
	type fire struct {
		e     *entry
		label string
	}
	var fires []fire
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		return
	}
	s.events[kind]++
	n := s.events[kind]
	for _, e := range s.byEvent[kind] {
		nth := max(e.t.Nth, 1)
		if n < nth || (n > nth && (e.t.Repeat == 0 || (n-nth)%e.t.Repeat != 0)) {
			continue
		}
		if lim := e.t.Limit(); lim > 0 && e.fired.Load() >= int64(lim) {
			continue
		}
		s.wg.Add(1) // under mu: Stop cannot be waiting yet
		fires = append(fires, fire{e, fmt.Sprintf("%s#%d", kind, n)})
	}
	s.mu.Unlock()
	for _, f := range fires {
		e := f.e
		if q, ok := e.f.(Quick); ok && q.Quick() && e.t.Delay.Duration == 0 {
			// Injected before Event returns: the request that follows the
			// event already meets the fault.
			id, err, ok := s.open(e, f.label)
			if !ok {
				s.wg.Done()
				continue
			}
			go func() { defer s.wg.Done(); s.hold(e, id, err, e.t.For.Duration) }()
			continue
		}
		go func() {
			defer s.wg.Done()
			if d := e.t.Delay.Duration; d > 0 && !s.sleep(d) {
				return
			}
			s.window(e, f.label, e.t.For.Duration)
		}()
	}
}

// Events returns how many events of each kind were reported.
func (s *Scheduler) Events() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.events)
}

// Skipped counts triggers that fired while their fault's window was open,
// past their count or past MaxWindows.
func (s *Scheduler) Skipped() int64 { return s.skipped.Load() }

// Active lists the faults whose windows are open now.
func (s *Scheduler) Active() []string { return s.rec.Active() }

// Stop cancels every trigger, heals every open window and waits for them. It
// is idempotent and safe without Start.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	s.stopped = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}

// sleep waits d; false if the scheduler stopped meanwhile.
func (s *Scheduler) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *Scheduler) clock(e *entry, start time.Time) {
	lim := e.t.Limit()
	next := start.Add(e.t.At.Duration)
	for lim == 0 || e.fired.Load() < int64(lim) {
		if !s.sleep(time.Until(next)) {
			return
		}
		s.window(e, "clock", e.t.For.Duration)
		if e.t.Every.Duration <= 0 {
			return
		}
		next = next.Add(e.t.Every.Duration)
		for now := time.Now(); next.Before(now); next = next.Add(e.t.Every.Duration) {
			s.skipped.Add(1) // a tick missed while the window (or a slow heal) ran
		}
	}
}

// window opens one window of e's fault: Inject, wait d (d < 0: until Stop),
// Heal (also after a failed Inject, which may have done part of its work).
func (s *Scheduler) window(e *entry, label string, d time.Duration) {
	if id, err, ok := s.open(e, label); ok {
		s.hold(e, id, err, d)
	}
}

// open claims e for a window and injects; ok false means skipped (busy, past
// its count or MaxWindows, stopped). On ok the caller must call hold.
func (s *Scheduler) open(e *entry, label string) (id int, injectErr error, ok bool) {
	if s.ctx.Err() != nil {
		return 0, nil, false
	}
	if !e.busy.CompareAndSwap(false, true) {
		s.skipped.Add(1)
		return 0, nil, false
	}
	// Checked under busy, so two triggers cannot both take the last window.
	if lim := e.t.Limit(); lim > 0 && e.fired.Load() >= int64(lim) {
		s.skipped.Add(1)
		e.busy.Store(false)
		return 0, nil, false
	}
	if s.windows.Add(1) > int64(s.opts.MaxWindows) {
		s.skipped.Add(1)
		e.busy.Store(false)
		return 0, nil, false
	}
	e.fired.Add(1)
	var params map[string]string
	if p, ok := e.f.(Parameterised); ok {
		params = p.Params()
	}
	id = s.rec.Begin(e.f.Name(), params, label)
	return id, e.f.Inject(s.ctx), true
}

// hold keeps an opened window for d (d < 0: until Stop), heals and closes it.
func (s *Scheduler) hold(e *entry, id int, err error, d time.Duration) {
	defer e.busy.Store(false)
	if err == nil {
		if d < 0 {
			<-s.ctx.Done()
		} else {
			s.sleep(d)
		}
	}
	hctx, cancel := context.WithTimeout(context.Background(), s.opts.HealTimeout)
	defer cancel()
	herr := e.f.Heal(hctx)
	if err != nil {
		err = fmt.Errorf("inject: %w", err)
	}
	if herr != nil {
		herr = fmt.Errorf("heal: %w", herr)
	}
	s.rec.End(id, errors.Join(err, herr))
}
