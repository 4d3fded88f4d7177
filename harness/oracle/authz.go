package oracle

import (
	"fmt"
	"sync"
	"time"

	"github.com/telechaos/telechaos/models"
)

// AuthzProbe is one request of the authorization matrix as the oracle
// judges it: who asked, how, on which route, and what the target answered.
type AuthzProbe struct {
	Route, Identity, Variant string
	Write                    bool
	// Prober is the user whose session (or whose token, varied) asked.
	Prober string
	// Consultation is the foreign consultation the request reaches: the
	// ledger must show the prober takes no part in it, else the request is
	// no probe and is ignored.
	Consultation string
	// The ids sent, for the evidence.
	Recording, Track string
	// Claim is the user id an identity override carried ("" for none).
	Claim         string
	Status, Bytes int
	At            time.Time
}

// maxAuthzCells bounds the tally (routes x identities x variants come from
// the driver; a long list must not grow the oracle without bound).
const maxAuthzCells = 1024

type authzTally struct {
	mu       sync.Mutex
	declared bool   // the target's driver declared a matrix
	notRun   string // why the matrix did not run ("" if it did or nobody said)
	cells    map[[3]string]*models.AuthzCell
	order    [][3]string
}

// AuthzDeclared records whether the target's driver declares the matrix
// (AuthzProber); when it does not, reason says why the matrix did not run,
// and the summary says "not run", never passed.
func (o *Oracle) AuthzDeclared(declared bool, reason string) {
	t := &o.authz
	t.mu.Lock()
	defer t.mu.Unlock()
	if declared {
		t.declared = true
		return
	}
	if t.notRun == "" {
		t.notRun = reason
	}
}

// CheckAuthz judges one matrix request (replay-access-control): on a
// consultation the prober takes no part in, a 2xx, or any bytes, is a
// leak, whatever the route, credential or override; a 4xx without bytes is
// a denial; no answer, a redirect (never followed) or a 5xx is not judged.
// A write (join, switch, end) is judged the same way: a foreign write the
// target accepted is a violation even if it did no visible harm.
func (o *Oracle) CheckAuthz(p AuthzProbe) {
	c, ok := o.l.Consultation(p.Consultation)
	if !ok || c.Has(p.Prober) {
		return // unattributable, or the prober's own: no probe
	}
	leaked := (p.Status >= 200 && p.Status < 300) || p.Bytes > 0
	denied := !leaked && p.Status >= 400 && p.Status < 500
	o.tally(p, leaked, denied)
	what := fmt.Sprintf("%s (identity %s, variant %s)", p.Route, p.Identity, p.Variant)
	if !leaked && !denied {
		reason := "probe unanswered"
		switch {
		case p.Status >= 300 && p.Status < 400:
			reason = "probe redirected (not followed)"
		case p.Status >= 500:
			reason = "probe answered 5xx"
		case p.Status != 0:
			reason = "probe answered 1xx"
		}
		o.NotJudged(ReplayAccessControl, reason, fmt.Sprintf("%s by %s on consultation %s got status %d", what, p.Prober, c.ID, p.Status))
		return
	}
	o.probes.Add(1)
	o.Judged(ReplayAccessControl, 1)
	if !leaked {
		return
	}
	subject := "authz:" + p.Route + "|" + p.Identity + "|" + p.Variant + "|" + c.ID
	o.report(ReplayAccessControl, p.Prober, subject, nil, func() Violation {
		ids := "consultation " + p.Consultation
		if p.Recording != "" {
			ids += ", recording " + p.Recording
		}
		if p.Track != "" {
			ids += ", track " + p.Track
		}
		claim := ""
		if p.Claim != "" {
			claim = ", claiming to be " + p.Claim
		}
		verb := "read"
		if p.Write {
			verb = "wrote (accepted)"
		}
		return Violation{
			Owner: ownerFor(c, p.Prober), Owners: participants(c), Recording: p.Recording, Consultation: c.ID, Track: p.Track, At: p.At,
			Detail: fmt.Sprintf("authorization matrix: %s, not a participant, %s %s on %s%s of consultation %s (between %s and %s) and got status %d with %d bytes",
				p.Prober, verb, what, ids, claim, c.ID, c.Patient, c.Clinician, p.Status, p.Bytes),
		}
	})
}

func (o *Oracle) tally(p AuthzProbe, leaked, denied bool) {
	t := &o.authz
	k := [3]string{p.Route, p.Identity, p.Variant}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cells[k]
	if c == nil {
		if len(t.cells) >= maxAuthzCells {
			k = [3]string{"other", "other", "other"}
			c = t.cells[k]
		}
		if c == nil {
			if t.cells == nil {
				t.cells = map[[3]string]*models.AuthzCell{}
			}
			c = &models.AuthzCell{Route: k[0], Identity: k[1], Variant: k[2]}
			t.cells[k] = c
			t.order = append(t.order, k)
		}
	}
	c.Tried++
	switch {
	case leaked:
		c.Leaked++
	case denied:
		c.Denied++
	default:
		c.NotJudged++
	}
}

// AuthzMatrix is the matrix's tally so far; nil when no target declared
// (or failed to declare) one and nothing was probed.
func (o *Oracle) AuthzMatrix() *models.AuthzMatrix {
	t := &o.authz
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.declared && t.notRun == "" && len(t.cells) == 0 {
		return nil
	}
	m := &models.AuthzMatrix{Status: models.AuthzRun}
	switch {
	case !t.declared && len(t.cells) == 0:
		m.Status, m.Reason = models.AuthzNotRun, t.notRun
	case len(t.cells) == 0:
		m.Reason = "declared, but no probe found another user's consultation: nothing was tried"
	}
	for _, k := range t.order {
		m.Cells = append(m.Cells, *t.cells[k])
	}
	m.SortCells()
	return m
}
