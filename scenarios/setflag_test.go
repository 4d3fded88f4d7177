package scenarios

import (
	"strings"
	"testing"
)

// A flag set through SetFlag survives ApplyDefaults (seed and media of a file
// that omits them used to be reset to 1 and true) and problems name the flag.
func TestSetFlagSurvivesDefaults(t *testing.T) {
	sc, err := Parse("f.yaml", []byte("name: f\npopulation: {patients: 5}\nexecutor: {type: closed}\nduration: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][3]string{{"--seed", "seed", "9"}, {"--media", "media", "false"}, {"--users", "population.patients", "40"}} {
		if err := sc.SetFlag(kv[0], kv[1], kv[2]); err != nil {
			t.Fatal(err)
		}
	}
	sc.ApplyDefaults()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	if sc.Seed != 9 || sc.Media || sc.Population.Patients != 40 || sc.Population.Clinicians != 4 {
		t.Errorf("after defaults: seed %d media %v patients %d clinicians %d", sc.Seed, sc.Media, sc.Population.Patients, sc.Population.Clinicians)
	}
	if err := sc.SetFlag("--users", "population.patients", "-3"); err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err == nil || !strings.Contains(err.Error(), "--users: population.patients") {
		t.Errorf("problem does not name the flag: %v", err)
	}
	if err := sc.SetFlag("--seed", "seed", "x"); err == nil || !strings.HasPrefix(err.Error(), "--seed x:") {
		t.Errorf("bad value: %v", err)
	}
}
