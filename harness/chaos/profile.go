package chaos

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

// FaultSpec is one fault of a Profile. Which fields apply depends on Kind;
// Validate rejects a field set for a kind that does not use it.
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
	Tail Duration `yaml:"tail" json:"tail,omitempty"` // media loss allowed after the window, default CrashInFlight

	// client-*
	Probability float64 `yaml:"probability" json:"probability,omitempty"`
}

// Kinds lists every fault kind a Profile accepts.
func Kinds() []string {
	out := []string{KindHTTPLatency, KindHTTPBandwidth, KindHTTPReset, KindHTTPTimeout, KindHTTPSlicer,
		KindMediaLoss, KindMediaDelay, KindMediaJitter, KindMediaDuplicate, KindMediaReorder, KindMediaBlackhole,
		KindClinicRestart, KindClinicCrash}
	for _, k := range ClientFaultKinds {
		out = append(out, "client-"+string(k))
	}
	return out
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

var (
	mediaFields = []string{"jitter", "delay", "loss", "duplicate", "reorder", "reorder_gap", "direction", "rtp_only"}
	allowed     = map[string][]string{
		KindHTTPLatency:   {"latency", "jitter", "stream", "toxicity"},
		KindHTTPBandwidth: {"rate", "stream", "toxicity"},
		KindHTTPReset:     {"timeout", "stream", "toxicity"},
		KindHTTPTimeout:   {"timeout", "stream", "toxicity"},
		KindHTTPSlicer:    {"average_size", "size_variation", "delay", "stream", "toxicity"},
		KindClinicRestart: {"down", "tail"},
		KindClinicCrash:   {"down", "tail"},
	}
)

func allowedFields(kind string) ([]string, bool) {
	if a, ok := allowed[kind]; ok {
		return a, true
	}
	switch kind {
	case KindMediaLoss, KindMediaDelay, KindMediaJitter, KindMediaDuplicate, KindMediaReorder, KindMediaBlackhole:
		return mediaFields, true
	}
	if strings.HasPrefix(kind, "client-") && validClientKind(ClientFaultKind(strings.TrimPrefix(kind, "client-"))) {
		return []string{"probability"}, true
	}
	return nil, false
}

// Validate reports every problem at once, each naming its field
// (faults[i].field), each wrapping ErrInvalidProfile.
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
		ok, known := allowedFields(f.Kind)
		if !known {
			if f.Kind == "" {
				bad(at+".kind", "missing (want one of %s)", strings.Join(Kinds(), ", "))
			} else {
				bad(at+".kind", "unknown kind %q (want one of %s)", f.Kind, strings.Join(Kinds(), ", "))
			}
			continue
		}
		okSet := map[string]bool{}
		for _, a := range ok {
			okSet[a] = true
		}
		set := f.fieldSet()
		for _, field := range sortedKeys(set) {
			if set[field] && !okSet[field] {
				bad(at+"."+field, "does not apply to %s", f.Kind)
			}
		}
		errs = append(errs, f.validateValues(at)...)
		errs = append(errs, f.Trigger.Validate(at+".trigger")...)
		if strings.HasPrefix(f.Kind, "clinic-") {
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

func (f FaultSpec) validateValues(at string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: at + "." + field, Msg: fmt.Sprintf(format, args...)})
	}
	prob := func(field string, v float64) {
		if v < 0 || v > 1 || v != v {
			bad(field, "%v must be within 0..1", v)
		}
	}
	nonNeg := func(field string, d Duration) {
		if d.Duration < 0 {
			bad(field, "%s must be >= 0", d.Duration)
		}
	}
	for _, d := range []struct {
		n string
		v Duration
	}{{"latency", f.Latency}, {"timeout", f.Timeout}, {"jitter", f.Jitter}, {"delay", f.Delay},
		{"reorder_gap", f.ReorderGap}, {"down", f.Down}, {"tail", f.Tail}} {
		nonNeg(d.n, d.v)
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
	need := func(field string, ok bool, what string) {
		if !ok {
			bad(field, "%s needs %s", f.Kind, what)
		}
	}
	switch f.Kind {
	case KindHTTPLatency:
		need("latency", f.Latency.Duration > 0 || f.Jitter.Duration > 0, "latency > 0 (or jitter)")
	case KindHTTPBandwidth:
		need("rate", f.Rate > 0, "rate > 0 (KB/s)")
	case KindHTTPSlicer:
		need("average_size", f.AverageSize > 0, "average_size > 0 (bytes)")
		if f.SizeVariation < 0 || (f.AverageSize > 0 && f.SizeVariation >= f.AverageSize) {
			bad("size_variation", "%d must be within 0..average_size-1", f.SizeVariation)
		}
	case KindMediaLoss:
		need("loss", f.Loss > 0, "loss > 0")
	case KindMediaDelay:
		need("delay", f.Delay.Duration > 0, "delay > 0")
	case KindMediaJitter:
		need("jitter", f.Jitter.Duration > 0, "jitter > 0")
	case KindMediaDuplicate:
		need("duplicate", f.Duplicate > 0, "duplicate > 0")
	case KindMediaReorder:
		need("reorder", f.Reorder > 0, "reorder > 0")
	}
	if strings.HasPrefix(f.Kind, "client-") {
		need("probability", f.Probability > 0, "probability > 0")
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

// ApplyCoverage adds the profile's coverage requirements to c.
func (p Profile) ApplyCoverage(c *Coverage) {
	for _, r := range p.Coverage {
		c.Require(r.Path, r.Fault, r.Min)
	}
}

// Build makes the profile's faults against env and a Scheduler holding them
// with their triggers (not started). Client faults are among the faults
// (ClientFaultsOf finds them); give them to the virtual users. It fails with
// every validation problem, or with ErrUnavailable for each fault env cannot
// run.
func Build(p Profile, env Env) ([]Fault, *Scheduler, error) {
	if errs := p.Validate(); len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	rec := env.Recorder
	if rec == nil {
		rec, _ = NewRecorder(nil)
	}
	s := NewScheduler(rec, SchedulerOptions{MaxWindows: p.MaxWindows})
	names := p.Names()
	var faults []Fault
	var errs []error
	for i, spec := range p.Faults {
		f, err := spec.build(names[i], env)
		if err != nil {
			errs = append(errs, fmt.Errorf("faults[%d] (%s): %w", i, names[i], err))
			continue
		}
		if err := f.Available(env); err != nil {
			errs = append(errs, fmt.Errorf("faults[%d]: %w", i, err))
			continue
		}
		if err := s.Add(f, spec.Trigger); err != nil {
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

func (f FaultSpec) build(name string, env Env) (Fault, error) {
	switch {
	case strings.HasPrefix(f.Kind, "http-"):
		return NewHTTPFault(name, env.Proxy, HTTPSpec{
			Kind: f.Kind, Latency: f.Latency.Duration, Jitter: f.Jitter.Duration, RateKBps: f.Rate,
			Timeout: f.Timeout.Duration, AverageSize: f.AverageSize, SizeVariation: f.SizeVariation,
			SliceDelay: f.Delay.Duration, Stream: f.Stream, Toxicity: f.Toxicity,
		})
	case strings.HasPrefix(f.Kind, "media-"):
		return NewMediaFault(name, f.Kind, env.Media, Impairment{
			Loss: f.Loss, Delay: f.Delay.Duration, Jitter: f.Jitter.Duration, Duplicate: f.Duplicate,
			Reorder: f.Reorder, ReorderGap: f.ReorderGap.Duration, Direction: f.Direction, RTPOnly: f.RTPOnly,
		})
	case f.Kind == KindClinicRestart || f.Kind == KindClinicCrash:
		return NewClinicFault(name, f.Kind == KindClinicCrash, f.Down.Duration, f.Tail.Duration, env.Target, env.Proxy), nil
	case strings.HasPrefix(f.Kind, "client-"):
		c, err := NewClientFault(ClientFaultKind(strings.TrimPrefix(f.Kind, "client-")), f.Probability)
		if err != nil {
			return nil, err
		}
		c.name = name
		return c, nil
	}
	return nil, fmt.Errorf("%w: unknown kind %q", ErrInvalidProfile, f.Kind)
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
