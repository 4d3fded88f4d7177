package client

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/embedded"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// matrixWorld is an embedded clinic with two pairs of users: a (patient) and
// d1 (clinician) with ended consultation c1; b and d2 with ended c2 and
// booked c3 (the write victim, which the matrix must leave booked).
type matrixWorld struct {
	tgt        driver.Target
	http       *driver.HTTPTarget
	or         *oracle.Oracle
	cl         *Client
	a, d1      driver.Session
	b, d2      driver.Session
	c1, c2, c3 models.Consultation
	rec1, rec2 string
}

func newMatrixWorld(t *testing.T, bugs []string, wrap func(*driver.HTTPTarget) driver.Target) *matrixWorld {
	t.Helper()
	ctx := context.Background()
	clinic, err := embedded.Start(ctx, embedded.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Bugs: bugs, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clinic.Close() })
	h, err := driver.NewHTTP(clinic.URL(), driver.HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	w := &matrixWorld{http: h, tgt: h}
	if wrap != nil {
		w.tgt = wrap(h)
	}
	l := models.NewLedger()
	w.or = oracle.New(l, oracle.Options{})
	w.cl = New(w.tgt, nil, l, w.or, Options{})
	reg := func(r models.Role) driver.Session {
		s, err := w.cl.Register(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	w.a, w.d1, w.b, w.d2 = reg(models.Patient), reg(models.Clinician), reg(models.Patient), reg(models.Clinician)
	book := func(p, d driver.Session) models.Consultation {
		c, err := w.cl.Book(ctx, p, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	w.c1, w.c2, w.c3 = book(w.a, w.d1), book(w.b, w.d2), book(w.b, w.d2)
	end := func(c models.Consultation, by driver.Session) string {
		res, err := w.cl.NewCall(c).End(ctx, by)
		if err != nil {
			t.Fatal(err)
		}
		return res.RecordingID
	}
	w.rec1, w.rec2 = end(w.c1, w.a), end(w.c2, w.b)
	return w
}

// round runs the whole matrix once as prober against b's consultations.
func (w *matrixWorld) round(t *testing.T, prober driver.Session, own string) MatrixResult {
	t.Helper()
	p, ok := w.tgt.(driver.AuthzProber)
	if !ok {
		t.Fatalf("%T is no AuthzProber", w.tgt)
	}
	r := MatrixRound{
		Prober: prober,
		Read:   MatrixVictim{Consultation: w.c2.ID, Patient: w.b.ID, Clinician: w.d2.ID, Recording: w.rec2},
		Write:  MatrixVictim{Consultation: w.c3.ID, Patient: w.b.ID, Clinician: w.d2.ID},
		Own:    MatrixOwn{Recording: own},
		Max:    MatrixSize(p),
	}
	res, err := w.cl.Matrix(context.Background(), r)
	if err != nil {
		t.Fatalf("matrix round: %v", err)
	}
	return res
}

func cellsOf(m *models.AuthzMatrix) map[[3]string]models.AuthzCell {
	out := map[[3]string]models.AuthzCell{}
	for _, c := range m.Cells {
		out[[3]string{c.Route, c.Identity, c.Variant}] = c
	}
	return out
}

// The correct clinic denies every cell of the matrix, for a patient and a
// clinician of other consultations, and the write probes leave the victim's
// booked consultation as it was.
func TestMatrixCorrectClinicDeniesAll(t *testing.T) {
	w := newMatrixWorld(t, nil, nil)
	for _, prober := range []driver.Session{w.a, w.d1} {
		res := w.round(t, prober, w.rec1)
		if res.Sent == 0 || res.Unanswered != 0 {
			t.Fatalf("round as %s: %+v", prober.Role, res)
		}
	}
	if v := w.or.Violations(); len(v) != 0 {
		t.Fatalf("correct clinic: %d violations, first %s", len(v), v[0].Detail)
	}
	m := w.or.AuthzMatrix()
	if m == nil || m.Status != models.AuthzRun {
		t.Fatalf("matrix %+v, want status run", m)
	}
	tot := m.Totals()
	if tot.Tried == 0 || tot.Denied != tot.Tried || tot.Leaked != 0 {
		t.Fatalf("totals %+v: want every probe denied", tot)
	}
	cells := cellsOf(m)
	// Every route (but media: a media-free recording has no track), both
	// identities, every credential and override, the consultation id mix.
	routes := map[string]bool{}
	for _, c := range m.Cells {
		routes[c.Route] = true
	}
	for _, rt := range w.http.Routes() {
		if !routes[rt.Name] && !rt.Track {
			t.Errorf("route %s not probed", rt.Name)
		}
	}
	for _, want := range [][3]string{
		{"POST /v1/consultations/{cid}/end", "clinician", "header:X-User-Id+token"},
		{"POST /v1/consultations/{cid}/join", "patient", "query:as+no-token"},
		{"GET /v1/replays/{rid}", "patient", "truncated-token"},
		{"GET /v1/replays/{rid}", "clinician", "malformed-token"},
		{"GET /v1/consultations/{cid}", "patient", "foreign-consultation+own-recording"},
		{"POST /v1/consultations/{cid}/video", "patient", "query:owner+token"},
		{"GET /v1/consultations/{cid}", "clinician", "header:X-Original-User+no-token"},
	} {
		if c, ok := cells[want]; !ok || c.Tried != 1 || c.Denied != 1 {
			t.Errorf("cell %v: %+v (present %v), want tried 1 denied 1", want, c, ok)
		}
	}
	ci, err := w.http.Consultation(context.Background(), w.b, w.c3.ID)
	if err != nil || ci.State != "booked" {
		t.Fatalf("victim's booked consultation after denied writes: %+v, %v", ci, err)
	}
	if st := w.or.Stats(); st.Judgement[models.ReplayAccessControl].Judged != tot.Tried {
		t.Fatalf("judged %d, tried %d", st.Judgement[models.ReplayAccessControl].Judged, tot.Tried)
	}
}

// bola-media (the media and replay endpoints check the token, not the
// viewer) leaks through the plain token cells and the overrides sent with a
// token, and through nothing without a valid token.
func TestMatrixCatchesBOLAMedia(t *testing.T) {
	w := newMatrixWorld(t, []string{"bola-media"}, nil)
	w.round(t, w.a, w.rec1)
	cells := cellsOf(w.or.AuthzMatrix())
	leak := cells[[3]string{"GET /v1/replays/{rid}", "patient", "token"}]
	if leak.Leaked != 1 {
		t.Fatalf("bola-media: plain token cell %+v, want leaked", leak)
	}
	for k, c := range cells {
		noToken := strings.HasSuffix(k[2], "no-token") || k[2] == "malformed-token" || k[2] == "truncated-token"
		if noToken && c.Leaked != 0 {
			t.Errorf("cell %v leaked without a valid token: %+v", k, c)
		}
		if strings.HasPrefix(k[0], "POST") || strings.HasPrefix(k[0], "GET /v1/consultations") {
			if c.Leaked != 0 {
				t.Errorf("cell %v leaked, bola-media is on replays only: %+v", k, c)
			}
		}
	}
	found := false
	for _, v := range w.or.Violations() {
		if v.Invariant == models.ReplayAccessControl && strings.Contains(v.Detail, "GET /v1/replays/{rid} (identity patient, variant token)") {
			found = true
			if v.Recording != w.rec2 || v.Consultation != w.c2.ID || v.Viewer != w.a.ID {
				t.Errorf("evidence names the wrong ids: %+v", v)
			}
		}
	}
	if !found {
		t.Fatalf("no violation names the route, identity and variant: %+v", w.or.Violations())
	}
}

// xUserTarget is a target that trusts an X-User-Id header: it serves the
// request as the user the header names (as a gateway that maps the header
// to a session would). It knows every session because every user
// registered through it.
type xUserTarget struct {
	*driver.HTTPTarget
	mu       sync.Mutex
	sessions map[string]driver.Session
}

func (x *xUserTarget) Register(ctx context.Context, role models.Role) (driver.Session, error) {
	s, err := x.HTTPTarget.Register(ctx, role)
	if err == nil {
		x.mu.Lock()
		x.sessions[s.ID] = s
		x.mu.Unlock()
	}
	return s, err
}

func (x *xUserTarget) ProbeRequest(ctx context.Context, r driver.AuthzRequest) (driver.AuthzAnswer, error) {
	if r.Override != nil && r.Override.In == "header" && r.Override.Name == "X-User-Id" {
		x.mu.Lock()
		s, ok := x.sessions[r.Claim]
		x.mu.Unlock()
		if ok {
			r.As, r.Cred, r.Override = s, driver.CredToken, nil
		}
	}
	return x.HTTPTarget.ProbeRequest(ctx, r)
}

// A target honouring X-User-Id is caught on every route, with and without
// a token, reads and writes (the foreign end it accepts is a violation);
// the evidence names route, identity and variant. Other overrides stay
// denied.
func TestMatrixCatchesXUserIDOverride(t *testing.T) {
	w := newMatrixWorld(t, nil, func(h *driver.HTTPTarget) driver.Target {
		return &xUserTarget{HTTPTarget: h, sessions: map[string]driver.Session{}}
	})
	w.round(t, w.d1, w.rec1)
	cells := cellsOf(w.or.AuthzMatrix())
	for k, c := range cells {
		honoured := strings.HasPrefix(k[2], "header:X-User-Id+")
		// join and video with the probe's placeholder offer are refused
		// as bad SDP even as the victim: the target answers 4xx.
		if honoured && (strings.HasSuffix(k[0], "/join") || strings.HasSuffix(k[0], "/video")) {
			continue
		}
		// The first accepted end ends the victim's call: the second is
		// told it already ended (409).
		if honoured && strings.HasSuffix(k[0], "/end") {
			continue
		}
		if honoured && c.Leaked != 1 {
			t.Errorf("cell %v: %+v, want leaked", k, c)
		}
		if !honoured && c.Leaked != 0 {
			t.Errorf("cell %v: %+v, want denied", k, c)
		}
	}
	endLeaks := cells[[3]string{"POST /v1/consultations/{cid}/end", "clinician", "header:X-User-Id+token"}].Leaked +
		cells[[3]string{"POST /v1/consultations/{cid}/end", "clinician", "header:X-User-Id+no-token"}].Leaked
	if endLeaks != 1 {
		t.Errorf("accepted foreign ends %d, want 1", endLeaks)
	}
	var endViol bool
	for _, v := range w.or.Violations() {
		if strings.Contains(v.Detail, "POST /v1/consultations/{cid}/end (identity clinician, variant header:X-User-Id+no-token)") ||
			strings.Contains(v.Detail, "POST /v1/consultations/{cid}/end (identity clinician, variant header:X-User-Id+token)") {
			endViol = true
			if v.Consultation != w.c3.ID || !strings.Contains(v.Detail, "wrote (accepted)") || !strings.Contains(v.Detail, "claiming to be "+w.b.ID) {
				t.Errorf("end evidence: %+v", v)
			}
		}
	}
	if !endViol {
		t.Fatalf("the accepted foreign end is no violation: %+v", w.or.Violations())
	}
}

// plainTarget hides the HTTP driver's matrix: a target that declares none.
type plainTarget struct{ driver.Target }

// A target without a matrix runs none, and the tally says "not run".
func TestMatrixNotRunWithoutProber(t *testing.T) {
	w := newMatrixWorld(t, nil, func(h *driver.HTTPTarget) driver.Target { return plainTarget{h} })
	_, err := w.cl.Matrix(context.Background(), MatrixRound{Prober: w.a, Read: MatrixVictim{Consultation: w.c2.ID}, Max: 10})
	if err != ErrNoMatrix {
		t.Fatalf("err %v, want ErrNoMatrix", err)
	}
	m := w.or.AuthzMatrix()
	if m == nil || m.Status != models.AuthzNotRun || m.Reason == "" || len(m.Cells) != 0 {
		t.Fatalf("matrix %+v, want not-run with a reason", m)
	}
}

// unansweringTarget gives no answer to any probe.
type unansweringTarget struct{ *driver.HTTPTarget }

func (unansweringTarget) ProbeRequest(context.Context, driver.AuthzRequest) (driver.AuthzAnswer, error) {
	return driver.AuthzAnswer{}, driver.ErrUnreachable
}

// An unanswered probe is not judged (never denied, never passed) and ends
// the round.
func TestMatrixUnansweredEndsRound(t *testing.T) {
	w := newMatrixWorld(t, nil, func(h *driver.HTTPTarget) driver.Target { return unansweringTarget{h} })
	p := w.tgt.(driver.AuthzProber)
	res, err := w.cl.Matrix(context.Background(), MatrixRound{Prober: w.a,
		Read: MatrixVictim{Consultation: w.c2.ID, Patient: w.b.ID, Recording: w.rec2}, Max: MatrixSize(p)})
	if err == nil || res.Sent != 1 || res.Unanswered != 1 {
		t.Fatalf("res %+v err %v: want one unanswered request", res, err)
	}
	tot := w.or.AuthzMatrix().Totals()
	if tot.Tried != 1 || tot.NotJudged != 1 || tot.Denied != 0 {
		t.Fatalf("totals %+v", tot)
	}
	if j := w.or.Stats().Judgement[models.ReplayAccessControl]; j.NotJudged != 1 || j.Judged != 0 {
		t.Fatalf("judgement %+v", j)
	}
}
