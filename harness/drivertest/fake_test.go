package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/models"
)

// status is the HTTP status of a target's answer: 200 for nil, 0 for no
// answer at all.
func status(err error) int {
	var se *driver.StatusError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &se):
		return se.Code
	}
	return 0
}

type world struct {
	f         *Fake
	p, p2, cl driver.Session
	obs       []driver.Observation
	mu        sync.Mutex
}

func newWorld(t *testing.T, tweak func(*Fake)) *world {
	t.Helper()
	w := &world{}
	w.f = New(func(o driver.Observation) { w.mu.Lock(); w.obs = append(w.obs, o); w.mu.Unlock() })
	if tweak != nil {
		tweak(w.f)
	}
	ctx := context.Background()
	var err error
	for _, r := range []struct {
		s    *driver.Session
		role models.Role
	}{{&w.p, models.Patient}, {&w.p2, models.Patient}, {&w.cl, models.Clinician}} {
		if *r.s, err = w.f.Register(ctx, r.role); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) ended(t *testing.T) (driver.Booking, driver.EndResult) {
	t.Helper()
	ctx := context.Background()
	b, err := w.f.Book(ctx, w.p, w.cl.ID)
	if err != nil {
		t.Fatal(err)
	}
	er, err := w.f.End(ctx, w.cl, b.ConsultationID)
	if err != nil {
		t.Fatal(err)
	}
	return b, er
}

func ids(rs []driver.ReplaySummary) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// The fake is a correct target: a consultation and its recording exist for
// its two participants only, a recording is listed once it is finished, a
// consultation ends once and only by a participant, and every probe by a
// stranger is denied with no data.
func TestOwnershipEnforced(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, nil)
	b, err := w.f.Book(ctx, w.p, w.cl.ID)
	if err != nil || b.PatientID != w.p.ID || b.ClinicianID != w.cl.ID || b.ConsultationID == "" {
		t.Fatalf("book: %+v %v", b, err)
	}
	if ls, err := w.f.ListReplays(ctx, w.p); err != nil || len(ls) != 0 {
		t.Errorf("list before end: %v %v", ls, err)
	}
	if _, err := w.f.End(ctx, w.p2, b.ConsultationID); status(err) != 404 {
		t.Errorf("end by a stranger: %v, want 404", err)
	}
	er, err := w.f.End(ctx, w.cl, b.ConsultationID)
	if err != nil || er.RecordingID == "" {
		t.Fatalf("end: %+v %v", er, err)
	}
	if _, err := w.f.End(ctx, w.p, b.ConsultationID); status(err) != 409 {
		t.Errorf("second end: %v, want 409", err)
	}
	if w.f.Ends() != 1 {
		t.Errorf("ends %d, want 1", w.f.Ends())
	}
	for _, s := range []driver.Session{w.p, w.cl} {
		if ls, err := w.f.ListReplays(ctx, s); err != nil || !slices.Equal(ids(ls), []string{er.RecordingID}) {
			t.Errorf("%s lists %v %v, want its recording", s.ID, ids(ls), err)
		}
		if r, err := w.f.GetReplay(ctx, s, er.RecordingID); err != nil || r.ConsultationID != b.ConsultationID || !slices.Contains(r.Participants, s.ID) {
			t.Errorf("%s replay: %+v %v", s.ID, r, err)
		}
		if c, err := w.f.Consultation(ctx, s, b.ConsultationID); err != nil || c.State != "ended" || c.RecordingID != er.RecordingID {
			t.Errorf("%s consultation: %+v %v", s.ID, c, err)
		}
	}
	// The stranger: nothing listed, every probe denied.
	if ls, err := w.f.ListReplays(ctx, w.p2); err != nil || len(ls) != 0 {
		t.Errorf("stranger lists %v %v", ids(ls), err)
	}
	if r, err := w.f.GetReplay(ctx, w.p2, er.RecordingID); status(err) != 404 || r.ID != "" {
		t.Errorf("stranger replay probe: %+v %v, want 404", r, err)
	}
	if c, err := w.f.Consultation(ctx, w.p2, b.ConsultationID); status(err) != 404 || c.ID != "" {
		t.Errorf("stranger consultation probe: %+v %v, want 404", c, err)
	}
	for _, s := range []driver.Session{w.p, w.p2} {
		if m, err := w.f.FetchMedia(ctx, s, er.RecordingID, "t1"); status(err) != 404 || m != nil {
			t.Errorf("media for %s: %d bytes %v, want 404 (no tracks)", s.ID, len(m), err)
		}
	}
	// Unknown ids are not found, for participants too.
	if _, err := w.f.GetReplay(ctx, w.p, "r_9999"); status(err) != 404 {
		t.Errorf("unknown replay: %v", err)
	}
	if _, err := w.f.Consultation(ctx, w.p, "c_9999"); status(err) != 404 {
		t.Errorf("unknown consultation: %v", err)
	}
}

// A recording not yet finished is not a replay, even to its patient.
func TestUnfinishedIsNotAReplay(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, nil)
	b, _ := w.f.Book(ctx, w.p, w.cl.ID)
	c, err := w.f.Consultation(ctx, w.p, b.ConsultationID)
	if err != nil || c.State != "booked" {
		t.Fatalf("consultation %+v %v", c, err)
	}
	if _, err := w.f.GetReplay(ctx, w.p, c.RecordingID); status(err) != 404 {
		t.Errorf("replay of a booked consultation: %v, want 404", err)
	}
}

// Only a patient books, and only with a clinician; a token the target did
// not issue is refused everywhere (a session id alone is not a credential).
func TestAuthAndRoles(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, nil)
	_, er := w.ended(t)
	if _, err := w.f.Book(ctx, w.cl, w.cl.ID); status(err) != 403 {
		t.Errorf("clinician books: %v, want 403", err)
	}
	if _, err := w.f.Book(ctx, w.p, w.p2.ID); status(err) != 404 {
		t.Errorf("book a patient as clinician: %v, want 404", err)
	}
	if _, err := w.f.Book(ctx, w.p, "u_9999"); status(err) != 404 {
		t.Errorf("book an unknown clinician: %v, want 404", err)
	}
	if _, err := w.f.Register(ctx, "admin"); status(err) != 400 {
		t.Errorf("register an unknown role: %v, want 400", err)
	}
	forged := driver.Session{ID: w.p.ID, Role: models.Patient, Token: "t" + w.p2.ID + "x"}
	noToken := driver.Session{ID: w.p.ID, Role: models.Patient}
	for _, s := range []driver.Session{forged, noToken} {
		calls := map[string]error{}
		_, calls["book"] = w.f.Book(ctx, s, w.cl.ID)
		_, calls["end"] = w.f.End(ctx, s, "c_0001")
		_, calls["consultation"] = w.f.Consultation(ctx, s, "c_0001")
		_, calls["list"] = w.f.ListReplays(ctx, s)
		_, calls["replay"] = w.f.GetReplay(ctx, s, er.RecordingID)
		_, calls["media"] = w.f.FetchMedia(ctx, s, er.RecordingID, "t1")
		for op, err := range calls {
			if status(err) != 401 {
				t.Errorf("%s with token %q: %v, want 401", op, s.Token, err)
			}
		}
	}
}

// The bug knobs break exactly the rule they name.
func TestBugKnobs(t *testing.T) {
	ctx := context.Background()
	t.Run("LeakList", func(t *testing.T) {
		w := newWorld(t, func(f *Fake) { f.LeakList = true })
		_, er := w.ended(t)
		if ls, err := w.f.ListReplays(ctx, w.p2); err != nil || !slices.Equal(ids(ls), []string{er.RecordingID}) {
			t.Errorf("stranger lists %v %v, want the leaked recording", ids(ls), err)
		}
		if _, err := w.f.GetReplay(ctx, w.p2, er.RecordingID); status(err) != 404 {
			t.Errorf("LeakList also opened the replay: %v", err)
		}
	})
	t.Run("BOLA", func(t *testing.T) {
		w := newWorld(t, func(f *Fake) { f.BOLA = true })
		b, er := w.ended(t)
		if r, err := w.f.GetReplay(ctx, w.p2, er.RecordingID); err != nil || r.ID != er.RecordingID {
			t.Errorf("stranger replay: %+v %v, want it served", r, err)
		}
		if _, err := w.f.Consultation(ctx, w.p2, b.ConsultationID); err != nil {
			t.Errorf("stranger consultation: %v, want it served", err)
		}
		if ls, _ := w.f.ListReplays(ctx, w.p2); len(ls) != 0 {
			t.Errorf("BOLA also leaked the list: %v", ids(ls))
		}
		if _, err := w.f.GetReplay(ctx, driver.Session{Token: "nope"}, er.RecordingID); status(err) != 401 {
			t.Errorf("BOLA without a valid token: %v, want 401", err)
		}
	})
}

func TestFailureKnobs(t *testing.T) {
	ctx := context.Background()
	t.Run("Down", func(t *testing.T) {
		w := newWorld(t, nil)
		w.f.Down = true
		if err := w.f.Health(ctx); !errors.Is(err, driver.ErrUnreachable) {
			t.Errorf("health: %v", err)
		}
		calls := map[string]error{}
		_, calls["register"] = w.f.Register(ctx, models.Patient)
		_, calls["book"] = w.f.Book(ctx, w.p, w.cl.ID)
		_, calls["end"] = w.f.End(ctx, w.p, "c_0001")
		_, calls["list"] = w.f.ListReplays(ctx, w.p)
		_, calls["replay"] = w.f.GetReplay(ctx, w.p, "r_0001")
		_, calls["consultation"] = w.f.Consultation(ctx, w.p, "c_0001")
		_, calls["media"] = w.f.FetchMedia(ctx, w.p, "r_0001", "t")
		for op, err := range calls {
			if !errors.Is(err, driver.ErrUnreachable) || status(err) != 0 {
				t.Errorf("%s while down: %v, want unreachable", op, err)
			}
		}
	})
	t.Run("EndFails", func(t *testing.T) {
		w := newWorld(t, func(f *Fake) { f.EndFails = true })
		b, _ := w.f.Book(ctx, w.p, w.cl.ID)
		if _, err := w.f.End(ctx, w.p, b.ConsultationID); status(err) != 500 {
			t.Errorf("end: %v, want 500", err)
		}
		if _, err := w.f.End(ctx, w.p, b.ConsultationID); status(err) != 409 || w.f.Ends() != 1 {
			t.Errorf("end after a 500: %v (ends %d): the call did finish", err, w.f.Ends())
		}
	})
	t.Run("EndDelay", func(t *testing.T) {
		w := newWorld(t, func(f *Fake) { f.EndDelay = time.Hour })
		b, _ := w.f.Book(ctx, w.p, w.cl.ID)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := w.f.End(cctx, w.p, b.ConsultationID); !errors.Is(err, context.Canceled) || w.f.Ends() != 0 {
			t.Errorf("end with a cancelled context: %v (ends %d)", err, w.f.Ends())
		}
	})
	t.Run("NoMedia", func(t *testing.T) {
		w := newWorld(t, nil)
		if _, _, err := w.f.Join(ctx, w.p, "c", "offer"); !errors.Is(err, ErrNoMedia) {
			t.Errorf("join: %v", err)
		}
		if _, err := w.f.SwitchVideo(ctx, w.p, "c", "offer"); !errors.Is(err, ErrNoMedia) {
			t.Errorf("switch: %v", err)
		}
	})
}

// Every answered operation reaches the observer with its status, and the
// fake is safe for concurrent use.
func TestObservedAndConcurrent(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	const n = 20
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := w.f.Register(ctx, models.Patient)
			if err != nil {
				t.Error(err)
				return
			}
			b, err := w.f.Book(ctx, p, w.cl.ID)
			if err != nil {
				t.Error(err)
				return
			}
			end := p
			if i%2 == 0 {
				end = w.cl
			}
			if _, err := w.f.End(ctx, end, b.ConsultationID); err != nil {
				t.Error(err)
			}
			if ls, err := w.f.ListReplays(ctx, p); err != nil || len(ls) != 1 {
				t.Errorf("patient lists %v %v, want its one recording", ids(ls), err)
			}
		}()
	}
	wg.Wait()
	if ls, _ := w.f.ListReplays(ctx, w.cl); len(ls) != n {
		t.Errorf("clinician lists %d, want %d", len(ls), n)
	}
	count := map[string]int{}
	w.mu.Lock()
	for _, o := range w.obs {
		count[fmt.Sprintf("%s %d", o.Op, o.Status)]++
		if o.End.Before(o.Start) {
			t.Errorf("observation ends before it starts: %+v", o)
		}
	}
	w.mu.Unlock()
	want := map[string]int{"register 201": 3 + n, "book 201": n, "end 200": n, "list 200": n + 1}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("%d observations %q, want %d (all: %v)", count[k], k, v, count)
		}
	}
}
