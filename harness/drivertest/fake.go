// Package drivertest is the driver kit's test side, in the spirit of
// testing/fstest and golang.org/x/net/nettest:
//
//   - Run (and Check, for the CLI's telechaos conform) is the conformance
//     suite: every clause of the target contract the oracle relies on,
//     exercised against a driver.Target with real WebRTC calls through
//     harness/client, each clause a named subtest that fails naming the
//     request and the answer. See docs/extending.md.
//   - Fake is a shared in-memory driver.Target for media-free tests: the
//     target contract (docs/api.md) without HTTP or WebRTC, enforcing
//     ownership as the reference clinic does, with knobs that plant the
//     catalogue's access bugs so oracle and harness tests have something to
//     catch. Join and SwitchVideo always fail (no media); a finished
//     consultation's recording has no tracks, so FetchMedia is denied to
//     everyone. (It does not pass the conformance suite: it has no media.)
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/models"
)

// ErrNoMedia is what Join and SwitchVideo answer: the fake carries no media.
var ErrNoMedia = errors.New("drivertest: no media")

// Fake is an in-memory target. The zero value is not usable: call New. Set
// the knobs before the first call; the methods are safe for concurrent use.
type Fake struct {
	// LeakList lists every finished recording to every caller (the
	// list-scope class of bug: replay-list-ownership must catch it).
	LeakList bool
	// BOLA lets any valid token read any consultation and replay (the
	// bola-media class: replay-access-control must catch it).
	BOLA bool
	// Down makes every operation and the health check unreachable.
	Down bool
	// EndFails finishes the call but answers End with a 500.
	EndFails bool
	// EndDelay holds every End this long (or until its context ends).
	EndDelay time.Duration

	obs driver.Observer

	mu       sync.Mutex
	n        int
	users    map[string]driver.Session // token -> session
	byID     map[string]driver.Session
	consults map[string]*consultation // consultation id -> it
	recs     map[string]*consultation // recording id -> its consultation
	booked   []*consultation          // in booking order
	ends     int
}

type consultation struct {
	id, rid, patient, clinician string
	ended                       bool
}

// New returns an empty target reporting every operation to obs (nil: none).
func New(obs driver.Observer) *Fake {
	return &Fake{obs: obs, users: map[string]driver.Session{}, byID: map[string]driver.Session{},
		consults: map[string]*consultation{}, recs: map[string]*consultation{}}
}

var _ driver.Target = (*Fake)(nil)

// Ends counts the consultations End finished (with EndFails too).
func (f *Fake) Ends() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ends
}

func (f *Fake) note(op driver.Op, user, subject string, start time.Time, status int, err error) {
	if f.obs != nil {
		f.obs(driver.Observation{Op: op, User: user, Subject: subject, Start: start, End: time.Now(), Status: status, Err: err})
	}
}

// deny records and returns a non-2xx answer.
func (f *Fake) deny(op driver.Op, user, subject string, start time.Time, code int, errCode string) error {
	err := &driver.StatusError{Op: op, Code: code, ErrCode: errCode}
	f.note(op, user, subject, start, code, err)
	return err
}

// down records and returns an unreachable target's error, if Down.
func (f *Fake) down(op driver.Op, user, subject string, start time.Time) error {
	if !f.Down {
		return nil
	}
	err := fmt.Errorf("%s: %w", op, driver.ErrUnreachable)
	f.note(op, user, subject, start, 0, err)
	return err
}

func (f *Fake) id(prefix string) string { f.n++; return fmt.Sprintf("%s_%04d", prefix, f.n) }

// caller is the session behind s's token; f.mu held.
func (f *Fake) caller(s driver.Session) (driver.Session, bool) {
	u, ok := f.users[s.Token]
	return u, ok && s.Token != ""
}

func (c *consultation) has(user string) bool { return c.patient == user || c.clinician == user }

func (f *Fake) Register(ctx context.Context, role models.Role) (driver.Session, error) {
	st := time.Now()
	if err := f.down(driver.OpRegister, "", "", st); err != nil {
		return driver.Session{}, err
	}
	if role != models.Patient && role != models.Clinician {
		return driver.Session{}, f.deny(driver.OpRegister, "", "", st, http.StatusBadRequest, "bad_role")
	}
	f.mu.Lock()
	s := driver.Session{ID: f.id("u"), Role: role}
	s.Token = "t" + s.ID
	f.users[s.Token] = s
	f.byID[s.ID] = s
	f.mu.Unlock()
	f.note(driver.OpRegister, "", "", st, http.StatusCreated, nil)
	return s, nil
}

func (f *Fake) Book(ctx context.Context, p driver.Session, clinicianID string) (driver.Booking, error) {
	st := time.Now()
	if err := f.down(driver.OpBook, p.ID, clinicianID, st); err != nil {
		return driver.Booking{}, err
	}
	f.mu.Lock()
	u, ok := f.caller(p)
	if !ok {
		f.mu.Unlock()
		return driver.Booking{}, f.deny(driver.OpBook, p.ID, clinicianID, st, http.StatusUnauthorized, "unauthorized")
	}
	if u.Role != models.Patient {
		f.mu.Unlock()
		return driver.Booking{}, f.deny(driver.OpBook, u.ID, clinicianID, st, http.StatusForbidden, "forbidden_role")
	}
	if cl, ok := f.byID[clinicianID]; !ok || cl.Role != models.Clinician {
		f.mu.Unlock()
		return driver.Booking{}, f.deny(driver.OpBook, u.ID, clinicianID, st, http.StatusNotFound, "clinician_not_found")
	}
	c := &consultation{id: f.id("c"), rid: f.id("r"), patient: u.ID, clinician: clinicianID}
	f.consults[c.id] = c
	f.recs[c.rid] = c
	f.booked = append(f.booked, c)
	f.mu.Unlock()
	f.note(driver.OpBook, u.ID, clinicianID, st, http.StatusCreated, nil)
	return driver.Booking{AppointmentID: "a" + c.id, ConsultationID: c.id, PatientID: u.ID, ClinicianID: clinicianID}, nil
}

func (f *Fake) Join(ctx context.Context, s driver.Session, cid, offer string) (string, int, error) {
	return "", 0, ErrNoMedia
}

func (f *Fake) SwitchVideo(ctx context.Context, s driver.Session, cid, offer string) (string, error) {
	return "", ErrNoMedia
}

// End finishes a consultation; only its participants may, once.
func (f *Fake) End(ctx context.Context, s driver.Session, cid string) (driver.EndResult, error) {
	st := time.Now()
	if err := f.down(driver.OpEnd, s.ID, cid, st); err != nil {
		return driver.EndResult{}, err
	}
	if f.EndDelay > 0 {
		t := time.NewTimer(f.EndDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return driver.EndResult{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.caller(s)
	if !ok {
		return driver.EndResult{}, f.deny(driver.OpEnd, s.ID, cid, st, http.StatusUnauthorized, "unauthorized")
	}
	c := f.consults[cid]
	if c == nil || !c.has(u.ID) {
		return driver.EndResult{}, f.deny(driver.OpEnd, u.ID, cid, st, http.StatusNotFound, "not_found")
	}
	if c.ended {
		return driver.EndResult{}, f.deny(driver.OpEnd, u.ID, cid, st, http.StatusConflict, "already_ended")
	}
	c.ended = true
	f.ends++
	if f.EndFails {
		return driver.EndResult{}, f.deny(driver.OpEnd, u.ID, cid, st, http.StatusInternalServerError, "internal")
	}
	f.note(driver.OpEnd, u.ID, cid, st, http.StatusOK, nil)
	return driver.EndResult{ConsultationID: cid, RecordingID: c.rid}, nil
}

// Consultation describes a consultation to its participants (to any valid
// token with BOLA); to anyone else it does not exist.
func (f *Fake) Consultation(ctx context.Context, s driver.Session, cid string) (driver.ConsultationInfo, error) {
	st := time.Now()
	if err := f.down(driver.OpConsultation, s.ID, cid, st); err != nil {
		return driver.ConsultationInfo{}, err
	}
	f.mu.Lock()
	u, ok := f.caller(s)
	c := f.consults[cid]
	var info driver.ConsultationInfo
	if c != nil {
		info = driver.ConsultationInfo{ID: c.id, PatientID: c.patient, ClinicianID: c.clinician, State: "booked", RecordingID: c.rid}
		if c.ended {
			info.State = "ended"
		}
	}
	f.mu.Unlock()
	switch {
	case !ok:
		return driver.ConsultationInfo{}, f.deny(driver.OpConsultation, s.ID, cid, st, http.StatusUnauthorized, "unauthorized")
	case c == nil || (!f.BOLA && !c.has(u.ID)):
		return driver.ConsultationInfo{}, f.deny(driver.OpConsultation, u.ID, cid, st, http.StatusNotFound, "not_found")
	}
	f.note(driver.OpConsultation, u.ID, cid, st, http.StatusOK, nil)
	return info, nil
}

// ListReplays lists the caller's finished recordings (everyone's with
// LeakList), in booking order.
func (f *Fake) ListReplays(ctx context.Context, s driver.Session) ([]driver.ReplaySummary, error) {
	st := time.Now()
	if err := f.down(driver.OpList, s.ID, "", st); err != nil {
		return nil, err
	}
	f.mu.Lock()
	u, ok := f.caller(s)
	out := []driver.ReplaySummary{}
	if ok {
		for _, c := range f.booked {
			if c.ended && (f.LeakList || c.has(u.ID)) {
				out = append(out, driver.ReplaySummary{ID: c.rid, ConsultationID: c.id, Participants: []string{c.patient, c.clinician}})
			}
		}
	}
	f.mu.Unlock()
	if !ok {
		return nil, f.deny(driver.OpList, s.ID, "", st, http.StatusUnauthorized, "unauthorized")
	}
	f.note(driver.OpList, u.ID, "", st, http.StatusOK, nil)
	return out, nil
}

// GetReplay describes a finished recording to its participants (to any
// valid token with BOLA).
func (f *Fake) GetReplay(ctx context.Context, s driver.Session, rid string) (driver.Replay, error) {
	st := time.Now()
	if err := f.down(driver.OpReplay, s.ID, rid, st); err != nil {
		return driver.Replay{}, err
	}
	f.mu.Lock()
	u, ok := f.caller(s)
	c := f.recs[rid]
	ended := c != nil && c.ended
	f.mu.Unlock()
	switch {
	case !ok:
		return driver.Replay{}, f.deny(driver.OpReplay, s.ID, rid, st, http.StatusUnauthorized, "unauthorized")
	case !ended || (!f.BOLA && !c.has(u.ID)):
		return driver.Replay{}, f.deny(driver.OpReplay, u.ID, rid, st, http.StatusNotFound, "not_found")
	}
	f.note(driver.OpReplay, u.ID, rid, st, http.StatusOK, nil)
	return driver.Replay{ID: rid, ConsultationID: c.id, Participants: []string{c.patient, c.clinician}}, nil
}

// FetchMedia is denied: the fake records no tracks (401 without a valid
// token, else 404).
func (f *Fake) FetchMedia(ctx context.Context, s driver.Session, rid, tid string) ([]byte, error) {
	st := time.Now()
	if err := f.down(driver.OpMedia, s.ID, rid, st); err != nil {
		return nil, err
	}
	f.mu.Lock()
	_, ok := f.caller(s)
	f.mu.Unlock()
	if !ok {
		return nil, f.deny(driver.OpMedia, s.ID, rid, st, http.StatusUnauthorized, "unauthorized")
	}
	return nil, f.deny(driver.OpMedia, s.ID, rid, st, http.StatusNotFound, "not_found")
}

// Health answers nil unless Down.
func (f *Fake) Health(ctx context.Context) error {
	if f.Down {
		return fmt.Errorf("health: %w", driver.ErrUnreachable)
	}
	return nil
}
