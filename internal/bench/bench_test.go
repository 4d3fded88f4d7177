package bench

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSpreadOf(t *testing.T) {
	s, ok := spreadOf([]float64{3, math.NaN(), 1, 2, math.Inf(1)})
	if !ok || s.Median != 2 || s.Min != 1 || s.Max != 3 || len(s.Runs) != 3 {
		t.Errorf("spreadOf = %+v, %t; want median 2 of 1..3 over 3 runs", s, ok)
	}
	if s, ok := spreadOf([]float64{4, 1}); !ok || s.Median != 2.5 {
		t.Errorf("even median = %+v", s)
	}
	if _, ok := spreadOf([]float64{math.NaN()}); ok {
		t.Error("spreadOf of no finite runs reported ok")
	}
}

// Every scenario the suite builds must pass the loader's validation.
func TestScenariosValid(t *testing.T) {
	for name, y := range map[string]string{
		"api":    apiScenario(200, 1000, 5*time.Second),
		"media":  mediaScenario(100, 5*time.Second, 15*time.Second),
		"users":  usersScenario("u", 20000, 10*time.Second, 6*time.Second, false, 200*time.Millisecond),
		"mixedm": usersScenario("m", 200, 90*time.Second, mixedMediaThink, true, mixedCallLen(90*time.Second)),
	} {
		if _, err := parseScenario(name, y); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRunRejectsUnknownSection(t *testing.T) {
	_, err := Run(context.Background(), Config{Self: []string{"x"}, OutDir: t.TempDir(), Only: []string{"nope"}})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("err = %v, want one naming the section", err)
	}
	if _, err := Run(context.Background(), Config{OutDir: t.TempDir()}); err == nil {
		t.Error("no Self: want an error")
	}
}

// The floor section alone runs in a blink and produces the figures, the
// goals and a table with nulls for what did not run.
func TestFloorOnlyReport(t *testing.T) {
	dir := t.TempDir()
	rep, err := Run(context.Background(), Config{Quick: true, Self: []string{"unused"}, OutDir: dir, Only: []string{"floor"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.LoopbackFloorPPS == nil || *rep.LoopbackFloorPPS <= 0 || rep.LoopbackFloorConsultations == nil {
		t.Errorf("floor figures missing: %+v", rep.Floor)
	}
	if rep.MediaConsultations != nil || rep.K6ClientCPUusPerOp != nil {
		t.Error("figures of sections that did not run are not null")
	}
	var buf bytes.Buffer
	rep.WriteTable(&buf)
	for _, want := range []string{"loopback_floor_pps", "k6_client_cpu_us_per_op", "null", "detect_median_s"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if err := rep.WriteJSON(dir + "/b.json"); err != nil {
		t.Error(err)
	}
	if rep.Machine.Cores <= 0 || rep.Machine.GoVersion == "" {
		t.Errorf("machine = %+v", rep.Machine)
	}
}

// A scale figure whose users mostly failed does not meet its goal, however
// many were active at once.
func TestScaleGoalNeedsServedUsers(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		failed *float64
		met    bool
	}{{f(0.2), true}, {f(74.8), false}, {nil, false}} {
		s := &suite{rep: &Report{HTTPUsers: f(20000), HTTPUsersFailedPct: c.failed, Notes: map[string]string{}}, cfg: Config{}}
		s.judge()
		for _, g := range s.rep.Goals {
			if g.Name == "http_users" && g.Met != c.met {
				t.Errorf("failed %v: met = %v, want %v (note %q)", c.failed, g.Met, c.met, g.Note)
			}
		}
	}
	var b strings.Builder
	s := &suite{rep: &Report{HTTPUsers: f(20000), HTTPUsersFailedPct: f(74.8), Notes: map[string]string{}}}
	s.judge()
	s.rep.WriteTable(&b)
	if !strings.Contains(b.String(), "NO: 74.8% of lifecycles failed") {
		t.Errorf("table does not say why:\n%s", b.String())
	}
}

// The mixed goal needs its 2% in calls at the peak: 10,000 users with the
// media calls spread over the run (43 of 205 at once) does not meet it.
func TestMixedGoalNeedsMediaAtOnce(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		pct  *float64
		met  bool
		note string
	}{{f(2.02), true, ""}, {f(0.42), false, "media calls at once 0.42% of users"}, {nil, false, "media calls at once null"}} {
		s := &suite{rep: &Report{MixedUsers: f(10102), MixedUsersFailedPct: f(0), MixedMediaPct: c.pct, Notes: map[string]string{}}}
		s.judge()
		for _, g := range s.rep.Goals {
			if g.Name != "mixed_users" {
				continue
			}
			if g.Met != c.met || !strings.Contains(g.Note, c.note) {
				t.Errorf("media %v: met = %v (note %q), want %v with %q", c.pct, g.Met, g.Note, c.met, c.note)
			}
		}
	}
}

// A media call of the mixed run outlasts the ramp, so the first to join is
// still in its call when the last joins.
func TestMixedCallsOverlap(t *testing.T) {
	for _, ramp := range []time.Duration{4 * time.Second, 90 * time.Second} {
		if l := mixedCallLen(ramp); l <= ramp+2*mixedMediaThink {
			t.Errorf("ramp %v: call %v ends before the last media user joins", ramp, l)
		}
	}
}
