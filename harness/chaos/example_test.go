package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// How a runner uses a profile: build it against what the run has, start the
// scheduler, report events, let virtual users decide client faults, stop,
// then read the windows and the coverage.
func Example() {
	profile, err := faultspec.ParseProfile([]byte(`
faults:
  - {kind: client-double-switch, probability: 1, trigger: {on: switch, nth: 2, for: 1h}}
coverage:
  - {path: switch, fault: client-double-switch, min: 1}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// A real run fills Env with the proxy, the media impairment and the clinic.
	faults, sched, err := chaos.Build(profile, chaos.Env{})
	if err != nil {
		fmt.Println(err)
		return
	}
	cov, _ := chaos.NewCoverage(nil)
	profile.ApplyCoverage(cov)
	client := chaos.ClientFaultsOf(faults)
	rng := rand.New(rand.NewPCG(1, 2)) // a virtual user's own PRNG

	_ = sched.Start(context.Background())
	for i := 1; i <= 2; i++ {
		// Before each switch request; quick faults are in place when Event returns.
		sched.Event(faultspec.EventSwitch)
		double := client.Decide(chaos.DoubleSwitch, rng)
		cov.HitUnder(faultspec.PathSwitch, sched.Active())
		fmt.Printf("switch %d: double=%v\n", i, double)
	}
	sched.Stop()
	for _, w := range sched.Recorder().Windows() {
		fmt.Printf("window %s trigger %s closed=%v\n", w.Fault, w.Trigger, !w.Open())
	}
	fmt.Println("shortfalls:", len(cov.Check()))
	// Output:
	// switch 1: double=false
	// switch 2: double=true
	// window client-double-switch trigger switch#2 closed=true
	// shortfalls: 0
}
