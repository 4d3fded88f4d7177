package executor

import (
	"math"
	"time"

	"github.com/telechaos/telechaos/scenarios"
)

func init() {
	register(scenarios.RampingArrivalRate, func(e scenarios.Executor) Executor {
		r := Ramp{Start: e.Rate, Stages: e.Stages}
		return &Arrivals{At: r.ArrivalAt, MaxInFlight: e.MaxInFlight}
	})
}

// Ramp ramps the arrival rate linearly from Start through each stage's
// target over the stage's duration, then stops.
type Ramp struct {
	Start  float64
	Stages []scenarios.Stage
}

// ArrivalAt is the offset of the k-th arrival (k from 0): the time at which the
// integral of the rate reaches k. false when the stages end first.
func (r Ramp) ArrivalAt(k int) (time.Duration, bool) {
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
			switch {
			case math.Abs(a) < 1e-12 && r0 > 0:
				t = need / r0
			case math.Abs(a) < 1e-12: // a stage at rate 0 throughout: need is 0 here
				t = 0
			default:
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
