package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/models"
)

// fakeTarget is a minimal in-memory target without WebRTC, private to these
// tests until the shared one (harness/drivertest) lands: users, bookings,
// ends that acknowledge what a test says, lists, replays and media bodies a
// test sets, and errors a test injects per op.
type fakeTarget struct {
	mu       sync.Mutex
	n        int
	consults map[string]*fakeCons
	recs     map[string]*fakeCons
	// leakList lists every recording to everyone.
	leakList bool
	// bola serves any recording, consultation and track to anyone.
	bola bool
	// media[recording][track] is the body FetchMedia serves.
	media map[string]map[string][]byte
	// fail[op] is returned by the next calls of op (then it is consumed
	// when failOnce).
	fail     map[driver.Op]error
	failOnce bool
	calls    map[driver.Op]int
	// listAfter hides a recording from lists until that many lists were made.
	listAfter int
	// endLosesAnswer ends the call but answers 500, once.
	endLosesAnswer bool
}

type fakeCons struct {
	id, rid, patient, clinician string
	ended                       bool
	tracks                      []driver.TrackInfo
}

func newFakeTarget() *fakeTarget {
	return &fakeTarget{consults: map[string]*fakeCons{}, recs: map[string]*fakeCons{},
		media: map[string]map[string][]byte{}, fail: map[driver.Op]error{}, calls: map[driver.Op]int{}}
}

var _ driver.Target = (*fakeTarget)(nil)

func (f *fakeTarget) id(prefix string) string { f.n++; return fmt.Sprintf("%s_%04d", prefix, f.n) }

// failed counts a call of op and returns the error injected for it.
func (f *fakeTarget) failed(op driver.Op) error {
	f.calls[op]++
	err := f.fail[op]
	if err != nil && f.failOnce {
		delete(f.fail, op)
	}
	return err
}

func (f *fakeTarget) Register(_ context.Context, role models.Role) (driver.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failed(driver.OpRegister); err != nil {
		return driver.Session{}, err
	}
	s := driver.Session{ID: f.id("u"), Role: role}
	s.Token = "t" + s.ID
	return s, nil
}

func (f *fakeTarget) Book(_ context.Context, p driver.Session, clinicianID string) (driver.Booking, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failed(driver.OpBook); err != nil {
		return driver.Booking{}, err
	}
	c := &fakeCons{id: f.id("c"), rid: f.id("r"), patient: p.ID, clinician: clinicianID}
	f.consults[c.id] = c
	f.recs[c.rid] = c
	return driver.Booking{AppointmentID: "a" + c.id, ConsultationID: c.id, PatientID: p.ID, ClinicianID: clinicianID}, nil
}

func (f *fakeTarget) Join(context.Context, driver.Session, string, string) (string, int, error) {
	return "", 0, fmt.Errorf("fake: no media")
}

func (f *fakeTarget) SwitchVideo(context.Context, driver.Session, string, string) (string, error) {
	return "", fmt.Errorf("fake: no media")
}

func (f *fakeTarget) End(_ context.Context, s driver.Session, cid string) (driver.EndResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failed(driver.OpEnd); err != nil {
		return driver.EndResult{}, err
	}
	c := f.consults[cid]
	if c == nil || c.ended {
		return driver.EndResult{}, &driver.StatusError{Op: driver.OpEnd, Code: 409}
	}
	c.ended = true
	if f.endLosesAnswer {
		f.endLosesAnswer = false
		return driver.EndResult{}, &driver.StatusError{Op: driver.OpEnd, Code: 500}
	}
	return driver.EndResult{ConsultationID: cid, RecordingID: c.rid, Tracks: c.tracks}, nil
}

func (f *fakeTarget) mayView(c *fakeCons, s driver.Session) bool {
	return f.bola || c.patient == s.ID || c.clinician == s.ID
}

func (f *fakeTarget) Consultation(_ context.Context, s driver.Session, cid string) (driver.ConsultationInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failed(driver.OpConsultation); err != nil {
		return driver.ConsultationInfo{}, err
	}
	c := f.consults[cid]
	if c == nil || !f.mayView(c, s) {
		return driver.ConsultationInfo{}, &driver.StatusError{Op: driver.OpConsultation, Code: 404}
	}
	info := driver.ConsultationInfo{ID: c.id, PatientID: c.patient, ClinicianID: c.clinician, State: "booked"}
	if c.ended {
		info.State, info.RecordingID = "ended", c.rid
	}
	return info, nil
}

func (f *fakeTarget) ListReplays(_ context.Context, s driver.Session) ([]driver.ReplaySummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failed(driver.OpList); err != nil {
		return nil, err
	}
	if f.calls[driver.OpList] <= f.listAfter {
		return nil, nil
	}
	var out []driver.ReplaySummary
	for _, c := range f.recs {
		if c.ended && (f.leakList || c.patient == s.ID || c.clinician == s.ID) {
			out = append(out, driver.ReplaySummary{ID: c.rid, ConsultationID: c.id, Participants: []string{c.patient, c.clinician}, Tracks: len(c.tracks)})
		}
	}
	return out, nil
}

func (f *fakeTarget) GetReplay(_ context.Context, s driver.Session, rid string) (driver.Replay, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failed(driver.OpReplay); err != nil {
		return driver.Replay{}, err
	}
	c := f.recs[rid]
	if c == nil || !c.ended || !f.mayView(c, s) {
		return driver.Replay{}, &driver.StatusError{Op: driver.OpReplay, Code: 404}
	}
	return driver.Replay{ID: rid, ConsultationID: c.id, Participants: []string{c.patient, c.clinician}, Tracks: c.tracks}, nil
}

func (f *fakeTarget) FetchMedia(_ context.Context, s driver.Session, rid, tid string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failed(driver.OpMedia); err != nil {
		return nil, err
	}
	c := f.recs[rid]
	b, ok := f.media[rid][tid]
	if c == nil || !ok || !f.mayView(c, s) {
		return nil, &driver.StatusError{Op: driver.OpMedia, Code: 404}
	}
	return b, nil
}

func (f *fakeTarget) Health(context.Context) error { return nil }

// record gives consultation cid a video track owned by owner whose body
// holds frames (ivf), acknowledged with len(frames) frames at end.
func (f *fakeTarget) record(cid, owner string, body []byte, frames int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.consults[cid]
	tid := fmt.Sprintf("t%d", len(c.tracks)+1)
	c.tracks = append(c.tracks, driver.TrackInfo{ID: tid, Owner: owner, Kind: string(models.Video), Format: "ivf", Segment: 1, Frames: frames})
	if f.media[c.rid] == nil {
		f.media[c.rid] = map[string][]byte{}
	}
	f.media[c.rid][tid] = body
	return tid
}

// ivf writes frames as an IVF file (VP8); broken appends a frame header
// whose size no IVF frame can have, as a corrupting target would.
func ivf(frames [][]byte, broken bool) []byte {
	b := make([]byte, 32)
	copy(b, "DKIF")
	binary.LittleEndian.PutUint16(b[6:8], 32)
	copy(b[8:12], "VP80")
	binary.LittleEndian.PutUint32(b[24:28], uint32(len(frames)))
	for i, fr := range frames {
		var h [12]byte
		binary.LittleEndian.PutUint32(h[0:4], uint32(len(fr)))
		binary.LittleEndian.PutUint64(h[4:12], uint64(i))
		b = append(append(b, h[:]...), fr...)
	}
	if broken {
		var h [12]byte
		binary.LittleEndian.PutUint32(h[0:4], 1<<30)
		b = append(append(b, h[:]...), 0xde, 0xad)
	}
	return b
}

// videoFrames are n frames of cons as sender, in the client's format.
func videoFrames(cons, sender string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = models.VideoFrame(models.Tag{Consultation: models.TagOf(cons), Sender: models.TagOf(sender), Seq: uint32(i + 1)}, VideoFrameSize)
	}
	return out
}
