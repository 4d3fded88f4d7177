// Package faultspec is the fault profile of a scenario as written (YAML,
// JSON): the faults with their kinds, parameters and triggers, and the
// coverage a run must reach, with the rules that check them. It is pure
// (the standard library and YAML only), so loading a scenario builds no
// fault machinery; harness/chaos turns a Profile into running faults.
//
// A fault kind is one row of the table in kinds.go (name, fields, value
// rules, a valid example) plus, in harness/chaos, one file that registers
// its builder; a test there ties the two.
package faultspec

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrInvalidProfile is matched by every Profile validation error.
var ErrInvalidProfile = errors.New("invalid fault profile")

// Duration is a time.Duration read as "200ms", "2s" in YAML, JSON and text
// (encoding.TextUnmarshaler, so reflective decoders such as the scenario
// loader's can honour it).
type Duration struct{ time.Duration }

// D makes a Duration.
func D(d time.Duration) Duration { return Duration{d} }

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" || s == "0" {
		d.Duration = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 200ms or 2s, got %q", s)
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return d.Duration.String(), nil }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 200ms or 2s", n.Line)
	}
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// Profile is a scenario's chaos: the faults with their triggers and the
// coverage it requires. YAML example:
//
//	faults:
//	  - {kind: http-latency, latency: 200ms, jitter: 50ms, trigger: {every: 5s, for: 2s}}
//	  - {kind: media-loss, loss: 0.05, trigger: {on: switch, nth: 3, for: 3s}}
//	  - {kind: clinic-crash, trigger: {on: end, nth: 10}}
//	  - {kind: client-double-switch, probability: 0.2}
//	coverage:
//	  - {path: switch, fault: media-loss, min: 1}
type Profile struct {
	Faults     []FaultSpec   `yaml:"faults" json:"faults"`
	Coverage   []Requirement `yaml:"coverage" json:"coverage,omitempty"`
	MaxWindows int           `yaml:"max_windows" json:"max_windows,omitempty"` // default 1000
}

// FaultSpec is one fault of a Profile. Which fields apply depends on Kind
// (the kind's row in Kinds); Validate rejects a field set for a kind that
// does not use it.
type FaultSpec struct {
	Kind    string  `yaml:"kind" json:"kind"`
	Name    string  `yaml:"name" json:"name,omitempty"` // label; default the kind (kind#2... if repeated)
	Trigger Trigger `yaml:"trigger" json:"trigger,omitempty"`

	// http-*
	Latency       Duration `yaml:"latency" json:"latency,omitempty"`
	Rate          int64    `yaml:"rate" json:"rate,omitempty"` // KB/s
	Timeout       Duration `yaml:"timeout" json:"timeout,omitempty"`
	AverageSize   int      `yaml:"average_size" json:"average_size,omitempty"`
	SizeVariation int      `yaml:"size_variation" json:"size_variation,omitempty"`
	Stream        string   `yaml:"stream" json:"stream,omitempty"`
	Toxicity      float64  `yaml:"toxicity" json:"toxicity,omitempty"`

	// http-latency and media-*
	Jitter Duration `yaml:"jitter" json:"jitter,omitempty"`
	// media-* (delay is also http-slicer's pause between slices)
	Delay      Duration `yaml:"delay" json:"delay,omitempty"`
	Loss       float64  `yaml:"loss" json:"loss,omitempty"`
	Duplicate  float64  `yaml:"duplicate" json:"duplicate,omitempty"`
	Reorder    float64  `yaml:"reorder" json:"reorder,omitempty"`
	ReorderGap Duration `yaml:"reorder_gap" json:"reorder_gap,omitempty"`
	Direction  string   `yaml:"direction" json:"direction,omitempty"`
	RTPOnly    bool     `yaml:"rtp_only" json:"rtp_only,omitempty"`

	// clinic-*
	Down Duration `yaml:"down" json:"down,omitempty"` // time the target stays stopped
	Tail Duration `yaml:"tail" json:"tail,omitempty"` // media loss allowed after the window, default chaos.CrashInFlight

	// client-*
	Probability float64 `yaml:"probability" json:"probability,omitempty"`
}

// ParseProfile reads a Profile from YAML, strictly (unknown fields are errors),
// and validates it.
func ParseProfile(data []byte) (Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return Profile{}, fmt.Errorf("%w: %w", ErrInvalidProfile, err)
	}
	if errs := p.Validate(); len(errs) > 0 {
		return p, errors.Join(errs...)
	}
	return p, nil
}

// Names returns the label of each fault, in order: Name if set, else the
// kind, with "#2", "#3"... for repeated kinds.
func (p Profile) Names() []string {
	out := make([]string, len(p.Faults))
	seen := map[string]int{}
	for i, f := range p.Faults {
		if f.Name != "" {
			out[i] = f.Name
			continue
		}
		seen[f.Kind]++
		out[i] = f.Kind
		if n := seen[f.Kind]; n > 1 {
			out[i] = fmt.Sprintf("%s#%d", f.Kind, n)
		}
	}
	return out
}

// fieldSet tells which kind-specific fields are set.
func (f FaultSpec) fieldSet() map[string]bool {
	return map[string]bool{
		"latency": f.Latency.Duration != 0, "rate": f.Rate != 0, "timeout": f.Timeout.Duration != 0,
		"average_size": f.AverageSize != 0, "size_variation": f.SizeVariation != 0, "stream": f.Stream != "",
		"toxicity": f.Toxicity != 0, "jitter": f.Jitter.Duration != 0, "delay": f.Delay.Duration != 0,
		"loss": f.Loss != 0, "duplicate": f.Duplicate != 0, "reorder": f.Reorder != 0,
		"reorder_gap": f.ReorderGap.Duration != 0, "direction": f.Direction != "", "rtp_only": f.RTPOnly,
		"down": f.Down.Duration != 0, "tail": f.Tail.Duration != 0, "probability": f.Probability != 0,
	}
}

// Validate reports every problem at once, each a *FieldError naming its
// field (faults[i].field), each wrapping ErrInvalidProfile.
func (p Profile) Validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if p.MaxWindows < 0 {
		bad("max_windows", "%d must be >= 0", p.MaxWindows)
	}
	names := p.Names()
	byName := map[string]int{}
	for i, f := range p.Faults {
		at := fmt.Sprintf("faults[%d]", i)
		if j, dup := byName[names[i]]; dup {
			bad(at+".name", "%q is also the name of faults[%d]", names[i], j)
		}
		byName[names[i]] = i
		k, known := LookupKind(f.Kind)
		if !known {
			if f.Kind == "" {
				bad(at+".kind", "missing (want one of %s)", strings.Join(Kinds(), ", "))
			} else {
				bad(at+".kind", "unknown kind %q (want one of %s)", f.Kind, strings.Join(Kinds(), ", "))
			}
			continue
		}
		set := f.fieldSet()
		for _, field := range slices.Sorted(maps.Keys(set)) {
			if set[field] && !slices.Contains(k.Fields, field) {
				bad(at+"."+field, "does not apply to %s", f.Kind)
			}
		}
		errs = append(errs, f.validateValues(at, k)...)
		errs = append(errs, f.Trigger.Validate(at+".trigger")...)
		if k.Instant {
			if f.Trigger.IsZero() {
				bad(at+".trigger", "%s needs a trigger (when to restart)", f.Kind)
			}
			if f.Trigger.For.Duration != 0 {
				bad(at+".trigger.for", "a restart is instantaneous; use down for the time the target stays stopped")
			}
		}
	}
	for i, r := range p.Coverage {
		at := fmt.Sprintf("coverage[%d]", i)
		if r.Path == "" {
			bad(at+".path", "missing")
		}
		if r.Min < 0 {
			bad(at+".min", "%d must be >= 0", r.Min)
		}
		if _, isFault := byName[r.Fault]; !isFault && r.Fault != NoFault && r.Fault != AnyFault {
			bad(at+".fault", "%q is neither a fault of this profile nor %q or %q", r.Fault, NoFault, AnyFault)
		}
	}
	return errs
}

// validateValues checks the ranges every kind shares, then the kind's own
// requirements (its row's Check).
func (f FaultSpec) validateValues(at string, k Kind) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: at + "." + field, Msg: fmt.Sprintf(format, args...)})
	}
	prob := func(field string, v float64) {
		if v < 0 || v > 1 || v != v {
			bad(field, "%v must be within 0..1", v)
		}
	}
	for _, d := range []struct {
		n string
		v Duration
	}{{"latency", f.Latency}, {"timeout", f.Timeout}, {"jitter", f.Jitter}, {"delay", f.Delay},
		{"reorder_gap", f.ReorderGap}, {"down", f.Down}, {"tail", f.Tail}} {
		if d.v.Duration < 0 {
			bad(d.n, "%s must be >= 0", d.v.Duration)
		}
	}
	prob("toxicity", f.Toxicity)
	prob("loss", f.Loss)
	prob("duplicate", f.Duplicate)
	prob("reorder", f.Reorder)
	prob("probability", f.Probability)
	switch f.Stream {
	case "", "upstream", "downstream", "both":
	default:
		bad("stream", "%q: want upstream, downstream or both", f.Stream)
	}
	switch f.Direction {
	case "", DirUp, DirDown, DirBoth:
	default:
		bad("direction", "%q: want up, down or both", f.Direction)
	}
	if k.Check != nil {
		k.Check(f, bad)
	}
	return errs
}

// FieldError is one problem of a Profile, located by its field path
// (faults[2].trigger.on), so a scenario loader can add the file and line.
// It matches ErrInvalidProfile (errors.Is).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Is makes every FieldError match ErrInvalidProfile.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidProfile }
