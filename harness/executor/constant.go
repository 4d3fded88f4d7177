package executor

import (
	"time"

	"github.com/telechaos/telechaos/scenarios"
)

func init() {
	register(scenarios.ConstantArrivalRate, func(e scenarios.Executor) Executor {
		return &Arrivals{At: ConstantRate(e.Rate), MaxInFlight: e.MaxInFlight}
	})
}

// ConstantRate is the schedule of rate arrivals per second: arrival k at
// k/rate seconds.
func ConstantRate(rate float64) func(k int) (time.Duration, bool) {
	return func(k int) (time.Duration, bool) {
		return time.Duration(float64(k) / rate * float64(time.Second)), true
	}
}
