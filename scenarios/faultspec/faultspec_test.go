package faultspec

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestProfileValidate: each bad profile is reported with the field at fault.
func TestProfileValidate(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // substrings, one error each
	}{
		{"unknown kind", `faults: [{kind: disk-full}]`, []string{`faults[0].kind: unknown kind "disk-full"`}},
		{"missing kind", `faults: [{loss: 0.1}]`, []string{"faults[0].kind: missing"}},
		{"field of another kind", `faults: [{kind: media-loss, loss: 0.1, latency: 1s}]`, []string{"faults[0].latency: does not apply to media-loss"}},
		{"loss out of range", `faults: [{kind: media-loss, loss: 1.5}]`, []string{"faults[0].loss: 1.5 must be within 0..1"}},
		{"loss missing", `faults: [{kind: media-loss}]`, []string{"faults[0].loss: media-loss needs loss > 0"}},
		{"negative delay", `faults: [{kind: media-delay, delay: -1s}]`, []string{"faults[0].delay: -1s must be >= 0", "faults[0].delay: media-delay needs delay > 0"}},
		{"bad direction", `faults: [{kind: media-loss, loss: 0.1, direction: sideways}]`, []string{`faults[0].direction: "sideways"`}},
		{"bad stream", `faults: [{kind: http-latency, latency: 1s, stream: sideways}]`, []string{`faults[0].stream: "sideways"`}},
		{"bandwidth without rate", `faults: [{kind: http-bandwidth}]`, []string{"faults[0].rate: http-bandwidth needs rate"}},
		{"slicer variation", `faults: [{kind: http-slicer, average_size: 10, size_variation: 10}]`, []string{"faults[1-1].size_variation"}},
		{"unknown event", `faults: [{kind: media-loss, loss: 0.1, trigger: {on: lunch}}]`, []string{`faults[0].trigger.on: unknown event "lunch"`}},
		{"event with every", `faults: [{kind: media-loss, loss: 0.1, trigger: {on: switch, every: 1s}}]`, []string{"faults[0].trigger.on: an event trigger"}},
		{"nth without event", `faults: [{kind: media-loss, loss: 0.1, trigger: {nth: 3}}]`, []string{"faults[0].trigger.on: nth, repeat and delay need an event"}},
		{"for longer than every", `faults: [{kind: media-loss, loss: 0.1, trigger: {every: 1s, for: 2s}}]`, []string{"faults[0].trigger.for: 2s must be shorter than every"}},
		{"negative count", `faults: [{kind: media-loss, loss: 0.1, trigger: {every: 1s, count: -1}}]`, []string{"faults[0].trigger.count"}},
		{"restart without trigger", `faults: [{kind: clinic-restart}]`, []string{"faults[0].trigger: clinic-restart needs a trigger"}},
		{"restart with for", `faults: [{kind: clinic-crash, trigger: {on: end, for: 1s}}]`, []string{"faults[0].trigger.for: a restart is instantaneous"}},
		{"client without probability", `faults: [{kind: client-abandon}]`, []string{"faults[0].probability: client-abandon needs probability"}},
		{"unknown client kind", `faults: [{kind: client-teleport, probability: 0.1}]`, []string{`faults[0].kind: unknown kind "client-teleport"`}},
		{"duplicate names", `faults: [{kind: media-loss, loss: 0.1, name: x}, {kind: media-delay, delay: 1s, name: x}]`, []string{`faults[1].name: "x" is also the name of faults[0]`}},
		{"coverage of unknown fault", `coverage: [{path: switch, fault: media-loss, min: 1}]`, []string{`coverage[0].fault: "media-loss" is neither`}},
		{"coverage without path", `coverage: [{fault: none, min: 1}]`, []string{"coverage[0].path: missing"}},
		{"negative max windows", `max_windows: -1`, []string{"max_windows: -1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseProfile([]byte(c.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.yaml)
			}
			if !errors.Is(err, ErrInvalidProfile) {
				t.Errorf("error does not wrap ErrInvalidProfile: %v", err)
			}
			msg := err.Error()
			for _, w := range c.want {
				w = strings.ReplaceAll(w, "[1-1]", "[0]")
				if !strings.Contains(msg, w) {
					t.Errorf("error does not say %q:\n%s", w, msg)
				}
			}
		})
	}
	if _, err := ParseProfile([]byte("faults: [{kind: media-loss, loss: 0.1, lose: 0.2}]")); err == nil || !strings.Contains(err.Error(), "lose") {
		t.Errorf("unknown yaml field: %v", err)
	}
	if _, err := ParseProfile([]byte("faults: [{kind: media-delay, delay: soon}]")); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Errorf("bad duration: %v", err)
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Duration != 90*time.Second {
		t.Errorf("1m30s: %v %v", d, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" {
		t.Errorf("marshal %s", b)
	}
	if err := d.UnmarshalText([]byte("12")); err == nil {
		t.Error("a bare number accepted as a duration")
	}
}

func TestProfileFieldErrors(t *testing.T) {
	p := Profile{Faults: []FaultSpec{{Kind: "media-loss", Loss: 2, Trigger: Trigger{On: "lunch"}}}}
	errs := p.Validate()
	var fields []string
	for _, err := range errs {
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidProfile) {
			t.Fatalf("%v is not a FieldError matching ErrInvalidProfile", err)
		}
		fields = append(fields, fe.Field)
	}
	if strings.Join(fields, ",") != "faults[0].loss,faults[0].trigger.on" {
		t.Errorf("fields %v", fields)
	}
}

// TestKindTable: every row is named, documented, takes only fields a
// FaultSpec has, and its example is a valid fault of the kind.
func TestKindTable(t *testing.T) {
	known := FaultSpec{}.fieldSet()
	if len(Kinds()) == 0 {
		t.Fatal("no kinds")
	}
	for _, name := range Kinds() {
		k, ok := LookupKind(name)
		if !ok || k.Name != name || k.Doc == "" {
			t.Errorf("kind %q: row %+v", name, k)
			continue
		}
		for _, f := range k.Fields {
			if _, ok := known[f]; !ok {
				t.Errorf("%s takes field %q, which FaultSpec does not have", name, f)
			}
		}
		if k.Example.Kind != name {
			t.Errorf("%s: example is of kind %q", name, k.Example.Kind)
		}
		if errs := (Profile{Faults: []FaultSpec{k.Example}}).Validate(); len(errs) > 0 {
			t.Errorf("%s: example invalid: %v", name, errors.Join(errs...))
		}
	}
	if _, ok := LookupKind("no-such-kind"); ok {
		t.Error("an unknown kind was found")
	}
}

type requirements []Requirement

func (r *requirements) Require(path, fault string, min int64) {
	*r = append(*r, Requirement{Path: path, Fault: fault, Min: min})
}

func TestApplyCoverage(t *testing.T) {
	p, err := ParseProfile([]byte("faults: [{kind: media-loss, loss: 0.1}]\ncoverage: [{path: switch, fault: media-loss, min: 2}, {path: end, fault: any, min: 1}]"))
	if err != nil {
		t.Fatal(err)
	}
	var got requirements
	p.ApplyCoverage(&got)
	if len(got) != 2 || got[0] != (Requirement{PathSwitch, "media-loss", 2}) || got[1].Fault != AnyFault {
		t.Errorf("requirements %v", got)
	}
}

func TestTriggerLimit(t *testing.T) {
	for _, c := range []struct {
		t    Trigger
		want int
	}{
		{Trigger{At: D(time.Second)}, 1},
		{Trigger{Every: D(time.Second)}, 0},
		{Trigger{Every: D(time.Second), Count: 3}, 3},
		{Trigger{On: EventSwitch}, 1},
		{Trigger{On: EventSwitch, Repeat: 2}, 0},
	} {
		if got := c.t.Limit(); got != c.want {
			t.Errorf("%s: limit %d, want %d", c.t, got, c.want)
		}
	}
}
