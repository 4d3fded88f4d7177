package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	"telechaos/harness/driver"
	"telechaos/models"
)

// fakeTarget is an in-memory target for media-free runs: the contract without
// WebRTC, with switches for a list leak (every recording listed to everyone)
// and a media BOLA (any token fetches any recording).
type fakeTarget struct {
	obs       driver.Observer
	leakList  bool
	bola      bool
	down      bool
	endFails  bool // End finishes the call but answers 500 (every patient then fails)
	endDelay  time.Duration
	mu        sync.Mutex
	n         int
	users     map[string]driver.Session // token -> session
	consults  map[string]*fakeCons
	recs      map[string]*fakeCons
	endsCount int
}

type fakeCons struct {
	id, rid, patient, clinician string
	ended                       bool
}

func newFake(obs driver.Observer) *fakeTarget {
	return &fakeTarget{obs: obs, users: map[string]driver.Session{}, consults: map[string]*fakeCons{}, recs: map[string]*fakeCons{}}
}

var _ driver.Target = (*fakeTarget)(nil)

func (f *fakeTarget) note(op driver.Op, user, subject string, start time.Time, status int, err error) {
	if f.obs != nil {
		f.obs(driver.Observation{Op: op, User: user, Subject: subject, Start: start, End: time.Now(), Status: status, Err: err})
	}
}

func (f *fakeTarget) id(prefix string) string { f.n++; return fmt.Sprintf("%s_%04d", prefix, f.n) }

func (f *fakeTarget) Register(ctx context.Context, role models.Role) (driver.Session, error) {
	st := time.Now()
	if f.down {
		err := fmt.Errorf("register: %w", driver.ErrUnreachable)
		f.note(driver.OpRegister, "", "", st, 0, err)
		return driver.Session{}, err
	}
	f.mu.Lock()
	s := driver.Session{ID: f.id("u"), Role: role}
	s.Token = "t" + s.ID
	f.users[s.Token] = s
	f.mu.Unlock()
	f.note(driver.OpRegister, "", "", st, 201, nil)
	return s, nil
}

func (f *fakeTarget) Book(ctx context.Context, p driver.Session, clinicianID string) (driver.Booking, error) {
	st := time.Now()
	f.mu.Lock()
	c := &fakeCons{id: f.id("c"), rid: f.id("r"), patient: p.ID, clinician: clinicianID}
	f.consults[c.id] = c
	f.recs[c.rid] = c
	f.mu.Unlock()
	f.note(driver.OpBook, p.ID, clinicianID, st, 201, nil)
	return driver.Booking{AppointmentID: "a" + c.id, ConsultationID: c.id, PatientID: p.ID, ClinicianID: clinicianID}, nil
}

func (f *fakeTarget) Join(ctx context.Context, s driver.Session, cid, offer string) (string, int, error) {
	return "", 0, fmt.Errorf("fake: no media")
}

func (f *fakeTarget) SwitchVideo(ctx context.Context, s driver.Session, cid, offer string) (string, error) {
	return "", fmt.Errorf("fake: no media")
}

func (f *fakeTarget) End(ctx context.Context, s driver.Session, cid string) (driver.EndResult, error) {
	st := time.Now()
	if f.endDelay > 0 {
		select {
		case <-time.After(f.endDelay):
		case <-ctx.Done():
			return driver.EndResult{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.consults[cid]
	if c == nil || c.ended {
		err := &driver.StatusError{Op: driver.OpEnd, Code: 409}
		f.note(driver.OpEnd, s.ID, cid, st, 409, err)
		return driver.EndResult{}, err
	}
	c.ended = true
	f.endsCount++
	if f.endFails {
		err := &driver.StatusError{Op: driver.OpEnd, Code: 500}
		f.note(driver.OpEnd, s.ID, cid, st, 500, err)
		return driver.EndResult{}, err
	}
	f.note(driver.OpEnd, s.ID, cid, st, 200, nil)
	return driver.EndResult{ConsultationID: cid, RecordingID: c.rid}, nil
}

func (f *fakeTarget) Consultation(ctx context.Context, s driver.Session, cid string) (driver.ConsultationInfo, error) {
	st := time.Now()
	f.mu.Lock()
	c := f.consults[cid]
	f.mu.Unlock()
	if c == nil || (!f.bola && c.patient != s.ID && c.clinician != s.ID) {
		err := &driver.StatusError{Op: driver.OpConsultation, Code: 404}
		f.note(driver.OpConsultation, s.ID, cid, st, 404, err)
		return driver.ConsultationInfo{}, err
	}
	f.note(driver.OpConsultation, s.ID, cid, st, 200, nil)
	state := "booked"
	if c.ended {
		state = "ended"
	}
	return driver.ConsultationInfo{ID: c.id, PatientID: c.patient, ClinicianID: c.clinician, State: state, RecordingID: c.rid}, nil
}

func (f *fakeTarget) ListReplays(ctx context.Context, s driver.Session) ([]driver.ReplaySummary, error) {
	st := time.Now()
	f.mu.Lock()
	var out []driver.ReplaySummary
	for _, c := range f.recs {
		if c.ended && (f.leakList || c.patient == s.ID || c.clinician == s.ID) {
			out = append(out, driver.ReplaySummary{ID: c.rid, ConsultationID: c.id, Participants: []string{c.patient, c.clinician}})
		}
	}
	f.mu.Unlock()
	f.note(driver.OpList, s.ID, "", st, 200, nil)
	return out, nil
}

func (f *fakeTarget) GetReplay(ctx context.Context, s driver.Session, rid string) (driver.Replay, error) {
	st := time.Now()
	f.mu.Lock()
	c := f.recs[rid]
	f.mu.Unlock()
	if c == nil || !c.ended || (!f.bola && c.patient != s.ID && c.clinician != s.ID) {
		err := &driver.StatusError{Op: driver.OpReplay, Code: 404}
		f.note(driver.OpReplay, s.ID, rid, st, 404, err)
		return driver.Replay{}, err
	}
	f.note(driver.OpReplay, s.ID, rid, st, 200, nil)
	return driver.Replay{ID: rid, ConsultationID: c.id, Participants: []string{c.patient, c.clinician}}, nil
}

func (f *fakeTarget) FetchMedia(ctx context.Context, s driver.Session, rid, tid string) ([]byte, error) {
	err := &driver.StatusError{Op: driver.OpMedia, Code: 404}
	f.note(driver.OpMedia, s.ID, rid, time.Now(), 404, err)
	return nil, err
}

func (f *fakeTarget) Health(ctx context.Context) error {
	if f.down {
		return fmt.Errorf("health: %w", driver.ErrUnreachable)
	}
	return nil
}
