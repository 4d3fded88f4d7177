package history

import (
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/models"
	"testing"
	"time"
)

func TestOpRingKeepsTheLastEntries(t *testing.T) {
	r := &ring{cap: 3}
	for i := range 5 {
		r.add(Entry{Seq: uint64(i)})
	}
	var got []uint64
	for _, e := range r.entries() {
		got = append(got, e.Seq)
	}
	if len(got) != 3 || got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Errorf("ring entries %v, want [2 3 4]", got)
	}
}

func TestOpLogBoundsAndSkipsUserless(t *testing.T) {
	var l Log
	ledger := models.NewLedger()
	ledger.AddUser("c", models.Clinician)
	ledger.AddUser("p", models.Patient)
	now := time.Now()
	l.Add(ledger, driver.Observation{Op: driver.OpRegister, Subject: "patient", Start: now, End: now})
	for range 2 * PatientCap {
		l.Add(ledger, driver.Observation{Op: driver.OpList, User: "p", Start: now, End: now, Status: 200})
		l.Add(ledger, driver.Observation{Op: driver.OpList, User: "c", Start: now, End: now, Status: 200})
	}
	if n := len(l.Of("p")); n != PatientCap {
		t.Errorf("patient keeps %d ops, want %d", n, PatientCap)
	}
	if n := len(l.Of("c")); n != 2*PatientCap {
		t.Errorf("clinician keeps %d ops, want all %d", n, 2*PatientCap)
	}
	if n := l.nUsers.Load(); n != 2 {
		t.Errorf("users logged %d, want 2 (register has no user)", n)
	}
	if e := l.Of("p"); e[len(e)-1].Seq != l.seq.Load()-1 || !e[0].OK {
		t.Errorf("last patient entry seq %d (log seq %d), ok %v", e[len(e)-1].Seq, l.seq.Load(), e[0].OK)
	}
}

// Two users whose tags collide keep separate logs.
func TestOpLogTagCollision(t *testing.T) {
	var l Log
	ledger := models.NewLedger()
	now := time.Now()
	tag := models.TagOf("p")
	s := l.shard(tag)
	s.users = map[uint64]*ring{tag: {user: "x", cap: PatientCap}} // "x" as if it hashed like "p"
	l.Add(ledger, driver.Observation{Op: driver.OpList, User: "p", Subject: "p", Start: now, End: now, Status: 200})
	if got := l.Of("p"); len(got) != 1 || got[0].Subject != "p" {
		t.Errorf("p's log = %+v, want its one list", got)
	}
	if got := s.users[tag]; got.user != "x" || len(got.buf) != 0 {
		t.Errorf("x's ring was written: %+v", got)
	}
}
