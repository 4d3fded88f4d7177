package load

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/telechaos/telechaos/harness/client"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/models"
)

// MatrixPerRound bounds the requests of one authorization-matrix round: a
// prober sends this many cells, and the rounds of a run walk the matrix
// together from a shared cursor, so a run of a few dozen probers covers
// every route x identity x variant (about a hundred cells for the HTTP
// driver) without any one user sending them all.
const MatrixPerRound = 16

// livePool holds the consultations booked and not yet ended: the victims
// of the matrix's writes. A correct target denies a foreign join, switch
// or end without touching the call; one that accepts it is judged by the
// write's status (and the victim's own checks see the harm).
type livePool struct {
	mu    sync.Mutex
	m     map[string]models.Consultation
	order []string
}

const livePoolSize = 64

func (p *livePool) add(c models.Consultation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]models.Consultation{}
	}
	if len(p.order) >= livePoolSize {
		delete(p.m, p.order[0])
		p.order = p.order[1:]
	}
	p.m[c.ID] = c
	p.order = append(p.order, c.ID)
}

func (p *livePool) remove(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[id]; !ok {
		return
	}
	delete(p.m, id)
	for i, x := range p.order {
		if x == id {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}

// pick chooses a live consultation user takes no part in.
func (p *livePool) pick(x uint64, user string) (models.Consultation, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.order)
	for k := range n {
		c := p.m[p.order[(int(x%uint64(n))+k)%n]]
		if !c.Has(user) {
			return c, true
		}
	}
	return models.Consultation{}, false
}

// matrix has s run one bounded round of the authorization matrix against a
// recording harvested from another user's consultation (reads, and writes
// when no live one is at hand) and a live consultation (writes); own is
// s's own recording for the id mixes ("" for none).
func (u *Users) matrix(ctx context.Context, cl *client.Client, s driver.Session, own string, pick uint64) {
	pt, ok := u.probes().pick(pick, s.ID)
	if !ok {
		// Nothing to probe yet; the client still tells the oracle whether
		// the target declares a matrix at all.
		_, _ = cl.Matrix(ctx, client.MatrixRound{Prober: s})
		return
	}
	r := client.MatrixRound{
		Prober: s,
		Read:   client.MatrixVictim{Consultation: pt.consultation, Patient: pt.patient, Clinician: pt.clinician, Recording: pt.recording, Tracks: pt.tracks},
		Own:    client.MatrixOwn{Recording: own},
		Start:  u.cursorOf(s.Role).Add(MatrixPerRound) - MatrixPerRound,
		Max:    MatrixPerRound,
	}
	if c, ok := u.live.pick(pick>>16, s.ID); ok {
		r.Write = client.MatrixVictim{Consultation: c.ID, Patient: c.Patient, Clinician: c.Clinician}
	}
	// Unanswered requests are counted as not judged by the oracle's tally;
	// a target without a matrix is reported "not run" by the client.
	_, _ = cl.Matrix(ctx, r)
}

// cursorOf is the matrix cursor of role's probers: each role walks the
// whole matrix on its own, whatever the interleaving of rounds.
func (u *Users) cursorOf(role models.Role) *atomic.Uint64 {
	if role == models.Clinician {
		return &u.matrixCursor[1]
	}
	return &u.matrixCursor[0]
}
