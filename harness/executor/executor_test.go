package executor

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telechaos/telechaos/scenarios"
)

func stage(d time.Duration, target float64) scenarios.Stage {
	return scenarios.Stage{Duration: scenarios.Duration{Duration: d}, Target: target}
}

// TestEveryTypeHasAnImplementation: the spec's executor types and the
// registered builders are the same set, so a type added to one side only
// fails here rather than at a user's run.
func TestEveryTypeHasAnImplementation(t *testing.T) {
	spec := scenarios.ExecutorTypes()
	for _, typ := range spec {
		if _, ok := builders[typ]; !ok {
			t.Errorf("executor type %q is in the spec (scenarios) but no file of harness/executor registers it", typ)
		}
	}
	for _, typ := range Types() {
		if !slices.Contains(spec, typ) {
			t.Errorf("harness/executor registers %q, which the spec (scenarios) does not list", typ)
		}
	}
	if _, err := New(scenarios.Executor{Type: "open"}); err == nil {
		t.Error("an unknown type was built")
	}
}

// TestShardingEveryTypeMakesTheUnshardedRun: for every registered type
// (built from its spec example), N shards' slots add up to the unsharded
// slots, and the shards' arrival schedules, put together by global index,
// are the unsharded schedule (each arrival exactly once, at the same
// offset). A type with no schedule must be the closed model, where the
// slots are the whole story.
func TestShardingEveryTypeMakesTheUnshardedRun(t *testing.T) {
	const patients, horizon = 40, 500 // horizon: arrivals compared for endless schedules
	for _, typ := range scenarios.ExecutorTypes() {
		k, _ := scenarios.LookupExecutor(typ)
		whole, err := New(k.Example)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		sched, scheduled := whole.(Scheduled)
		if _, closed := whole.(*Closed); !scheduled && !closed {
			t.Errorf("%s: neither a schedule nor the closed model: add how its sharding is checked", typ)
		}
		var want []time.Duration
		if scheduled {
			for g := 0; g < horizon; g++ {
				off, ok := sched.ArrivalAt(g)
				if !ok {
					break
				}
				want = append(want, off)
			}
			if len(want) < 2 {
				t.Errorf("%s: example has %d arrivals, too few to check", typ, len(want))
			}
		}
		for n := 1; n <= 5; n++ {
			slots := 0
			got := make([]time.Duration, len(want))
			seen := make([]int, len(want))
			for i := range n {
				sh := whole.Shard(i, n)
				slots += sh.Slots(patients)
				if !scheduled {
					continue
				}
				ss, ok := sh.(Scheduled)
				if !ok {
					t.Fatalf("%s shard %d/%d lost its schedule", typ, i, n)
				}
				for kk := 0; ; kk++ {
					off, ok := ss.ArrivalAt(kk)
					g := i + kk*n
					if !ok || g >= len(want) {
						if ok != (g < len(want)) && len(want) < horizon {
							t.Errorf("%s shard %d/%d: arrival %d (global %d) exists: %v, unsharded: %v", typ, i, n, kk, g, ok, g < len(want))
						}
						break
					}
					got[g], seen[g] = off, seen[g]+1
				}
			}
			if w := whole.Slots(patients); slots != w && w >= n {
				t.Errorf("%s over %d shards: slots add up to %d, unsharded %d", typ, n, slots, w)
			}
			for g := range want {
				if seen[g] != 1 || got[g] != want[g] {
					t.Errorf("%s over %d shards: arrival %d seen %d times at %v, unsharded at %v", typ, n, g, seen[g], got[g], want[g])
					break
				}
			}
		}
	}
}

func TestSlots(t *testing.T) {
	for _, c := range []struct {
		e        scenarios.Executor
		patients int
		want     int
	}{
		{scenarios.Executor{Type: scenarios.Closed, VUs: 3, MaxInFlight: 200}, 100, 3},
		{scenarios.Executor{Type: scenarios.Closed, MaxInFlight: 20}, 100, 20},
		{scenarios.Executor{Type: scenarios.Closed, VUs: 50, MaxInFlight: 20}, 100, 20},
		{scenarios.Executor{Type: scenarios.ConstantArrivalRate, Rate: 1, MaxInFlight: 200}, 100, 100},
		{scenarios.Executor{Type: scenarios.ConstantArrivalRate, Rate: 1, MaxInFlight: 30}, 100, 30},
		{scenarios.Executor{Type: scenarios.ConstantArrivalRate, Rate: 1}, 100, 100},
	} {
		x, err := New(c.e)
		if err != nil {
			t.Fatal(err)
		}
		if got := x.Slots(c.patients); got != c.want {
			t.Errorf("%+v over %d patients: %d slots, want %d", c.e, c.patients, got, c.want)
		}
	}
	if got := Split(10, 0, 3) + Split(10, 1, 3) + Split(10, 2, 3); got != 10 {
		t.Errorf("10 split 3 ways adds up to %d", got)
	}
	if Split(1, 2, 3) != 1 {
		t.Error("a shard of a non-empty pool got no slot")
	}
}

func TestRampSchedule(t *testing.T) {
	r := Ramp{Start: 0, Stages: []scenarios.Stage{
		stage(10*time.Second, 10), // 50 arrivals
		stage(5*time.Second, 10),  // 50 more
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
	// A first stage at rate 0 throughout: arrival 0 at the start, not NaN.
	flat := Ramp{Stages: []scenarios.Stage{stage(time.Second, 0), stage(time.Second, 4)}}
	if at, ok := flat.ArrivalAt(0); !ok || at != 0 {
		t.Errorf("arrival 0 of a flat first stage: %v %v", at, ok)
	}
	if at, ok := flat.ArrivalAt(1); !ok || at < time.Second {
		t.Errorf("arrival 1 of a flat first stage at %v %v, want after 1s", at, ok)
	}
}

// countLauncher counts Try calls up to a budget.
type countLauncher struct{ tries, budget atomic.Int64 }

func (l *countLauncher) Wait(ctx context.Context) bool { return l.Try() }
func (l *countLauncher) Try() bool                     { return l.tries.Add(1) <= l.budget.Load() }

// Every registered executor starts patients until the launcher says the
// budget is spent, and stops then.
func TestRunStopsAtBudget(t *testing.T) {
	for _, typ := range scenarios.ExecutorTypes() {
		k, _ := scenarios.LookupExecutor(typ)
		e := k.Example
		if e.Rate > 0 {
			e.Rate *= 1000 // no need to wait for arrivals
			for i := range e.Stages {
				e.Stages[i].Target *= 1000
			}
		}
		x, err := New(e)
		if err != nil {
			t.Fatal(err)
		}
		l := &countLauncher{}
		l.budget.Store(5)
		x.Run(t.Context(), l)
		if got := l.tries.Load(); got != 6 {
			t.Errorf("%s: %d tries for a budget of 5, want 6 (the one refused)", typ, got)
		}
	}
}
