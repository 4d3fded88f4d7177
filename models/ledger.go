package models

import (
	"errors"
	"fmt"
	"sync"
)

// Ledger is the ownership ground truth of a run: which users exist, who took part
// in which consultation and which recording the target said belongs to which
// consultation. It is built only from what the harness itself did (registrations,
// bookings, acknowledged ends), never from what the target lists, so that a lying
// target cannot teach the oracle its lie.
//
// It is safe for concurrent use. Its size grows with the users and consultations
// of the run (about 300 bytes a consultation), not with the observations.
type Ledger struct {
	mu         sync.RWMutex
	users      map[string]Role
	userTags   map[uint64]string
	consults   map[string]*Consultation
	consTags   map[uint64]string
	recordings map[string]*Consultation // recording id -> its consultation (one of consults)
	consRec    map[string]string        // consultation id -> recording id
}

// Ledger errors. A conflict is itself evidence against the target.
var (
	ErrUnknownUser         = errors.New("ledger: unknown user")
	ErrUnknownConsultation = errors.New("ledger: unknown consultation")
	ErrRecordingConflict   = errors.New("ledger: recording id already bound to another consultation")
	// ErrConsultationConflict: the target gave one consultation id to two
	// different bookings. The first booking stays the truth.
	ErrConsultationConflict = errors.New("ledger: consultation id already booked with other participants")
)

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{
		users:      map[string]Role{},
		userTags:   map[uint64]string{},
		consults:   map[string]*Consultation{},
		consTags:   map[uint64]string{},
		recordings: map[string]*Consultation{},
		consRec:    map[string]string{},
	}
}

// AddUser records a user the harness registered.
func (l *Ledger) AddUser(id string, role Role) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.users[id] = role
	l.userTags[TagOf(id)] = id
}

// Role returns the role of a known user.
func (l *Ledger) Role(id string) (Role, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r, ok := l.users[id]
	return r, ok
}

// AddConsultation records a consultation the harness booked. Adding the same
// consultation again is fine; an id reused for other participants returns
// ErrConsultationConflict and leaves the first booking in place, so a target
// cannot rewrite the ground truth by reusing ids.
func (l *Ledger) AddConsultation(c Consultation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.users[c.Patient]; !ok {
		return fmt.Errorf("%w: patient %s of consultation %s", ErrUnknownUser, c.Patient, c.ID)
	}
	if _, ok := l.users[c.Clinician]; !ok {
		return fmt.Errorf("%w: clinician %s of consultation %s", ErrUnknownUser, c.Clinician, c.ID)
	}
	if prev, ok := l.consults[c.ID]; ok {
		if prev.Patient != c.Patient || prev.Clinician != c.Clinician {
			return fmt.Errorf("%w: %s is %s/%s, now claimed for %s/%s", ErrConsultationConflict, c.ID, prev.Patient, prev.Clinician, c.Patient, c.Clinician)
		}
		return nil
	}
	cc := c
	l.consults[c.ID] = &cc
	l.consTags[TagOf(c.ID)] = c.ID
	return nil
}

// Consultation returns a known consultation.
func (l *Ledger) Consultation(id string) (Consultation, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	c, ok := l.consults[id]
	if !ok {
		return Consultation{}, false
	}
	return *c, true
}

// ConsultationByTag resolves a frame's consultation tag.
func (l *Ledger) ConsultationByTag(tag uint64) (Consultation, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	id, ok := l.consTags[tag]
	if !ok {
		return Consultation{}, false
	}
	return *l.consults[id], true
}

// UserByTag resolves a frame's sender tag.
func (l *Ledger) UserByTag(tag uint64) (string, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	id, ok := l.userTags[tag]
	return id, ok
}

// BindRecording records that the target acknowledged recordingID as the recording
// of consultationID (the answer to end, or the first time a participant saw it
// listed under that consultation). Binding the same pair twice is fine; binding a
// recording to two consultations returns ErrRecordingConflict. A consultation may
// be bound to several recordings (a lying target); RecordingOf returns the first.
func (l *Ledger) BindRecording(consultationID, recordingID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.consults[consultationID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownConsultation, consultationID)
	}
	if prev, ok := l.recordings[recordingID]; ok && prev.ID != consultationID {
		return fmt.Errorf("%w: %s belongs to %s, now claimed for %s", ErrRecordingConflict, recordingID, prev.ID, consultationID)
	}
	l.recordings[recordingID] = c
	if _, ok := l.consRec[consultationID]; !ok {
		l.consRec[consultationID] = recordingID
	}
	return nil
}

// RecordingOf returns the recording bound to a consultation.
func (l *Ledger) RecordingOf(consultationID string) (string, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r, ok := l.consRec[consultationID]
	return r, ok
}

// RecordingConsultation returns the consultation a recording is bound to.
func (l *Ledger) RecordingConsultation(recordingID string) (Consultation, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	c, ok := l.recordings[recordingID]
	if !ok {
		return Consultation{}, false
	}
	return *c, true
}

// MayView says whether user may be offered or shown recordingID. known is false
// when the ledger has no binding for the recording (the caller decides whether
// that is itself a finding, see the oracle).
func (l *Ledger) MayView(user, recordingID string) (allowed, known bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	c, ok := l.recordings[recordingID]
	if !ok {
		return false, false
	}
	return c.Has(user), true
}

// FrameBelongs says whether a frame with tag t may appear in the recording of
// consultation c: it must carry c's tag and the tag of one of its participants.
func FrameBelongs(c Consultation, t Tag) bool {
	return t.Consultation == TagOf(c.ID) && (t.Sender == TagOf(c.Patient) || t.Sender == TagOf(c.Clinician))
}

// MayReceiveLive says whether viewer, in a call of consultation c, may receive a
// live frame with tag t: only from the other participant of the same call.
func MayReceiveLive(c Consultation, viewer string, t Tag) bool {
	if t.Consultation != TagOf(c.ID) {
		return false
	}
	switch viewer {
	case c.Patient:
		return t.Sender == TagOf(c.Clinician)
	case c.Clinician:
		return t.Sender == TagOf(c.Patient)
	}
	return false
}
