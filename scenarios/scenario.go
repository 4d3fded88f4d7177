// Package scenarios defines telechaos' scenario format (YAML), its loader and
// validator, and the built-in scenarios embedded in the binary.
package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// Scenario is one run's description. YAML field names are the snake_case tags.
type Scenario struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description"`
	// Target is "embedded" (start the clinic in-process, the default) or a base URL.
	Target string   `yaml:"target" json:"target"`
	Bugs   []string `yaml:"bugs" json:"bugs"` // clinic bugs for the embedded target, ID[:P]
	Seed   uint64   `yaml:"seed" json:"seed"`
	Media  bool     `yaml:"media" json:"media"` // real WebRTC calls (default true)
	// ICEAllow lists the addresses (IP or CIDR) a call's ICE checks may go to,
	// for a target whose media server is not on its API host's network.
	// Empty: the target's host alone if it is loopback, else its /24 (/64).
	ICEAllow []string `yaml:"ice_allow" json:"ice_allow,omitempty"`
	// Network is how calls reach the target's media over a real network:
	// where the harness gathers ICE candidates, its STUN and TURN servers,
	// and whether every call must go through a relay.
	Network Network `yaml:"network" json:"network,omitzero"`

	Population Population `yaml:"population" json:"population"`
	Executor   Executor   `yaml:"executor" json:"executor"`
	Duration   Duration   `yaml:"duration" json:"duration"` // hard bound on the arrival phase
	Settle     Duration   `yaml:"settle" json:"settle"`     // time for durability checks after the last call
	Behaviour  Behaviour  `yaml:"behaviour" json:"behaviour"`

	Invariants []string    `yaml:"invariants" json:"invariants"` // empty = all
	Thresholds []Threshold `yaml:"thresholds" json:"thresholds"`
	// Expect is "pass" or an invariant id that the run must violate (incident
	// scenarios, selftest). A run meeting its expectation exits 0 under selftest.
	Expect string `yaml:"expect" json:"expect"`
	// Chaos is the fault profile (faults, triggers, coverage minimums; see
	// faultspec.Profile). Empty: no faults, and the run does not front the
	// target with the fault proxy.
	Chaos faultspec.Profile `yaml:"chaos" json:"chaos,omitzero"`

	src *source // where each field came from (file line or --set), for errors and defaults
}

// Network configures ICE for a target on another host (docs/extending.md).
type Network struct {
	// Gather lists local IPv4 addresses or interface names to gather host
	// candidates on. Empty: the address that routes to the target, or
	// loopback for a loopback target.
	Gather []string `yaml:"gather" json:"gather,omitempty"`
	// ICEServers are STUN and TURN servers (RTCIceServer's fields).
	ICEServers []ICEServer `yaml:"ice_servers" json:"ice_servers,omitempty"`
	// RelayOnly forces every call through a TURN server of ICEServers
	// (ICE transport policy "relay").
	RelayOnly bool `yaml:"relay_only" json:"relay_only,omitempty"`
}

// ICEServer is one STUN or TURN server: URLs such as stun:host:3478,
// turn:host:3478 (UDP), turn:host:3478?transport=tcp, turns:host:5349 (TLS).
type ICEServer struct {
	URLs       []string `yaml:"urls" json:"urls"`
	Username   string   `yaml:"username" json:"username,omitempty"`
	Credential string   `yaml:"credential" json:"-"` // never written to a report
}

// Population: how many patients the run creates in total and how many clinicians
// serve them (each patient books with one clinician, round robin).
type Population struct {
	Patients   int `yaml:"patients" json:"patients"`
	Clinicians int `yaml:"clinicians" json:"clinicians"`
}

// Executor decides when patients start (docs/design.md section 10).
type Executor struct {
	// Type: "closed" (VUs patients at a time), "constant-arrival-rate" (Rate per
	// second) or "ramping-arrival-rate" (Stages).
	Type        string  `yaml:"type" json:"type"`
	VUs         int     `yaml:"vus" json:"vus"`
	Rate        float64 `yaml:"rate" json:"rate"`
	Stages      []Stage `yaml:"stages" json:"stages"`
	MaxInFlight int     `yaml:"max_in_flight" json:"max_in_flight"` // cap on concurrent patients
}

// Stage ramps the arrival rate linearly to Target over Duration.
type Stage struct {
	Duration Duration `yaml:"duration" json:"duration"`
	Target   float64  `yaml:"target" json:"target"`
}

// Behaviour mirrors models.Behaviour in YAML form.
type Behaviour struct {
	SwitchToVideo float64  `yaml:"switch_to_video" json:"switch_to_video"`
	Replay        float64  `yaml:"replay" json:"replay"`
	Abandon       float64  `yaml:"abandon" json:"abandon"`
	ProbeOther    float64  `yaml:"probe_other" json:"probe_other"`
	CallMin       Duration `yaml:"call_min" json:"call_min"`
	CallMax       Duration `yaml:"call_max" json:"call_max"`
	SwitchMin     float64  `yaml:"switch_min" json:"switch_min"`
	SwitchMax     float64  `yaml:"switch_max" json:"switch_max"`
	ThinkMin      Duration `yaml:"think_min" json:"think_min"`
	ThinkMax      Duration `yaml:"think_max" json:"think_max"`
	Replays       int      `yaml:"replays" json:"replays"` // rounds of list-and-fetch per replaying patient
}

// Threshold is a pass/fail limit on a run statistic, e.g.
// {metric: latency.switch, stat: p95, max: 500ms} or {metric: error_rate, max: 0.01}.
// Metrics: latency.<op> for op in book, join, switch, end, list, replay, media
// (stats p50, p90, p95, p99, max, in seconds or a duration), error_rate (0..1),
// media_loss (0..1), setup_rate (calls/s, with min).
type Threshold struct {
	Metric string  `yaml:"metric" json:"metric"`
	Stat   string  `yaml:"stat" json:"stat"`
	Max    *string `yaml:"max" json:"max,omitempty"` // number or duration
	Min    *string `yaml:"min" json:"min,omitempty"`
}

// Duration is a time.Duration that reads "90s", "2m" in YAML and JSON.
type Duration struct{ time.Duration }

// MarshalYAML writes the duration as "90s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a Go duration string ("90s", "1m30s", "250ms"). A bare
// number is refused: its unit would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a duration like 90s")
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as "90s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("want a duration string like \"90s\"")
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration like 90s, got %q", s)
	}
	return v, nil
}

// ICEPrefixes parses ICEAllow (validated): an IP is its own /32 or /128.
func (s *Scenario) ICEPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, a := range s.ICEAllow {
		p, err := parseAllow(a)
		if err != nil {
			return nil, fmt.Errorf("ice_allow[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseAllow(a string) (netip.Prefix, error) {
	a = strings.TrimSpace(a)
	if strings.Contains(a, "/") {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP or CIDR", a)
		}
		if p.Addr().IsUnspecified() || p.Bits() == 0 {
			return netip.Prefix{}, fmt.Errorf("%q allows every address", a)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP or CIDR", a)
	}
	if ip.IsUnspecified() || ip.IsMulticast() {
		return netip.Prefix{}, fmt.Errorf("%q is not a host address", a)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}
