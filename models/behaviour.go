package models

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Behaviour is the patient behaviour model: the probabilities and times from which
// each virtual patient's plan is drawn.
type Behaviour struct {
	SwitchToVideo float64       // probability that the call switches from audio to video
	Replay        float64       // probability of listing and fetching replays after the call
	Abandon       float64       // probability of dropping the call without ending it
	ProbeOther    float64       // probability of trying to fetch another user's recording by id
	CallMin       time.Duration // call length bounds (uniform)
	CallMax       time.Duration
	SwitchMin     float64 // switch happens at this fraction of the call length ...
	SwitchMax     float64 // ... up to this one (uniform)
	ThinkMin      time.Duration
	ThinkMax      time.Duration
	// Replays is how many times a patient who replays lists and fetches its
	// replays (a replay storm); 0 means 1.
	Replays int
}

// DefaultBehaviour is a short call with most patients switching to video.
var DefaultBehaviour = Behaviour{
	SwitchToVideo: 0.6, Replay: 1, Abandon: 0, ProbeOther: 0.2,
	CallMin: 2 * time.Second, CallMax: 4 * time.Second,
	SwitchMin: 0.3, SwitchMax: 0.6,
	ThinkMin: 0, ThinkMax: 200 * time.Millisecond,
	Replays: 1,
}

// Validate reports every problem at once.
func (b Behaviour) Validate() []error {
	var errs []error
	for _, p := range []struct {
		name string
		v    float64
	}{{"switch_to_video", b.SwitchToVideo}, {"replay", b.Replay}, {"abandon", b.Abandon}, {"probe_other", b.ProbeOther}, {"switch_min", b.SwitchMin}, {"switch_max", b.SwitchMax}} {
		if !(p.v >= 0 && p.v <= 1) { // written so that NaN fails too
			errs = append(errs, fmt.Errorf("%s: probability %g not in [0,1]", p.name, p.v))
		}
	}
	if b.SwitchMin > b.SwitchMax {
		errs = append(errs, fmt.Errorf("switch_min %g > switch_max %g", b.SwitchMin, b.SwitchMax))
	}
	if b.CallMin <= 0 || b.CallMin > b.CallMax {
		errs = append(errs, fmt.Errorf("call length bounds %v..%v: want 0 < min <= max", b.CallMin, b.CallMax))
	}
	if b.ThinkMin < 0 || b.ThinkMin > b.ThinkMax {
		errs = append(errs, fmt.Errorf("think time bounds %v..%v: want 0 <= min <= max", b.ThinkMin, b.ThinkMax))
	}
	if b.Replays < 0 {
		errs = append(errs, fmt.Errorf("replays: %d must be >= 0", b.Replays))
	}
	return errs
}

// Plan is one patient's drawn decisions. A seed and a scenario fix every plan.
type Plan struct {
	CallLength  time.Duration
	SwitchVideo bool
	SwitchAt    time.Duration // offset from media start
	Abandon     bool
	Replay      bool
	Replays     int // rounds of list-and-fetch when Replay (at least 1), 0 otherwise
	ProbeOther  bool
	Think       time.Duration // pause between steps
}

// Draw makes a plan. It consumes the same number of values from r whatever the
// outcome, so that changing one probability does not shift every later plan.
func (b Behaviour) Draw(r *rand.Rand) Plan {
	u := func() float64 { return r.Float64() }
	between := func(lo, hi time.Duration) time.Duration {
		x := u()
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(x*float64(hi-lo))
	}
	p := Plan{}
	p.CallLength = between(b.CallMin, b.CallMax)
	p.SwitchVideo = u() < b.SwitchToVideo
	frac := b.SwitchMin + u()*(b.SwitchMax-b.SwitchMin)
	p.SwitchAt = time.Duration(frac * float64(p.CallLength))
	p.Abandon = u() < b.Abandon
	p.Replay = u() < b.Replay
	if p.Replay {
		p.Replays = max(1, b.Replays)
	}
	p.ProbeOther = u() < b.ProbeOther
	p.Think = between(b.ThinkMin, b.ThinkMax)
	return p
}
