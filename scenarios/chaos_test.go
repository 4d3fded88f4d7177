package scenarios

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

const chaosYAML = `name: c
population: {patients: 4}
executor: {type: closed, vus: 2}
duration: 5s
chaos:
  faults:
    - {kind: media-loss, loss: 0.05, trigger: {on: switch, nth: 2, for: 1500ms}}
    - kind: clinic-crash
      trigger: {at: 2s}
      down: 300ms
  coverage:
    - {path: switch, fault: media-loss, min: 1}
`

func TestChaosDecodes(t *testing.T) {
	s, err := Parse("c.yaml", []byte(chaosYAML))
	if err != nil {
		t.Fatal(err)
	}
	p := s.Chaos
	if len(p.Faults) != 2 || len(p.Coverage) != 1 {
		t.Fatalf("profile %+v", p)
	}
	f := p.Faults[0]
	if f.Kind != faultspec.KindMediaLoss || f.Loss != 0.05 || f.Trigger.On != "switch" || f.Trigger.Nth != 2 || f.Trigger.For.Duration != 1500*time.Millisecond {
		t.Errorf("fault 0 %+v", f)
	}
	if c := p.Faults[1]; c.Down.Duration != 300*time.Millisecond || c.Trigger.At.Duration != 2*time.Second {
		t.Errorf("fault 1 %+v", c)
	}
}

// Profile problems carry the file, the line and the chaos. field path.
func TestChaosErrorsNameFileLineField(t *testing.T) {
	for _, tc := range []struct{ old, new, want string }{
		{"loss: 0.05", "loss: 1.5", "c.yaml:7: chaos.faults[0].loss: 1.5 must be within 0..1"},
		{"kind: clinic-crash", "kind: clinic-explode", `c.yaml:8: chaos.faults[1].kind: unknown kind "clinic-explode"`},
		{"for: 1500ms", "for: soon", `c.yaml:7: chaos.faults[0].trigger.for: want a duration such as 200ms or 2s, got "soon"`},
		{"fault: media-loss", "fault: gremlins", `c.yaml:12: chaos.coverage[0].fault: "gremlins" is neither a fault`},
		{"down: 300ms", "downtime: 300ms", "c.yaml:10: chaos.faults[1].downtime: unknown field"},
	} {
		src := strings.Replace(chaosYAML, tc.old, tc.new, 1)
		_, err := Parse("c.yaml", []byte(src))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", tc.new, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error\n%v\ndoes not contain\n%s", tc.new, err, tc.want)
		}
	}
}

func TestChaosBuiltins(t *testing.T) {
	for _, name := range []string{"chaos-network", "chaos-restarts", "launch-video-switch-chaos", "bug-lost-on-crash"} {
		s, err := Load(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(s.Chaos.Faults) == 0 {
			t.Errorf("%s: no faults", name)
		}
	}
}
