package models

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestBehaviourValidate(t *testing.T) {
	with := func(f func(b *Behaviour)) Behaviour {
		b := DefaultBehaviour
		f(&b)
		return b
	}
	cases := []struct {
		name string
		b    Behaviour
		want []string // substrings of the errors, in order
	}{
		{"default", DefaultBehaviour, nil},
		{"certainties", with(func(b *Behaviour) { b.SwitchToVideo, b.Replay, b.Abandon, b.ProbeOther = 1, 0, 1, 0 }), nil},
		{"equal bounds", with(func(b *Behaviour) { b.CallMax = b.CallMin; b.SwitchMax = b.SwitchMin; b.ThinkMin = b.ThinkMax }), nil},
		{"negative probability", with(func(b *Behaviour) { b.Replay = -0.1 }), []string{"replay: probability -0.1"}},
		{"probability above 1", with(func(b *Behaviour) { b.ProbeOther = 1.5 }), []string{"probe_other: probability 1.5"}},
		{"NaN probability", with(func(b *Behaviour) { b.SwitchToVideo = math.NaN() }), []string{"switch_to_video: probability NaN"}},
		{"switch window reversed", with(func(b *Behaviour) { b.SwitchMin, b.SwitchMax = 0.8, 0.2 }), []string{"switch_min 0.8 > switch_max 0.2"}},
		{"zero call", with(func(b *Behaviour) { b.CallMin = 0 }), []string{"call length bounds"}},
		{"call reversed", with(func(b *Behaviour) { b.CallMin, b.CallMax = 5*time.Second, time.Second }), []string{"call length bounds"}},
		{"negative think", with(func(b *Behaviour) { b.ThinkMin = -time.Second }), []string{"think time bounds"}},
		{"negative replays", with(func(b *Behaviour) { b.Replays = -1 }), []string{"replays: -1"}},
		{"every problem at once", Behaviour{SwitchToVideo: 2, Abandon: -1, SwitchMin: 0.5, SwitchMax: 0.1, ThinkMin: 2, ThinkMax: 1},
			[]string{"switch_to_video", "abandon", "switch_min 0.5 > switch_max 0.1", "call length", "think time"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.b.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("errors = %v, want %d matching %q", errs, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestDrawDeterministic(t *testing.T) {
	draw := func(seed uint64) []Plan {
		r := rand.New(rand.NewPCG(seed, 0))
		var ps []Plan
		for range 50 {
			ps = append(ps, DefaultBehaviour.Draw(r))
		}
		return ps
	}
	a, b := draw(1), draw(1)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("plan %d differs for the same seed: %+v vs %+v", i, a[i], b[i])
		}
	}
	c := draw(2)
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Error("seeds 1 and 2 draw identical plans")
	}
	for i, p := range a {
		if p.CallLength < DefaultBehaviour.CallMin || p.CallLength > DefaultBehaviour.CallMax {
			t.Errorf("plan %d: call length %v out of bounds", i, p.CallLength)
		}
		lo := time.Duration(DefaultBehaviour.SwitchMin * float64(p.CallLength))
		hi := time.Duration(DefaultBehaviour.SwitchMax * float64(p.CallLength))
		if p.SwitchAt < lo-1 || p.SwitchAt > hi+1 {
			t.Errorf("plan %d: switch at %v outside %v..%v", i, p.SwitchAt, lo, hi)
		}
		if p.Replay != (p.Replays == 1) {
			t.Errorf("plan %d: replay %v with %d rounds", i, p.Replay, p.Replays)
		}
		if p.Think < DefaultBehaviour.ThinkMin || p.Think > DefaultBehaviour.ThinkMax {
			t.Errorf("plan %d: think %v out of bounds", i, p.Think)
		}
	}
}

// countingSource counts the values Draw takes from its generator.
type countingSource struct {
	src rand.Source
	n   int
}

func (c *countingSource) Uint64() uint64 { c.n++; return c.src.Uint64() }

// Draw consumes a fixed count of values whatever the behaviour and outcome, so
// that changing one probability does not shift every later plan.
func TestDrawConsumesFixedCount(t *testing.T) {
	behaviours := []Behaviour{
		DefaultBehaviour,
		{SwitchToVideo: 1, Replay: 1, Abandon: 1, ProbeOther: 1, CallMin: time.Second, CallMax: time.Second, SwitchMin: 0.5, SwitchMax: 0.5},
		{CallMin: time.Second, CallMax: time.Hour, ThinkMax: time.Minute},
	}
	want := -1
	for i, b := range behaviours {
		for seed := range uint64(20) {
			cs := &countingSource{src: rand.NewPCG(seed, seed)}
			b.Draw(rand.New(cs))
			if want < 0 {
				want = cs.n
			}
			if cs.n != want {
				t.Errorf("behaviour %d seed %d: Draw consumed %d values, want %d", i, seed, cs.n, want)
			}
		}
	}
	if want != 7 {
		t.Errorf("Draw consumes %d values, want 7 (update this test if a decision is added)", want)
	}
	// Changing a probability leaves the next plan's draw unchanged.
	r1, r2 := rand.New(rand.NewPCG(5, 5)), rand.New(rand.NewPCG(5, 5))
	b2 := DefaultBehaviour
	b2.SwitchToVideo = 0
	DefaultBehaviour.Draw(r1)
	b2.Draw(r2)
	if p1, p2 := DefaultBehaviour.Draw(r1), DefaultBehaviour.Draw(r2); p1 != p2 {
		t.Errorf("second plan shifted by the first plan's probability: %+v vs %+v", p1, p2)
	}
}
