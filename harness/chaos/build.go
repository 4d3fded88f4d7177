package chaos

import (
	"errors"
	"fmt"
	"sort"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// builder makes the fault of one kind from its spec (a valid one, see
// faultspec.Profile.Validate), labelled name, acting on env.
type builder func(name string, f faultspec.FaultSpec, env Env) (Fault, error)

// builders holds one builder per fault kind, registered by the file that
// implements the kind (httpproxy.go, media.go, process.go, client.go).
// TestEveryKindHasABuilder ties it to faultspec's kind table.
var builders = map[string]builder{}

// register adds the builder of kind; a kind registered twice is a
// programming error caught at start-up.
func register(kind string, b builder) {
	if _, dup := builders[kind]; dup {
		panic(fmt.Sprintf("chaos: fault kind %q registered twice", kind))
	}
	builders[kind] = b
}

// registeredKinds lists the kinds with a builder, sorted.
func registeredKinds() []string {
	out := make([]string, 0, len(builders))
	for k := range builders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Build makes the profile's faults against env and a Scheduler holding them
// with their triggers (not started). Client faults are among the faults
// (ClientFaultsOf finds them); give them to the virtual users.
//
// p must be valid: a run validates its scenario once, with file and line
// (scenarios.Scenario.Validate), and faultspec.ParseProfile validates a
// profile read alone; Build does not check it again. It fails for a kind
// without a builder, for what a builder cannot make, and with ErrUnavailable
// for each fault env cannot run.
func Build(p faultspec.Profile, env Env) ([]Fault, *Scheduler, error) {
	rec := env.Recorder
	if rec == nil {
		rec, _ = NewRecorder(nil)
	}
	s := NewScheduler(rec, SchedulerOptions{MaxWindows: p.MaxWindows})
	names := p.Names()
	var faults []Fault
	var errs []error
	for i, spec := range p.Faults {
		b, ok := builders[spec.Kind]
		if !ok {
			errs = append(errs, fmt.Errorf("faults[%d]: %w: unknown kind %q (want one of %v)", i, faultspec.ErrInvalidProfile, spec.Kind, registeredKinds()))
			continue
		}
		f, err := b(names[i], spec, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("faults[%d] (%s): %w", i, names[i], err))
			continue
		}
		if err := f.Available(env); err != nil {
			errs = append(errs, fmt.Errorf("faults[%d]: %w", i, err))
			continue
		}
		if err := s.add(f, spec.Trigger); err != nil {
			errs = append(errs, fmt.Errorf("faults[%d]: %w", i, err))
			continue
		}
		faults = append(faults, f)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return faults, s, nil
}
