package chaos

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// fakeFault records its injections and heals and checks they alternate.
type fakeFault struct {
	name      string
	injectErr error
	mu        sync.Mutex
	active    bool
	injects   int
	heals     int
	overlap   bool
}

func (f *fakeFault) Name() string              { return f.name }
func (f *fakeFault) Available(Env) error       { return nil }
func (f *fakeFault) Params() map[string]string { return map[string]string{ParamKind: "fake"} }
func (f *fakeFault) Inject(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.overlap = f.overlap || f.active
	f.active = true
	f.injects++
	return f.injectErr
}
func (f *fakeFault) Heal(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active = false
	f.heals++
	return nil
}
func (f *fakeFault) counts() (int, int, bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injects, f.heals, f.active, f.overlap
}

func startScheduler(t *testing.T, add func(s *Scheduler)) (*Scheduler, *Recorder) {
	t.Helper()
	rec, err := NewRecorder(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewScheduler(rec, SchedulerOptions{})
	add(s)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, rec
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func closedWindows(rec *Recorder) []Window {
	var out []Window
	for _, w := range rec.Windows() {
		if !w.Open() {
			out = append(out, w)
		}
	}
	return out
}

// TestSchedulerClock: at 50ms, every 200ms, for 60ms, count 3: three windows
// of at least 60ms, starting at least ~150ms apart, all healed.
func TestSchedulerClock(t *testing.T) {
	f := &fakeFault{name: "clockwork"}
	start := time.Now()
	_, rec := startScheduler(t, func(s *Scheduler) {
		if err := s.Add(f, faultspec.Trigger{At: faultspec.D(50 * time.Millisecond), Every: faultspec.D(200 * time.Millisecond), For: faultspec.D(60 * time.Millisecond), Count: 3}); err != nil {
			t.Fatal(err)
		}
	})
	waitFor(t, "three windows", func() bool { return len(closedWindows(rec)) == 3 })
	time.Sleep(300 * time.Millisecond) // a fourth would come by now
	ws := rec.Windows()
	if len(ws) != 3 {
		t.Fatalf("%d windows, want 3 (count)", len(ws))
	}
	if ws[0].Start.Sub(start) < 50*time.Millisecond {
		t.Errorf("first window at %s, want >= 50ms", ws[0].Start.Sub(start))
	}
	for i, w := range ws {
		if d := w.End.Sub(w.Start); d < 60*time.Millisecond || d > 5*time.Second {
			t.Errorf("window %d lasted %s, want 60ms..5s", i, d)
		}
		if i > 0 && w.Start.Sub(ws[i-1].Start) < 150*time.Millisecond {
			t.Errorf("windows %d and %d opened %s apart, want about 200ms", i-1, i, w.Start.Sub(ws[i-1].Start))
		}
		if w.Trigger != "clock" || w.Params[ParamKind] != "fake" {
			t.Errorf("window %d: %+v", i, w)
		}
	}
	if in, he, active, overlap := f.counts(); in != 3 || he != 3 || active || overlap {
		t.Errorf("injects %d heals %d active %v overlap %v", in, he, active, overlap)
	}
}

// TestSchedulerEvents: nth, repeat and count select the events that open
// windows; events before Start and after Stop are ignored.
func TestSchedulerEvents(t *testing.T) {
	third := &fakeFault{name: "third-switch"}
	everyOther := &fakeFault{name: "every-other-end"}
	rec, _ := NewRecorder(nil)
	s := NewScheduler(rec, SchedulerOptions{})
	_ = s.Add(third, faultspec.Trigger{On: faultspec.EventSwitch, Nth: 3})
	_ = s.Add(everyOther, faultspec.Trigger{On: faultspec.EventEnd, Nth: 2, Repeat: 2, Count: 2})
	s.Event(faultspec.EventSwitch) // before Start: ignored
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		s.Event(faultspec.EventSwitch)
	}
	waitFor(t, "switch window", func() bool { return len(closedWindows(rec)) == 1 })
	for i := 1; i <= 10; i++ {
		s.Event(faultspec.EventEnd)
		// Let an instant window close before the next event (no busy skips).
		if i == 2 || i == 4 {
			waitFor(t, "end window", func() bool { return len(closedWindows(rec)) == 1+i/2 })
		}
	}
	time.Sleep(50 * time.Millisecond)
	s.Stop()
	s.Event(faultspec.EventSwitch) // after Stop: ignored
	var got []string
	for _, w := range rec.Windows() {
		got = append(got, w.Fault+"@"+w.Trigger)
	}
	want := map[string]bool{"third-switch@switch#3": true, "every-other-end@end#2": true, "every-other-end@end#4": true}
	if len(got) != 3 {
		t.Fatalf("windows %v, want %v", got, want)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("unexpected window %s (all: %v)", g, got)
		}
	}
	if ev := s.Events(); ev[faultspec.EventSwitch] != 5 || ev[faultspec.EventEnd] != 10 {
		t.Errorf("events %v", ev)
	}
}

// TestSchedulerBusySkips: a trigger firing while its fault's window is open
// is skipped, not stacked.
func TestSchedulerBusySkips(t *testing.T) {
	f := &fakeFault{name: "slow"}
	s, rec := startScheduler(t, func(s *Scheduler) {
		_ = s.Add(f, faultspec.Trigger{On: faultspec.EventFetch, Repeat: 1, For: faultspec.D(300 * time.Millisecond)})
	})
	s.Event(faultspec.EventFetch)
	waitFor(t, "open window", func() bool { return len(s.Active()) == 1 })
	s.Event(faultspec.EventFetch)
	waitFor(t, "closed window", func() bool { return len(closedWindows(rec)) == 1 })
	if n := len(rec.Windows()); n != 1 || s.Skipped() != 1 {
		t.Errorf("%d windows, %d skipped; want 1 and 1", n, s.Skipped())
	}
	if _, _, _, overlap := f.counts(); overlap {
		t.Error("fault injected twice at once")
	}
}

// TestSchedulerStopHeals: Stop closes a whole-run window and a long clock
// window at once, healing both.
func TestSchedulerStopHeals(t *testing.T) {
	always, long := &fakeFault{name: "always"}, &fakeFault{name: "long"}
	s, rec := startScheduler(t, func(s *Scheduler) {
		_ = s.Add(always, faultspec.Trigger{})
		_ = s.Add(long, faultspec.Trigger{For: faultspec.D(time.Hour)})
	})
	waitFor(t, "both active", func() bool { return len(s.Active()) == 2 })
	st := time.Now()
	s.Stop()
	if d := time.Since(st); d > 5*time.Second {
		t.Errorf("stop took %s", d)
	}
	for _, f := range []*fakeFault{always, long} {
		if in, he, active, _ := f.counts(); in != 1 || he != 1 || active {
			t.Errorf("%s: injects %d heals %d active %v", f.name, in, he, active)
		}
	}
	for _, w := range rec.Windows() {
		if w.Open() {
			t.Errorf("window %s still open after stop", w.Fault)
		}
	}
	s.Stop() // idempotent
}

// TestSchedulerInjectError: a failed inject is recorded and still healed.
func TestSchedulerInjectError(t *testing.T) {
	f := &fakeFault{name: "broken", injectErr: errors.New("no such thing")}
	_, rec := startScheduler(t, func(s *Scheduler) { _ = s.Add(f, faultspec.Trigger{For: faultspec.D(time.Hour)}) })
	waitFor(t, "window", func() bool { return len(closedWindows(rec)) == 1 })
	w := rec.Windows()[0]
	if !strings.Contains(w.Err, "inject: no such thing") {
		t.Errorf("window err %q", w.Err)
	}
	if _, he, _, _ := f.counts(); he != 1 {
		t.Errorf("heals %d, want 1 after a failed inject", he)
	}
}

// TestSchedulerMaxWindows bounds the windows of a run.
func TestSchedulerMaxWindows(t *testing.T) {
	rec, _ := NewRecorder(nil)
	s := NewScheduler(rec, SchedulerOptions{MaxWindows: 3})
	_ = s.Add(&fakeFault{name: "f"}, faultspec.Trigger{On: faultspec.EventJoin, Repeat: 1})
	_ = s.Start(t.Context())
	for i := 1; i <= 10; i++ {
		s.Event(faultspec.EventJoin)
		if i <= 3 {
			waitFor(t, "window", func() bool { return len(closedWindows(rec)) == i })
		}
	}
	s.Stop()
	if n := len(rec.Windows()); n != 3 {
		t.Errorf("%d windows, want MaxWindows 3", n)
	}
	if err := s.Add(&fakeFault{name: "late"}, faultspec.Trigger{}); err == nil {
		t.Error("Add after Start accepted")
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("second Start accepted")
	}
}

// TestRecorderMetricsAndHooks: the gauge follows open windows, the counters
// count injections and errors, hooks see open and close.
func TestRecorderMetricsAndHooks(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewRecorder(reg); err == nil {
		t.Error("second recorder on the same registry accepted")
	}
	var seen []bool
	rec.OnWindow(func(w Window) { seen = append(seen, w.Open()) })
	id := rec.Begin("media-loss", map[string]string{ParamLoss: "0.1"}, "clock")
	if g := testutil.ToFloat64(rec.active.WithLabelValues("media-loss")); g != 1 {
		t.Errorf("active gauge %v during the window", g)
	}
	if a := rec.Active(); len(a) != 1 || a[0] != "media-loss" {
		t.Errorf("active %v", a)
	}
	rec.End(id, errors.New("heal: boom"))
	rec.End(id, nil) // a second end changes nothing
	if g := testutil.ToFloat64(rec.active.WithLabelValues("media-loss")); g != 0 {
		t.Errorf("active gauge %v after the window", g)
	}
	if n := testutil.ToFloat64(rec.injections.WithLabelValues("media-loss")); n != 1 {
		t.Errorf("injections %v", n)
	}
	if n := testutil.ToFloat64(rec.errs.WithLabelValues("media-loss")); n != 1 {
		t.Errorf("errors %v", n)
	}
	if len(seen) != 2 || !seen[0] || seen[1] {
		t.Errorf("hooks saw open states %v, want [true false]", seen)
	}
	if lint, err := testutil.GatherAndLint(reg); err != nil || len(lint) > 0 {
		t.Errorf("metric lint: %v %v", lint, err)
	}
	ws := rec.Windows()
	ws[0].Params[ParamLoss] = "tampered"
	if rec.Windows()[0].Params[ParamLoss] != "0.1" {
		t.Error("Windows shares its params maps with the recorder")
	}
}

type quickFake struct{ fakeFault }

func (*quickFake) Quick() bool { return true }

// TestSchedulerQuickInjectsBeforeEventReturns: a quick fault is in place when
// Event returns (the request after the event meets it); a slow one is not
// waited for.
func TestSchedulerQuickInjectsBeforeEventReturns(t *testing.T) {
	q := &quickFake{fakeFault{name: "quick"}}
	s, _ := startScheduler(t, func(s *Scheduler) {
		_ = s.Add(q, faultspec.Trigger{On: faultspec.EventSwitch, For: faultspec.D(time.Hour)})
	})
	s.Event(faultspec.EventSwitch)
	if in, _, active, _ := q.counts(); in != 1 || !active {
		t.Errorf("after Event: injects %d active %v, want the quick fault in place", in, active)
	}
	s.Stop()
	if _, he, active, _ := q.counts(); he != 1 || active {
		t.Errorf("after Stop: heals %d active %v", he, active)
	}
}
