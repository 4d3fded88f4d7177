package executor

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/telechaos/telechaos/scenarios"
)

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"0/4", Shard{0, 4}, true}, {"3/4", Shard{3, 4}, true}, {" 1/2 ", Shard{1, 2}, true},
		{"4/4", Shard{}, false}, {"-1/4", Shard{}, false}, {"0/0", Shard{}, false}, {"1", Shard{}, false}, {"a/b", Shard{}, false},
	} {
		got, err := ParseShard(c.in)
		if c.ok && (err != nil || got != c.want) {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if !c.ok && !errors.Is(err, ErrShard) {
			t.Errorf("ParseShard(%q): err %v, want ErrShard", c.in, err)
		}
	}
	t.Setenv(EnvShardIndex, "2")
	if s, err := ShardFromEnv(3); err != nil || s != (Shard{2, 3}) {
		t.Errorf("ShardFromEnv(3) with index 2 = %v, %v", s, err)
	}
	t.Setenv(EnvShardIndex, "3")
	if _, err := ShardFromEnv(3); !errors.Is(err, ErrShard) {
		t.Errorf("index 3 of 3: err %v, want ErrShard", err)
	}
}

// The shards' global indexes partition the unsharded population, their
// arrival offsets are the unsharded schedule's (harness/executor checks
// every registered type; this checks Shard.executor hands the shard to it),
// and their slots add up to the unsharded ones.
func TestShardsPartitionPopulationAndSchedule(t *testing.T) {
	ramp := newExec(t, scenarios.Executor{Type: scenarios.RampingArrivalRate, Rate: 1, MaxInFlight: 10, Stages: []scenarios.Stage{
		{Duration: scenarios.Duration{Duration: 10 * time.Second}, Target: 9},
		{Duration: scenarios.Duration{Duration: 5 * time.Second}, Target: 2}}})
	whole := ramp.(Scheduled)
	for _, total := range []int{1, 7, 16, 101} {
		for _, n := range []int{1, 2, 3, 5} {
			var all []int
			slots := 0
			for i := range n {
				s := Shard{i, n}
				x, ok := s.Apply(ramp).(Scheduled)
				if !ok {
					t.Fatalf("shard %v: ramping executor lost its schedule", s)
				}
				for k := range s.Patients(total) {
					g := s.Global(k)
					all = append(all, g)
					wantOff, wantOK := whole.ArrivalAt(g)
					if off, ok := x.ArrivalAt(k); off != wantOff || ok != wantOK {
						t.Errorf("shard %v arrival %d: %v %v, unsharded arrival %d: %v %v", s, k, off, ok, g, wantOff, wantOK)
					}
				}
				slots += s.Apply(ramp).Slots(total)
			}
			slices.Sort(all)
			if len(all) != total || (total > 0 && all[total-1] != total-1) || len(slices.Compact(all)) != total {
				t.Errorf("%d patients over %d shards: global indexes %v", total, n, all)
			}
			if w := ramp.Slots(total); slots != w && w >= n {
				t.Errorf("%d slots over %d shards split into %d", w, n, slots)
			}
		}
	}
	vus := 0
	for i := range 3 {
		vus += Shard{i, 3}.Split(10)
	}
	if vus != 10 {
		t.Errorf("10 VUs over 3 shards split into %d", vus)
	}
}

func TestClinicianSlots(t *testing.T) {
	if got := (Shard{}).ClinicianSlots(16, 3); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("unsharded slots %v", got)
	}
	if got := (Shard{}).ClinicianSlots(16, 0); !slices.Equal(got, []int{0}) {
		t.Errorf("no clinicians: slots %v, want one", got)
	}
	// 2 shards, 2 clinicians: shard I's patients are all of slot I.
	if got := (Shard{1, 2}).ClinicianSlots(16, 2); !slices.Equal(got, []int{1}) {
		t.Errorf("shard 1/2 of 2 clinicians: %v, want [1]", got)
	}
	// 2 shards, 3 clinicians: both shards use every slot (gcd 1).
	if got := (Shard{0, 2}).ClinicianSlots(16, 3); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("shard 0/2 of 3 clinicians: %v", got)
	}
	if err := (Shard{3, 4}).Check(3); !errors.Is(err, ErrShard) {
		t.Errorf("shard 3/4 of 3 patients: err %v, want ErrShard", err)
	}
}
