package repro

import (
	"bytes"
	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/history"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/trace"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/scenarios"
	"strings"
	"testing"
	"time"
)

// crashRun is a run that logged one call of p with c: both joined, the
// clinic crashed (a real window of rec), only p rejoined, the end's answer
// was lost (a 502, then 409 to the retry), then p fetched the recording.
// after shifts every logged op: 10s puts the whole call after the crash.
func crashRun(t *testing.T, rt *chaos.Runtime, crashAt time.Time, after time.Duration) (*Run, oracle.Violation) {
	t.Helper()
	ledger := models.NewLedger()
	ledger.AddUser("p", models.Patient)
	ledger.AddUser("c", models.Clinician)
	cons := models.Consultation{ID: "k", AppointmentID: "a", Patient: "p", Clinician: "c"}
	if err := ledger.AddConsultation(cons); err != nil {
		t.Fatal(err)
	}
	if err := ledger.BindRecording("k", "rec"); err != nil {
		t.Fatal(err)
	}
	r := &Run{Scenario: &scenarios.Scenario{Name: "crash", Seed: 7, Target: "embedded", Bugs: []string{"lost-on-crash:1"}}, Target: "embedded", Ledger: ledger, History: &history.Log{}}
	for _, w := range rt.Windows() {
		if rt.RestartsTarget(w) {
			r.TargetFaults = append(r.TargetFaults, w)
		}
	}
	at := func(s float64) time.Time { return crashAt.Add(after + time.Duration(s*float64(time.Second))) }
	log := func(op driver.Op, user, subject string, from, to float64, status int) {
		r.History.Add(ledger, driver.Observation{Op: op, User: user, Subject: subject, Start: at(from), End: at(to), Status: status})
	}
	log(driver.OpBook, "p", "c", -5, -4.9, 201)
	log(driver.OpJoin, "p", "k", -4.8, -4.7, 200)
	log(driver.OpJoin, "c", "k", -4.8, -4.6, 200)
	log(driver.OpJoin, "p", "k", 0.1, 0.2, 502) // during the restart
	log(driver.OpJoin, "p", "k", 0.5, 0.6, 200) // the rejoin
	log(driver.OpEnd, "p", "k", 2, 2.1, 502)
	log(driver.OpEnd, "p", "k", 2.2, 2.3, 409)
	log(driver.OpConsultation, "p", "k", 2.4, 2.5, 200)
	log(driver.OpReplay, "p", "rec", 3, 3.1, 200)
	log(driver.OpMedia, "p", "rec", 3.2, 3.3, 200)
	v := oracle.Violation{Invariant: oracle.RecordingDurability, Viewer: "p", Owner: "p", Consultation: "k", Recording: "rec", At: at(4)}
	return r, v
}

func opStrings(tr *trace.Trace) []string {
	var out []string
	for _, op := range tr.Ops {
		out = append(out, op.String())
	}
	return out
}

// buildTrace puts the run's crash between the ops that completed before it
// and those after; the rejoin sends again, the participant that did not
// rejoin sends nothing more, and the end whose answer the crash lost ends
// the consultation. A crash before every consultation of the trace is left
// out.
func TestBuildTraceInsertsCrash(t *testing.T) {
	rt, _, _, err := chaos.NewRuntime(chaos.RuntimeConfig{})
	rec := rt.Recorder()
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Begin("clinic-crash", map[string]string{chaos.ParamKind: chaos.KindClinicCrash}, "at 5s")
	crashAt := time.Now()
	rec.End(id, nil)
	r, v := crashRun(t, rt, crashAt, 0)
	tr, err := r.BuildTrace(v, false, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"book p1 with c1 k1",
		"join p1 k1", "send_audio p1 k1 n=25", "join c1 k1", "send_audio c1 k1 n=25",
		"crash_target",
		"join p1 k1", "send_audio p1 k1 n=25",
		"send_audio p1 k1 n=25", // the round before the end: c1 never rejoined
		"end p1 k1",
		"fetch p1 k1",
	}
	if got := opStrings(tr); strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if tr.Ops[5].User != "" || len(tr.Ops[5].After) != 1 || tr.Ops[5].After[0] != 4 || tr.Ops[6].After[0] != 5 {
		t.Errorf("crash op %+v, next %+v: want a chained op without a user", tr.Ops[5], tr.Ops[6])
	}
	var b bytes.Buffer
	if err := tr.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := trace.Parse(&b); err != nil {
		t.Errorf("built trace does not parse: %v", err)
	}
	// The same call logged after the crash: nothing was in progress.
	r, v = crashRun(t, rt, crashAt, 10*time.Second)
	tr, err = r.BuildTrace(v, false, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range tr.Ops {
		if op.Op.Target() {
			t.Errorf("a crash before the consultation was booked went into the trace: %q", opStrings(tr))
		}
	}
	// A URL target gets no target ops: it has no Control, a trace cannot
	// crash it, and the run hands over no target faults for it.
	r, v = crashRun(t, rt, crashAt, 0)
	r.Target, r.TargetFaults = "http://127.0.0.1:1", nil
	if tr, err = r.BuildTrace(v, false, false); err != nil || strings.Contains(strings.Join(opStrings(tr), ";"), "crash_target") {
		t.Errorf("URL target: %q, %v", opStrings(tr), err)
	}
}
