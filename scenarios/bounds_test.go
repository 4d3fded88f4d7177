package scenarios

import (
	"strings"
	"testing"
)

const boundsBase = "name: b\nexecutor: {type: closed}\nduration: 5s\n"

// Sizes past their bound are refused naming the bound, with file and line.
func TestPopulationBoundsRefused(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"population: {patients: 100000000}\n", "b.yaml:4: population.patients: 100000000 is over the bound of 1000000 (MaxPatients)"},
		{"population: {patients: 10, clinicians: 200000}\n", "population.clinicians: 200000 is over the bound of 100000"},
		{"population: {patients: 10}\nbehaviour: {replays: 5000}\n", "behaviour.replays: 5000 is over the bound of 1000"},
	} {
		_, err := Parse("b.yaml", []byte(boundsBase+c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", strings.TrimSpace(c.yaml), err, c.want)
		}
	}
	sc, err := Parse("b.yaml", []byte(boundsBase+"population: {patients: 1000000}\n"))
	if err != nil {
		t.Fatalf("at the bound: %v", err)
	}
	if err := sc.Set("executor.max_in_flight=1000000"); err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err == nil || !strings.Contains(err.Error(), "--set: executor.max_in_flight: 1000000 is over the bound of 100000 (MaxConcurrency)") {
		t.Errorf("max_in_flight: %v", err)
	}
}

// A coverage requirement on a path the runner never counts (a typo) is
// refused with its file, line and field.
func TestCoveragePathTypoRefused(t *testing.T) {
	y := boundsBase + "population: {patients: 10}\nchaos:\n  faults:\n    - {kind: http-latency, latency: 10ms, trigger: {at: 1s, for: 1s}}\n  coverage:\n    - {path: swich, fault: any, min: 1}\n"
	_, err := Parse("c.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), `c.yaml:9: chaos.coverage[0].path: unknown path "swich"`) {
		t.Errorf("err = %v", err)
	}
	if _, err := Parse("c.yaml", []byte(strings.Replace(y, "swich", "switch", 1))); err != nil {
		t.Errorf("a known path refused: %v", err)
	}
}
