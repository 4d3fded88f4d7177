package scenarios

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/telechaos/telechaos/clinic/bugs"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

func TestBuiltinsLoadAndValidate(t *testing.T) {
	names := Names()
	for _, want := range []string{"smoke", "incident-2020-06-09", "release-gate", "launch-video-switch", "replay-storm", "idor-probe"} {
		if !slices.Contains(names, want) {
			t.Errorf("built-in %s missing", want)
		}
	}
	for _, b := range KnownBugs {
		if !slices.Contains(names, "bug-"+b) {
			t.Errorf("selftest built-in bug-%s missing", b)
		}
	}
	for _, n := range names {
		s, err := Load(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if s.Name != n {
			t.Errorf("%s: name %q differs from its file name", n, s.Name)
		}
		if strings.TrimSpace(s.Description) == "" {
			t.Errorf("%s: no description", n)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: second Validate: %v", n, err)
		}
		if errs := s.ModelBehaviour().Validate(); len(errs) > 0 {
			t.Errorf("%s: model behaviour invalid: %v", n, errs)
		}
		if bug, ok := strings.CutPrefix(n, "bug-"); ok {
			if len(s.Bugs) != 1 || !strings.HasPrefix(s.Bugs[0], bug+":") {
				t.Errorf("%s: bugs %v, want exactly %s at a stated probability", n, s.Bugs, bug)
			}
			if s.Expect == ExpectPass {
				t.Errorf("%s: expects pass", n)
			}
			if s.Population.Patients < 20 || s.Population.Patients > 60 || s.Duration.Duration+s.Settle.Duration > 30*time.Second {
				t.Errorf("%s: %d patients for %v + %v settle: selftest scenarios are small", n, s.Population.Patients, s.Duration, s.Settle)
			}
		}
		if _, err := bugs.Parse(s.Bugs, s.Seed); err != nil {
			t.Errorf("%s: the clinic refuses its bugs: %v", n, err)
		}
	}
}

// The selftest expectations follow docs/design.md section 7 ("caught by").
func TestBuiltinExpectations(t *testing.T) {
	want := map[string]string{
		"smoke":               ExpectPass,
		"release-gate":        ExpectPass,
		"launch-video-switch": ExpectPass,
		"replay-storm":        ExpectPass,
		"idor-probe":          ExpectPass,
		"incident-2020-06-09": oracle.ReplayListOwnership,
		"bug-switch-reuse":    oracle.ReplayListOwnership,
		"bug-list-scope":      oracle.ReplayListOwnership,
		"bug-bola-media":      oracle.ReplayAccessControl,
		"bug-cache-key":       oracle.ReplayListOwnership,
		"bug-preroll-leak":    oracle.ReplayContentOwnership,
		"bug-switch-race":     oracle.ReplayContentOwnership,
		"bug-lost-on-crash":   oracle.RecordingDurability,
		"bug-live-crosstalk":  oracle.LiveMediaIsolation,
	}
	for n, exp := range want {
		s, err := Load(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if s.Expect != exp {
			t.Errorf("%s: expect %q, want %q", n, s.Expect, exp)
		}
	}
	smoke, _ := Load("")
	if smoke == nil || smoke.Name != Default {
		t.Fatalf("Load(\"\") = %+v, want the default %s", smoke, Default)
	}
	if smoke.Population.Patients < 500 || !smoke.Media || smoke.Target != Embedded {
		t.Errorf("smoke: %+v", smoke)
	}
	if arrivals := smoke.Executor.Rate * smoke.Duration.Seconds(); arrivals < float64(smoke.Population.Patients) {
		t.Errorf("smoke: %.0f arrivals cannot start %d patients", arrivals, smoke.Population.Patients)
	}
	if s, _ := Load("idor-probe"); s != nil && s.Behaviour.ProbeOther != 1 {
		t.Errorf("idor-probe probes with probability %g", s.Behaviour.ProbeOther)
	}
}

func TestKnownBugsMatchTheClinic(t *testing.T) {
	var ids []string
	for _, id := range bugs.All {
		ids = append(ids, string(id))
	}
	if !slices.Equal(ids, KnownBugs) {
		t.Errorf("KnownBugs = %v, clinic has %v", KnownBugs, ids)
	}
}

func TestList(t *testing.T) {
	l := List()
	if len(l) != len(Names()) {
		t.Fatalf("List has %d entries, Names %d", len(l), len(Names()))
	}
	for i, s := range l {
		if i > 0 && l[i-1].Name >= s.Name {
			t.Errorf("List not sorted at %s", s.Name)
		}
		if s.Description == "" || strings.Contains(s.Description, "\n") || strings.HasPrefix(s.Description, "invalid") {
			t.Errorf("%s: description %q", s.Name, s.Description)
		}
	}
}

const minimal = `name: mini
population: {patients: 20}
executor: {type: constant-arrival-rate, rate: 2}
duration: 10s
`

func TestDefaults(t *testing.T) {
	s, err := Parse("mini.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	d := models.DefaultBehaviour
	if s.Target != Embedded || !s.Media || s.Seed != 1 || s.Settle.Duration != 10*time.Second ||
		s.Executor.MaxInFlight != 200 || s.Population.Clinicians != 2 || s.Expect != ExpectPass {
		t.Errorf("defaults not applied: %+v", s)
	}
	if got := s.ModelBehaviour(); got != d {
		t.Errorf("behaviour = %+v, want models.DefaultBehaviour %+v", got, d)
	}
	// Explicit zero values are kept, not defaulted.
	s, err = Parse("z.yaml", []byte(minimal+"seed: 0\nmedia: false\nsettle: 0s\nbehaviour: {switch_to_video: 0, think_max: 0s}\npopulation: {patients: 5, clinicians: 1}\n"))
	if err == nil {
		t.Fatal("duplicate population accepted")
	}
	s, err = Parse("z.yaml", []byte(strings.Replace(minimal, "population: {patients: 20}", "population: {patients: 5, clinicians: 3}", 1)+"seed: 0\nmedia: false\nsettle: 0s\nbehaviour: {switch_to_video: 0, think_max: 0s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Seed != 0 || s.Media || s.Settle.Duration != 0 || s.Behaviour.SwitchToVideo != 0 || s.Behaviour.ThinkMax.Duration != 0 || s.Population.Clinicians != 3 {
		t.Errorf("explicit zeros overridden: %+v", s)
	}
	// The name defaults to the file's.
	s, err = Parse("dir/nameless.yaml", []byte(strings.Replace(minimal, "name: mini\n", "", 1)))
	if err != nil || s.Name != "nameless" {
		t.Errorf("nameless: %v, %v", s, err)
	}
	// A ramping run's duration defaults to the sum of its stages.
	s, err = Parse("r.yaml", []byte("population: {patients: 9}\nexecutor: {type: ramping-arrival-rate, stages: [{duration: 10s, target: 2}, {duration: 5s, target: 0}]}\n"))
	if err != nil || s.Duration.Duration != 15*time.Second {
		t.Errorf("ramping duration: %v, %v", s, err)
	}
}

// Bad scenarios and the exact text of their errors: file, line, field, message.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want string
	}{
		{"rate zero", minimal + "executor: {type: constant-arrival-rate, rate: 0}\n",
			"smoke.yaml:5: executor: duplicate field (first at line 3)"},
		{"rate missing", "name: x\npopulation: {patients: 5}\nduration: 5s\nexecutor:\n  type: constant-arrival-rate\n  max_in_flight: 10\n",
			"smoke.yaml:4: executor.rate: must be > 0 for constant-arrival-rate, got 0"},
		{"rate negative", "name: x\npopulation: {patients: 5}\nduration: 5s\nexecutor:\n  type: constant-arrival-rate\n  rate: -2\n",
			"smoke.yaml:6: executor.rate: must be > 0 for constant-arrival-rate, got -2"},
		{"unknown top field", minimal + "expectt: pass\n",
			"smoke.yaml:5: expectt: unknown field (known: behaviour, bugs, chaos, description, duration, executor, expect, ice_allow, invariants, media, name, network, population, seed, settle, target, thresholds)"},
		{"turn without credentials", minimal + "network:\n  ice_servers:\n    - urls: [turn:10.0.0.1:3478]\n",
			"smoke.yaml:7: network.ice_servers[0]: turn:10.0.0.1:3478 needs username and credential"},
		{"ice url scheme", minimal + "network:\n  ice_servers:\n    - urls: [http://x]\n",
			`smoke.yaml:7: network.ice_servers[0].urls[0]: "http://x": want stun:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT]`},
		{"relay only without turn", minimal + "network:\n  relay_only: true\n  ice_servers: [{urls: [stun:10.0.0.1]}]\n",
			"smoke.yaml:6: network.relay_only: needs a turn: or turns: server in network.ice_servers"},
		{"gather address", minimal + "network:\n  gather: [0.0.0.0]\n",
			`smoke.yaml:6: network.gather[0]: "0.0.0.0": want a local IPv4 address or an interface name`},
		{"unknown nested field", "name: x\npopulation:\n  patients: 5\n  doctors: 2\nexecutor: {type: closed}\nduration: 1s\n",
			"smoke.yaml:4: population.doctors: unknown field (known: clinicians, patients)"},
		{"number as text", strings.Replace(minimal, "rate: 2", "rate: fast", 1),
			`smoke.yaml:3: executor.rate: want a number, got "fast"`},
		{"bare duration", strings.Replace(minimal, "duration: 10s", "duration: 10", 1),
			`smoke.yaml:4: duration: want a duration like 90s, got "10"`},
		{"bad bool", minimal + "media: yes please\n",
			`smoke.yaml:5: media: want true or false, got "yes please"`},
		{"negative seed", minimal + "seed: -1\n",
			`smoke.yaml:5: seed: want a whole number >= 0, got "-1"`},
		{"list expected", minimal + "bugs: switch-reuse\n",
			`smoke.yaml:5: bugs: want a list, got "switch-reuse"`},
		{"mapping for a number", strings.Replace(minimal, "patients: 20", "patients: {n: 20}", 1),
			"smoke.yaml:2: population.patients: want a whole number, got a mapping"},
		{"unknown bug", minimal + "bugs: [switch-reuse:0.5, teleport]\n",
			`smoke.yaml:5: bugs[1]: unknown bug "teleport" (known: switch-reuse, list-scope, bola-media, cache-key, preroll-leak, switch-race, lost-on-crash, live-crosstalk)`},
		{"bug probability", minimal + "bugs:\n  - list-scope:2\n",
			`smoke.yaml:6: bugs[0]: probability "2" of list-scope must be a number in (0,1]`},
		{"probability out of range", minimal + "behaviour:\n  replay: 1.5\n",
			"smoke.yaml:6: behaviour.replay: must be in [0,1], got 1.5"},
		{"call bounds reversed", minimal + "behaviour:\n  call_min: 5s\n",
			"smoke.yaml:6: behaviour.call_min: 5s is longer than call_max 4s"},
		{"switch window reversed", minimal + "behaviour: {switch_min: 0.9, switch_max: 0.1}\n",
			"smoke.yaml:5: behaviour.switch_min: 0.9 is after switch_max 0.1"},
		{"closed negative vus", "name: x\npopulation: {patients: 5}\nduration: 5s\nexecutor: {type: closed, vus: -1}\n",
			"smoke.yaml:4: executor.vus: must be >= 0 (0 = max_in_flight), got -1"},
		{"unknown executor", "name: x\npopulation: {patients: 5}\nduration: 5s\nexecutor: {type: open}\n",
			`smoke.yaml:4: executor.type: unknown "open" (want closed, constant-arrival-rate or ramping-arrival-rate)`},
		{"missing executor", "name: x\npopulation: {patients: 5}\nduration: 5s\n",
			"smoke.yaml:1: executor.type: required (closed, constant-arrival-rate or ramping-arrival-rate)"},
		{"ramping without stages", "name: x\npopulation: {patients: 5}\nduration: 5s\nexecutor:\n  type: ramping-arrival-rate\n",
			"smoke.yaml:4: executor.stages: ramping-arrival-rate needs at least one stage"},
		{"bad stage", "name: x\npopulation: {patients: 5}\nexecutor:\n  type: ramping-arrival-rate\n  stages:\n    - {duration: 5s, target: 3}\n    - {duration: 0s, target: 1}\n",
			"smoke.yaml:7: executor.stages[1].duration: must be > 0, got 0s"},
		{"all stages zero", "name: x\npopulation: {patients: 5}\nexecutor:\n  type: ramping-arrival-rate\n  stages: [{duration: 5s, target: 0}]\n",
			"smoke.yaml:5: executor.stages: every rate is 0: no patient would arrive"},
		{"no patients", strings.Replace(minimal, "patients: 20", "patients: 0", 1),
			"smoke.yaml:2: population.patients: must be > 0, got 0"},
		{"bad target", minimal + "target: ftp://clinic\n",
			`smoke.yaml:5: target: want "embedded" or an http(s) base URL, got "ftp://clinic"`},
		{"unknown invariant", minimal + "invariants: [replay-list-ownership, no-bugs]\n",
			`smoke.yaml:5: invariants[1]: unknown invariant "no-bugs" (known: replay-list-ownership, replay-content-ownership, replay-access-control, live-media-isolation, recording-durability)`},
		{"expect unknown", minimal + "expect: fail\n",
			`smoke.yaml:5: expect: want "pass" or an invariant id (replay-list-ownership, replay-content-ownership, replay-access-control, live-media-isolation, recording-durability), got "fail"`},
		{"expect unchecked invariant", minimal + "invariants: [replay-access-control]\nexpect: replay-list-ownership\n",
			"smoke.yaml:6: expect: expects replay-list-ownership, which invariants does not check"},
		{"threshold unknown metric", minimal + "thresholds:\n  - {metric: latency.teleport, max: 1s}\n",
			`smoke.yaml:6: thresholds[0].metric: unknown operation "teleport" (want latency.<op> for op in book, join, switch, end, list, replay, media)`},
		{"threshold bad stat", minimal + "thresholds:\n  - metric: latency.switch\n    stat: p42\n    max: 1s\n",
			`smoke.yaml:7: thresholds[0].stat: unknown "p42" (want p50, p90, p95, p99, max)`},
		{"threshold without bound", minimal + "thresholds:\n  - metric: error_rate\n",
			"smoke.yaml:6: thresholds[0]: needs max or min"},
		{"threshold rate above 1", minimal + "thresholds:\n  - metric: error_rate\n    max: 5\n",
			`smoke.yaml:7: thresholds[0].max: "5" must be a fraction in [0,1]`},
		{"threshold bad latency", minimal + "thresholds:\n  - {metric: latency.join, max: soon}\n",
			`smoke.yaml:6: thresholds[0].max: want a duration like 500ms or a number of seconds, got "soon"`},
		{"threshold min above max", minimal + "thresholds:\n  - {metric: setup_rate, min: 5, max: 2}\n",
			`smoke.yaml:6: thresholds[0].min: 5 is above max 2`},
		{"yaml syntax", "name: x\n  population: [\n",
			"smoke.yaml:2: yaml: mapping values are not allowed in this context"},
		{"not a mapping", "- just\n- a list\n",
			"smoke.yaml:1: want a scenario (a mapping of fields), got a list"},
		{"empty", "  \n", "smoke.yaml:1: empty scenario"},
		{"two documents", minimal + "---\nname: y\n", "smoke.yaml:5: more than one YAML document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("smoke.yaml", []byte(tc.yaml))
			var verr *ValidationError
			if !errors.As(err, &verr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if got := verr.Problems[0].String(); got != tc.want {
				t.Errorf("first problem:\n got %s\nwant %s\n(all: %v)", got, tc.want, err)
			}
		})
	}
}

// Every problem is reported at once, in file order, one per line, and a field
// that could not be read is not reported twice.
func TestParseReportsEverything(t *testing.T) {
	src := `name: all
population:
  patients: -3
executor:
  type: constant-arrival-rate
  rte: 5
duration: -1s
behaviour:
  replay: 2
  call_min: five
bugs: [nope]
`
	_, err := Parse("all.yaml", []byte(src))
	want := strings.Join([]string{
		"all.yaml:3: population.patients: must be > 0, got -3",
		"all.yaml:4: executor.rate: must be > 0 for constant-arrival-rate, got 0",
		"all.yaml:6: executor.rte: unknown field (known: max_in_flight, rate, stages, type, vus)",
		"all.yaml:7: duration: must be > 0 (the bound on the arrival phase), got -1s",
		"all.yaml:9: behaviour.replay: must be in [0,1], got 2",
		`all.yaml:10: behaviour.call_min: want a duration like 90s, got "five"`,
		`all.yaml:11: bugs[0]: unknown bug "nope" (known: switch-reuse, list-scope, bola-media, cache-key, preroll-leak, switch-race, lost-on-crash, live-crosstalk)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func TestSet(t *testing.T) {
	cases := []struct {
		name  string
		sets  []string
		check func(t *testing.T, s *Scenario)
		err   string // substring of the error of ApplySets
	}{
		{"patients move the derived clinicians", []string{"population.patients=1000"}, func(t *testing.T, s *Scenario) {
			if s.Population.Patients != 1000 || s.Population.Clinicians != 100 { // smoke leaves clinicians to the default
				t.Errorf("population %+v", s.Population)
			}
		}, ""},
		{"rate", []string{"executor.rate=20"}, func(t *testing.T, s *Scenario) {
			if s.Executor.Rate != 20 {
				t.Errorf("rate %g", s.Executor.Rate)
			}
		}, ""},
		{"behaviour and duration", []string{"behaviour.switch_to_video=0.8", "duration=30s", "behaviour.call_max=9s"}, func(t *testing.T, s *Scenario) {
			if s.Behaviour.SwitchToVideo != 0.8 || s.Duration.Duration != 30*time.Second || s.Behaviour.CallMax.Duration != 9*time.Second {
				t.Errorf("%+v", s)
			}
		}, ""},
		{"bugs list", []string{"bugs=switch-reuse:1,list-scope"}, func(t *testing.T, s *Scenario) {
			if !slices.Equal(s.Bugs, []string{"switch-reuse:1", "list-scope"}) {
				t.Errorf("bugs %q", s.Bugs)
			}
		}, ""},
		{"bugs none", []string{"bugs=list-scope", "bugs=none"}, func(t *testing.T, s *Scenario) {
			if len(s.Bugs) != 0 {
				t.Errorf("bugs %q", s.Bugs)
			}
		}, ""},
		{"stages", []string{"executor.type=ramping-arrival-rate", "executor.stages=10s:5, 20s:0"}, func(t *testing.T, s *Scenario) {
			if len(s.Executor.Stages) != 2 || s.Executor.Stages[0].Target != 5 || s.Executor.Stages[1].Duration.Duration != 20*time.Second {
				t.Errorf("stages %+v", s.Executor.Stages)
			}
		}, ""},
		{"strings and bools", []string{"media=false", "target=http://127.0.0.1:8088", "seed=42", "expect=replay-access-control"}, func(t *testing.T, s *Scenario) {
			if s.Media || s.Target != "http://127.0.0.1:8088" || s.Seed != 42 || s.Expect != oracle.ReplayAccessControl {
				t.Errorf("%+v", s)
			}
		}, ""},
		{"revalidated", []string{"executor.rate=0"}, nil, "--set: executor.rate: must be > 0 for constant-arrival-rate, got 0"},
		{"revalidated bug", []string{"bugs=teleport"}, nil, `--set: bugs[0]: unknown bug "teleport"`},
		{"unknown key", []string{"executor.rat=3"}, nil, `--set executor.rat: "rat" is not a field of executor (known: max_in_flight, rate, stages, type, vus)`},
		{"unknown top key", []string{"speed=3"}, nil, `"speed" is not a field of the scenario`},
		{"section", []string{"behaviour=1"}, nil, "--set behaviour: a section; set one of its fields: behaviour.abandon"},
		{"under a leaf", []string{"duration.seconds=3"}, nil, "--set duration.seconds: duration has no fields"},
		{"thresholds", []string{"thresholds=x"}, nil, "cannot be set on the command line"},
		{"no equals", []string{"duration"}, nil, `--set "duration": want key=value`},
		{"bad number", []string{"executor.rate=fast"}, nil, `--set executor.rate=fast: want a number, got "fast"`},
		{"bad duration", []string{"duration=30"}, nil, `--set duration=30: want a duration like 90s, got "30"`},
		{"bad stage", []string{"executor.stages=10s"}, nil, `stage "10s": want duration:target`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load("smoke")
			if err != nil {
				t.Fatal(err)
			}
			err = s.ApplySets(tc.sets)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
	if err := (&Scenario{}).Set("nope=1"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key error %v is not ErrUnknownKey", err)
	}
	for _, k := range Keys() {
		if err := (&Scenario{}).Set(k + "=1"); errors.Is(err, ErrUnknownKey) {
			t.Errorf("listed key %s refused: %v", k, err)
		}
	}
}

// A scenario built in Go keeps its non-zero fields through ApplyDefaults and Set.
func TestBuiltInGo(t *testing.T) {
	s := &Scenario{Name: "go", Population: Population{Patients: 30, Clinicians: 7},
		Executor: Executor{Type: Closed, VUs: 3}, Duration: Duration{time.Second}}
	s.ApplyDefaults()
	if err := s.Set("population.patients=60"); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Population.Clinicians != 7 || s.Executor.MaxInFlight != 200 || s.Behaviour.CallMin.Duration != models.DefaultBehaviour.CallMin {
		t.Errorf("%+v", s)
	}
	// Without ApplyDefaults an empty expect still means pass.
	bare := &Scenario{Name: "bare", Population: Population{Patients: 1}, Executor: Executor{Type: Closed, MaxInFlight: 1},
		Duration: Duration{time.Second}, Behaviour: Behaviour{CallMin: Duration{time.Second}, CallMax: Duration{time.Second}}}
	if err := bare.Validate(); err != nil {
		t.Errorf("bare: %v", err)
	}
}

func TestLoadFileAndUnknown(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/mine.yaml"
	if err := writeFile(path, minimal); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil || s.Name != "mini" {
		t.Fatalf("Load(%s) = %v, %v", path, s, err)
	}
	if err := writeFile(path, minimal+"bogus: 1\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":5: bogus: unknown field") {
		t.Errorf("error %v does not name the file and line", err)
	}
	_, err = Load("no-such-scenario")
	if !errors.Is(err, ErrUnknownScenario) || !strings.Contains(err.Error(), "smoke") {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := Load(dir + "/absent.yaml"); !errors.Is(err, ErrUnknownScenario) {
		t.Errorf("absent file: %v", err)
	}
}

func TestDurationMarshalling(t *testing.T) {
	d := Duration{90 * time.Second}
	j, err := json.Marshal(d)
	if err != nil || string(j) != `"1m30s"` {
		t.Errorf("json %s, %v", j, err)
	}
	var back Duration
	if err := json.Unmarshal([]byte(`"90s"`), &back); err != nil || back != d {
		t.Errorf("json back %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`90`), &back); err == nil {
		t.Error("json number accepted as a duration")
	}
	y, err := yaml.Marshal(struct{ D Duration }{d})
	if err != nil || strings.TrimSpace(string(y)) != "d: 1m30s" {
		t.Errorf("yaml %q, %v", y, err)
	}
	var in struct{ D Duration }
	if err := yaml.Unmarshal([]byte("d: 250ms"), &in); err != nil || in.D.Duration != 250*time.Millisecond {
		t.Errorf("yaml back %v, %v", in.D, err)
	}
	// A scenario survives a JSON round trip (the summary report embeds it).
	s, _ := Load("launch-video-switch")
	j, err = json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var s2 Scenario
	if err := json.Unmarshal(j, &s2); err != nil || s2.Executor.Stages[1].Duration != s.Executor.Stages[1].Duration {
		t.Errorf("json round trip: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range Names() {
		data, _ := builtin.ReadFile("builtin/" + n + ".yaml")
		f.Add(data)
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("executor: &e {type: closed}\nbehaviour: *e\n"))
	f.Add([]byte("thresholds: [{metric: latency.join, max: 1s}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err == nil {
			if err := s.Validate(); err != nil {
				t.Fatalf("parsed scenario fails Validate: %v", err)
			}
			return
		}
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Problems) == 0 {
			t.Fatalf("error %v is not a ValidationError with problems", err)
		}
		for _, p := range verr.Problems {
			if p.File != "fuzz.yaml" || p.Line <= 0 {
				t.Fatalf("problem %+v does not name file and line", p)
			}
		}
	})
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o644) }
