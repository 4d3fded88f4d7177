package load

import (
	"fmt"
	"testing"

	"github.com/telechaos/telechaos/models"
)

func TestLivePoolPicksForeignAndBounded(t *testing.T) {
	var p livePool
	p.add(models.Consultation{ID: "c1", Patient: "pa", Clinician: "d"})
	p.add(models.Consultation{ID: "c2", Patient: "pb", Clinician: "d"})
	for x := range uint64(4) {
		c, ok := p.pick(x, "pa")
		if !ok || c.ID != "c2" {
			t.Fatalf("pick %d for pa: %+v %v, want c2", x, c, ok)
		}
	}
	if _, ok := p.pick(0, "d"); ok {
		t.Fatal("d takes part in every live consultation, yet got one")
	}
	p.remove("c2")
	p.remove("c2") // twice: harmless
	if _, ok := p.pick(0, "pa"); ok {
		t.Fatal("picked an ended consultation")
	}
	for i := range 3 * livePoolSize {
		p.add(models.Consultation{ID: fmt.Sprint("x", i), Patient: "p", Clinician: "q"})
	}
	if len(p.m) != livePoolSize || len(p.order) != livePoolSize {
		t.Fatalf("pool holds %d/%d, want %d", len(p.m), len(p.order), livePoolSize)
	}
}

func TestMatrixCursorPerRole(t *testing.T) {
	var u Users
	u.cursorOf(models.Patient).Add(MatrixPerRound)
	if u.cursorOf(models.Clinician).Load() != 0 || u.cursorOf(models.Patient).Load() != MatrixPerRound {
		t.Fatal("roles share a cursor")
	}
}
