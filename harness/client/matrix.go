package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
)

// MatrixVictim is someone else's consultation as a matrix round probes it:
// its id and participants (an override claims to be its patient), and once
// it ended its recording and tracks ("" and none before).
type MatrixVictim struct {
	Consultation       string
	Patient, Clinician string
	Recording          string
	Tracks             []string
}

// MatrixOwn is the prober's own recording, for the id mixes ("" to skip them).
type MatrixOwn struct {
	Recording string
}

// MatrixRound is one bounded round of the authorization matrix.
type MatrixRound struct {
	Prober driver.Session
	// Read is the victim of reads (an ended consultation with a recording);
	// Write the victim of writes, ideally a live consultation (a correct
	// target's denial leaves it untouched); either may be empty (zero
	// Consultation) and Write falls back to Read.
	Read, Write MatrixVictim
	Own         MatrixOwn
	// Start is the index of the round's first cell in the matrix's order
	// (rounds walk the matrix together), Max the requests it may send.
	Start uint64
	Max   int
}

// MatrixCell is one request the matrix can send: a route, a variant and
// the request itself.
type matrixCell struct {
	variant string
	req     driver.AuthzRequest
	victim  MatrixVictim
}

// MatrixSize is the number of cells a matrix of p has for a victim with a
// recording and a prober with one of their own: a round size that covers
// it once.
func MatrixSize(p driver.AuthzProber) int {
	v := MatrixVictim{Consultation: "c", Patient: "p", Clinician: "d", Recording: "r", Tracks: []string{"t"}}
	return len(matrixCells(p, MatrixRound{Prober: driver.Session{Token: "x"}, Read: v, Write: v, Own: MatrixOwn{Recording: "o"}}))
}

// matrixCells lists r's cells in a stable order: per route, the prober's
// own token, each other credential, each override with and without the
// token, then the id mixes. Cells whose ids the round lacks are left out.
func matrixCells(p driver.AuthzProber, r MatrixRound) []matrixCell {
	iv := p.IdentityVariation()
	var out []matrixCell
	for _, rt := range p.Routes() {
		v := r.Read
		if rt.Write && r.Write.Consultation != "" {
			v = r.Write
		}
		ids := driver.ProbeIDs{Consultation: v.Consultation, Recording: v.Recording}
		if rt.Track && len(v.Tracks) > 0 {
			ids.Track = v.Tracks[int(r.Start%uint64(len(v.Tracks)))]
		}
		if (rt.Consultation && ids.Consultation == "") || (rt.Recording && ids.Recording == "") || (rt.Track && ids.Track == "") {
			continue
		}
		if !rt.Consultation {
			ids.Consultation = "" // judged by v.Consultation, not sent
		}
		base := driver.AuthzRequest{Route: rt, As: r.Prober, Cred: driver.CredToken, IDs: ids}
		add := func(variant string, req driver.AuthzRequest) {
			out = append(out, matrixCell{variant: variant, req: req, victim: v})
		}
		add(string(driver.CredToken), base)
		for _, cr := range iv.Credentials {
			if cr == driver.CredToken {
				continue
			}
			q := base
			q.Cred = cr
			add(string(cr), q)
		}
		for _, o := range iv.Overrides {
			for _, cr := range []driver.Credential{driver.CredToken, driver.CredNone} {
				q := base
				q.Cred, q.Override, q.Claim = cr, &o, v.Patient
				add(o.String()+"+"+string(cr), q)
			}
		}
		// Id mixes: the prober's own recording beside a harvested id.
		if r.Own.Recording != "" && r.Own.Recording != v.Recording {
			switch {
			case rt.Track && rt.Recording && ids.Track != "":
				q := base
				q.IDs = driver.ProbeIDs{Recording: r.Own.Recording, Track: ids.Track}
				add("own-replay+foreign-track", q)
			case rt.Consultation && !rt.Write && !rt.Recording:
				q := base
				q.IDs = driver.ProbeIDs{Consultation: ids.Consultation, Recording: r.Own.Recording}
				add("foreign-consultation+own-recording", q)
			}
		}
	}
	return out
}

// MatrixResult counts one round.
type MatrixResult struct {
	Sent, Unanswered int
}

// Matrix runs one bounded round of the authorization matrix as r.Prober,
// who takes no part in the victims' consultations: at most r.Max requests,
// from cell r.Start on (wrapping), each judged by the oracle
// (CheckAuthz); the round ends at the first request without an answer
// or while the target is down (Hooks.TargetDown). A target whose driver is not an AuthzProber runs no matrix:
// the oracle is told so (the summary says "not run") and ErrNoMatrix is
// returned. Requests that got no answer are counted, not judged.
func (c *Client) Matrix(ctx context.Context, r MatrixRound) (MatrixResult, error) {
	p, ok := c.target.(driver.AuthzProber)
	if !ok {
		c.or.AuthzDeclared(false, fmt.Sprintf("the target's driver (%T) declares no authorization matrix (driver.AuthzProber)", c.target))
		return MatrixResult{}, ErrNoMatrix
	}
	c.or.AuthzDeclared(true, "")
	cells := matrixCells(p, r)
	if len(cells) == 0 || r.Max <= 0 {
		return MatrixResult{}, nil
	}
	identity := string(r.Prober.Role)
	var res MatrixResult
	var errs []error
	n := min(r.Max, len(cells))
	for k := range n {
		// A target the harness took down answers nothing: the rest of
		// the round would only be counted as not judged.
		if ctx.Err() != nil || c.hooks.TargetDown() {
			break
		}
		cell := cells[(int(r.Start%uint64(len(cells)))+k)%len(cells)]
		ans, err := p.ProbeRequest(ctx, cell.req)
		res.Sent++
		stop := false
		if err != nil && ans.Status == 0 {
			res.Unanswered++
			errs = append(errs, err)
			if c.hooks.StoppedByUs(ctx) {
				break // cut short by the caller: not judged either way
			}
			// Unanswered once: counted as not judged, and the round
			// ends (more requests to an unreachable target say nothing).
			stop = true
		}
		c.or.CheckAuthz(oracle.AuthzProbe{
			Route: cell.req.Route.Name, Identity: identity, Variant: cell.variant, Write: cell.req.Route.Write,
			Prober: r.Prober.ID, Consultation: cell.victim.Consultation,
			Recording: cell.req.IDs.Recording, Track: cell.req.IDs.Track, Claim: cell.req.Claim,
			Status: ans.Status, Bytes: ans.Bytes, At: time.Now(),
		})
		if stop {
			break
		}
	}
	return res, errors.Join(errs...)
}

// ErrNoMatrix: the target's driver declares no authorization matrix.
var ErrNoMatrix = errors.New("target declares no authorization matrix")
