package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// ClientFaultKind names a misbehaviour of real client apps that the virtual
// users act out when their ClientFault decides so.
type ClientFaultKind string

// Client fault kinds (the profile's kind is "client-" + the kind).
const (
	// Abandon: leave mid-call without calling end (the app is killed); the
	// call stays active until the other participant ends it.
	Abandon ClientFaultKind = "abandon"
	// DoubleSwitch: send the switch-to-video re-offer twice (a double tap).
	DoubleSwitch ClientFaultKind = "double-switch"
	// SwitchRacingEnd: send the switch and the end concurrently.
	SwitchRacingEnd ClientFaultKind = "switch-racing-end"
	// SwitchDuringICE: switch before the connection is up (right after join's answer).
	SwitchDuringICE ClientFaultKind = "switch-during-ice"
	// Reconnect: drop the PeerConnection mid-call and join again with a new one.
	Reconnect ClientFaultKind = "reconnect"
	// Retry: send a request again after it succeeded (a retry after a lost
	// answer), e.g. a second join, switch or end.
	Retry ClientFaultKind = "retry"
)

// ClientFaultKinds lists every kind.
var ClientFaultKinds = []ClientFaultKind{Abandon, DoubleSwitch, SwitchRacingEnd, SwitchDuringICE, Reconnect, Retry}

// The client fault kinds: misbehaviours the virtual users act out.
func init() {
	for _, k := range ClientFaultKinds {
		register(faultspec.ClientPrefix+string(k), buildClient)
	}
}

func buildClient(name string, f faultspec.FaultSpec, _ Env) (Fault, error) {
	kind := ClientFaultKind(strings.TrimPrefix(f.Kind, faultspec.ClientPrefix))
	return &ClientFault{name: name, kind: kind, p: f.Probability}, nil
}

func validClientKind(k ClientFaultKind) bool {
	for _, c := range ClientFaultKinds {
		if c == k {
			return true
		}
	}
	return false
}

// ClientFault is a descriptor the virtual users honour: at the point where a
// kind of misbehaviour could happen, a user calls Decide with its own PRNG.
// As a Fault it is "active" during its windows (or the whole run when it has
// no trigger); Decide says no outside them.
type ClientFault struct {
	name   string
	kind   ClientFaultKind
	p      float64
	active atomic.Bool
	hits   atomic.Int64
}

var (
	_ Fault = (*ClientFault)(nil)
	_ Quick = (*ClientFault)(nil)
)

// Quick: Inject only sets a flag.
func (c *ClientFault) Quick() bool { return true }

// NewClientFault makes a descriptor of kind with probability p (0..1); it is
// inactive until injected.
func NewClientFault(kind ClientFaultKind, p float64) (*ClientFault, error) {
	if !validClientKind(kind) {
		return nil, fmt.Errorf("%w: unknown client fault %q", faultspec.ErrInvalidProfile, kind)
	}
	if p < 0 || p > 1 || p != p {
		return nil, fmt.Errorf("%w: client-%s: probability %v must be within 0..1", faultspec.ErrInvalidProfile, kind, p)
	}
	return &ClientFault{name: faultspec.ClientPrefix + string(kind), kind: kind, p: p}, nil
}

// Kind is the misbehaviour.
func (c *ClientFault) Kind() ClientFaultKind { return c.kind }

// Probability is the chance a user acts it out when asked while active.
func (c *ClientFault) Probability() float64 { return c.p }

// Decide draws exactly one value from rng, whatever the state, so adding or
// timing client faults never shifts the rest of a user's random stream; it
// returns true with the fault's probability while the fault is active.
// A nil ClientFault draws and says no, so callers need no nil checks.
func (c *ClientFault) Decide(rng *rand.Rand) bool {
	x := rng.Float64()
	if c == nil || !c.active.Load() || x >= c.p {
		return false
	}
	c.hits.Add(1)
	return true
}

// Decisions counts the times Decide said yes.
func (c *ClientFault) Decisions() int64 { return c.hits.Load() }

func (c *ClientFault) Name() string { return c.name }
func (c *ClientFault) Params() map[string]string {
	return map[string]string{ParamKind: faultspec.ClientPrefix + string(c.kind), "probability": strconv.FormatFloat(c.p, 'g', -1, 64)}
}
func (c *ClientFault) Available(Env) error          { return nil }
func (c *ClientFault) Inject(context.Context) error { c.active.Store(true); return nil }
func (c *ClientFault) Heal(context.Context) error   { c.active.Store(false); return nil }

// ClientFaults finds the client faults among faults, by kind (the last one
// wins if a kind repeats). Lookups of absent kinds give nil, whose Decide
// says no.
type ClientFaults map[ClientFaultKind]*ClientFault

// ClientFaultsOf collects the client faults among faults.
func ClientFaultsOf(faults []Fault) ClientFaults {
	out := ClientFaults{}
	for _, f := range faults {
		if c, ok := f.(*ClientFault); ok {
			out[c.kind] = c
		}
	}
	return out
}

// Decide is out[kind].Decide(rng): one draw, true if the user should act it out.
func (cf ClientFaults) Decide(kind ClientFaultKind, rng *rand.Rand) bool {
	return cf[kind].Decide(rng)
}
