package models

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func testLedger(t *testing.T) *Ledger {
	t.Helper()
	l := NewLedger()
	for _, u := range []string{"p1", "p2"} {
		l.AddUser(u, Patient)
	}
	l.AddUser("c1", Clinician)
	for _, c := range []Consultation{{ID: "k1", Patient: "p1", Clinician: "c1"}, {ID: "k2", Patient: "p2", Clinician: "c1"}} {
		if err := l.AddConsultation(c); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestLedgerLookups(t *testing.T) {
	l := testLedger(t)
	if r, ok := l.Role("c1"); !ok || r != Clinician {
		t.Errorf("Role(c1) = %v, %v", r, ok)
	}
	if _, ok := l.Role("nobody"); ok {
		t.Error("Role(nobody) found")
	}
	if c, ok := l.ConsultationByTag(TagOf("k2")); !ok || c.Patient != "p2" {
		t.Errorf("ConsultationByTag(k2) = %+v, %v", c, ok)
	}
	if _, ok := l.ConsultationByTag(TagOf("k9")); ok {
		t.Error("unknown consultation tag resolved")
	}
	if id, ok := l.UserByTag(TagOf("p1")); !ok || id != "p1" {
		t.Errorf("UserByTag(p1) = %q, %v", id, ok)
	}
	c, _ := l.Consultation("k1")
	c.Patient = "mallory" // a copy: the ledger stays as booked
	if c2, _ := l.Consultation("k1"); c2.Patient != "p1" {
		t.Error("Consultation returned a reference into the ledger")
	}
}

func TestLedgerAddConsultationErrors(t *testing.T) {
	l := testLedger(t)
	cases := []struct {
		name string
		c    Consultation
		want error
	}{
		{"unknown patient", Consultation{ID: "k3", Patient: "ghost", Clinician: "c1"}, ErrUnknownUser},
		{"unknown clinician", Consultation{ID: "k3", Patient: "p1", Clinician: "ghost"}, ErrUnknownUser},
		{"id reused for other participants", Consultation{ID: "k1", Patient: "p2", Clinician: "c1"}, ErrConsultationConflict},
		{"same booking again", Consultation{ID: "k1", Patient: "p1", Clinician: "c1"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := l.AddConsultation(tc.c)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if c, _ := l.Consultation("k1"); c.Patient != "p1" {
		t.Errorf("conflicting booking rewrote k1: %+v", c)
	}
	if _, ok := l.Consultation("k3"); ok {
		t.Error("failed booking was recorded")
	}
}

func TestLedgerBindRecording(t *testing.T) {
	l := testLedger(t)
	steps := []struct {
		cid, rid string
		want     error
	}{
		{"k1", "r1", nil},
		{"k1", "r1", nil}, // idempotent
		{"k2", "r1", ErrRecordingConflict},
		{"k9", "r9", ErrUnknownConsultation},
		{"k1", "r1b", nil}, // a second recording for k1 (a lying target): allowed, first stays
	}
	for _, s := range steps {
		if err := l.BindRecording(s.cid, s.rid); !errors.Is(err, s.want) {
			t.Errorf("BindRecording(%s, %s) = %v, want %v", s.cid, s.rid, err, s.want)
		}
	}
	if c, ok := l.RecordingConsultation("r1"); !ok || c.ID != "k1" {
		t.Errorf("r1 -> %+v, %v; want k1 (conflict must not rebind)", c, ok)
	}
	if r, ok := l.RecordingOf("k1"); !ok || r != "r1" {
		t.Errorf("RecordingOf(k1) = %q, %v; want r1", r, ok)
	}
	if _, ok := l.RecordingOf("k2"); ok {
		t.Error("k2 has a recording")
	}
}

func TestLedgerMayView(t *testing.T) {
	l := testLedger(t)
	if err := l.BindRecording("k1", "r1"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user, rid      string
		allowed, known bool
	}{
		{"p1", "r1", true, true},
		{"c1", "r1", true, true},
		{"p2", "r1", false, true},
		{"nobody", "r1", false, true},
		{"p1", "r-unbound", false, false},
	}
	for _, tc := range cases {
		a, k := l.MayView(tc.user, tc.rid)
		if a != tc.allowed || k != tc.known {
			t.Errorf("MayView(%s, %s) = %v, %v; want %v, %v", tc.user, tc.rid, a, k, tc.allowed, tc.known)
		}
	}
}

func TestFrameBelongs(t *testing.T) {
	c := Consultation{ID: "k1", Patient: "p1", Clinician: "c1"}
	cases := []struct {
		name string
		t    Tag
		want bool
	}{
		{"patient", Tag{Consultation: TagOf("k1"), Sender: TagOf("p1")}, true},
		{"clinician", Tag{Consultation: TagOf("k1"), Sender: TagOf("c1")}, true},
		{"other consultation", Tag{Consultation: TagOf("k2"), Sender: TagOf("p1")}, false},
		{"stranger in this consultation", Tag{Consultation: TagOf("k1"), Sender: TagOf("p2")}, false},
		{"zero tag", Tag{}, false},
	}
	for _, tc := range cases {
		if got := FrameBelongs(c, tc.t); got != tc.want {
			t.Errorf("%s: FrameBelongs = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMayReceiveLive(t *testing.T) {
	c := Consultation{ID: "k1", Patient: "p1", Clinician: "c1"}
	tg := func(cons, sender string) Tag { return Tag{Consultation: TagOf(cons), Sender: TagOf(sender)} }
	cases := []struct {
		name   string
		viewer string
		t      Tag
		want   bool
	}{
		{"patient from clinician", "p1", tg("k1", "c1"), true},
		{"clinician from patient", "c1", tg("k1", "p1"), true},
		{"echo to patient", "p1", tg("k1", "p1"), false},
		{"echo to clinician", "c1", tg("k1", "c1"), false},
		{"other call", "p1", tg("k2", "c1"), false},
		{"non-participant", "p2", tg("k1", "c1"), false},
	}
	for _, tc := range cases {
		if got := MayReceiveLive(c, tc.viewer, tc.t); got != tc.want {
			t.Errorf("%s: MayReceiveLive = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Concurrent writers and readers (run with -race); every booking and binding
// must be there afterwards.
func TestLedgerConcurrent(t *testing.T) {
	l := NewLedger()
	l.AddUser("doc", Clinician)
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, k, r := fmt.Sprintf("p%d", i), fmt.Sprintf("k%d", i), fmt.Sprintf("r%d", i)
			l.AddUser(p, Patient)
			if err := l.AddConsultation(Consultation{ID: k, Patient: p, Clinician: "doc"}); err != nil {
				t.Error(err)
				return
			}
			for range 10 {
				_ = l.BindRecording(k, r)
				l.MayView(p, r)
				l.ConsultationByTag(TagOf(k))
				l.UserByTag(TagOf(p))
				// Everyone races to claim recording "contested" for their consultation.
				_ = l.BindRecording(k, "contested")
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if a, k := l.MayView(fmt.Sprintf("p%d", i), fmt.Sprintf("r%d", i)); !a || !k {
			t.Errorf("p%d may not view r%d", i, i)
		}
	}
	c, ok := l.RecordingConsultation("contested")
	if !ok {
		t.Fatal("contested unbound")
	}
	// The contested id went to exactly one consultation.
	viewers := 0
	for i := range n {
		if a, _ := l.MayView(fmt.Sprintf("p%d", i), "contested"); a {
			viewers++
		}
	}
	if viewers != 1 || !c.Has("doc") {
		t.Errorf("contested viewable by %d patients, want 1 (bound to %s)", viewers, c.ID)
	}
}
