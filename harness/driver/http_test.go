package driver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/models"
)

// fakeContract answers every route of docs/api.md with a fixed, valid body
// unless bodies overrides it (route key "METHOD /path").
type fakeContract struct {
	mu     sync.Mutex
	bodies map[string]fakeAnswer
	seen   []*http.Request
}

type fakeAnswer struct {
	status int
	body   string
}

var happy = map[string]fakeAnswer{
	"POST /v1/users":                   {201, `{"id":"u-1","role":"patient","name":"x","token":"tok-1"}`},
	"POST /v1/appointments":            {201, `{"id":"a-1","consultation_id":"c-1","patient_id":"u-1","clinician_id":"u-2","mode":"audio"}`},
	"GET /v1/consultations/c-1":        {200, `{"id":"c-1","appointment_id":"a-1","patient_id":"u-1","clinician_id":"u-2","state":"active","video":true,"recording_id":""}`},
	"POST /v1/consultations/c-1/join":  {200, `{"type":"answer","sdp":"v=0 answer","segment":2}`},
	"POST /v1/consultations/c-1/video": {200, `{"type":"answer","sdp":"v=0 video"}`},
	"POST /v1/consultations/c-1/end":   {200, `{"consultation_id":"c-1","recording_id":"r-1","state":"ended","tracks":[` + trackJSONText + `]}`},
	"GET /v1/replays":                  {200, `{"replays":[{"id":"r-1","consultation_id":"c-1","title":"t","participants":["u-1","u-2"],"started_at":"x","ended_at":"y","tracks":1}],"count":1}`},
	"GET /v1/replays/r-1":              {200, `{"id":"r-1","consultation_id":"c-1","title":"t","participants":["u-1","u-2"],"tracks":[` + trackJSONText + `]}`},
	"GET /v1/replays/r-1/media":        {200, "OggS-bytes"},
	"GET /healthz":                     {200, `{"status":"ok"}`},
}

const trackJSONText = `{"id":"t-1","owner":"u-1","kind":"audio","codec":"opus","format":"ogg","segment":0,"frames":50,"bytes":1234}`

func (f *fakeContract) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r)
	a, ok := f.bodies[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	if !ok {
		a, ok = happy[r.Method+" "+r.URL.Path]
	}
	if !ok {
		a = fakeAnswer{404, `{"error":"not_found","message":"no route"}`}
	}
	io.Copy(io.Discard, r.Body)
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func newFake(t *testing.T, bodies map[string]fakeAnswer, opts HTTPOptions) (*HTTPTarget, *fakeContract) {
	t.Helper()
	f := &fakeContract{bodies: bodies}
	srv := httptest.NewServer(f)
	h, err := NewHTTP(srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); srv.Close() })
	return h, f
}

var sess = Session{ID: "u-1", Role: models.Patient, Token: "tok-1"}

func TestHTTPHappyPath(t *testing.T) {
	var mu sync.Mutex
	var obs []Observation
	h, f := newFake(t, nil, HTTPOptions{Observer: func(o Observation) { mu.Lock(); obs = append(obs, o); mu.Unlock() }})
	ctx := context.Background()

	s, err := h.Register(ctx, models.Patient)
	if err != nil || s != (Session{ID: "u-1", Role: models.Patient, Token: "tok-1"}) {
		t.Errorf("Register = %+v, %v", s, err)
	}
	b, err := h.Book(ctx, sess, "u-2")
	if err != nil || b != (Booking{AppointmentID: "a-1", ConsultationID: "c-1", PatientID: "u-1", ClinicianID: "u-2"}) {
		t.Errorf("Book = %+v, %v", b, err)
	}
	ci, err := h.Consultation(ctx, sess, "c-1")
	if err != nil || ci != (ConsultationInfo{ID: "c-1", AppointmentID: "a-1", PatientID: "u-1", ClinicianID: "u-2", State: "active", Video: true}) {
		t.Errorf("Consultation = %+v, %v", ci, err)
	}
	ans, seg, err := h.Join(ctx, sess, "c-1", "v=0 offer")
	if err != nil || ans != "v=0 answer" || seg != 2 {
		t.Errorf("Join = %q, %d, %v", ans, seg, err)
	}
	ans, err = h.SwitchVideo(ctx, sess, "c-1", "v=0 offer2")
	if err != nil || ans != "v=0 video" {
		t.Errorf("SwitchVideo = %q, %v", ans, err)
	}
	wantTrack := TrackInfo{ID: "t-1", Owner: "u-1", Kind: "audio", Codec: "opus", Format: "ogg", Segment: 0, Frames: 50, Bytes: 1234}
	er, err := h.End(ctx, sess, "c-1")
	if err != nil || er.RecordingID != "r-1" || er.ConsultationID != "c-1" || len(er.Tracks) != 1 || er.Tracks[0] != wantTrack {
		t.Errorf("End = %+v, %v", er, err)
	}
	list, err := h.ListReplays(ctx, sess)
	if err != nil || len(list) != 1 || list[0].ID != "r-1" || list[0].Tracks != 1 || len(list[0].Participants) != 2 {
		t.Errorf("ListReplays = %+v, %v", list, err)
	}
	rp, err := h.GetReplay(ctx, sess, "r-1")
	if err != nil || rp.ID != "r-1" || len(rp.Tracks) != 1 || rp.Tracks[0] != wantTrack {
		t.Errorf("GetReplay = %+v, %v", rp, err)
	}
	media, err := h.FetchMedia(ctx, sess, "r-1", "t-1")
	if err != nil || string(media) != "OggS-bytes" {
		t.Errorf("FetchMedia = %q, %v", media, err)
	}
	if err := h.Health(ctx); err != nil {
		t.Errorf("Health = %v", err)
	}

	// Requests carry the contract's shape.
	f.mu.Lock()
	for _, r := range f.seen {
		auth := r.Header.Get("Authorization")
		public := r.URL.Path == "/v1/users" || r.URL.Path == "/healthz"
		if public != (auth == "") || (!public && auth != "Bearer tok-1") {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, auth)
		}
		if r.URL.Path == "/v1/replays/r-1/media" && r.URL.Query().Get("track") != "t-1" {
			t.Errorf("media query = %q", r.URL.RawQuery)
		}
	}
	f.mu.Unlock()

	mu.Lock()
	defer mu.Unlock()
	wantOps := []Op{OpRegister, OpBook, OpConsultation, OpJoin, OpSwitch, OpEnd, OpList, OpReplay, OpMedia, OpHealth}
	if len(obs) != len(wantOps) {
		t.Fatalf("got %d observations, want %d: %+v", len(obs), len(wantOps), obs)
	}
	for i, o := range obs {
		if o.Op != wantOps[i] || o.Err != nil || o.Status/100 != 2 || o.Bytes == 0 || o.End.Before(o.Start) {
			t.Errorf("observation %d = %+v", i, o)
		}
	}
	if obs[3].User != "u-1" || obs[3].Subject != "c-1" {
		t.Errorf("join observation user/subject = %q/%q", obs[3].User, obs[3].Subject)
	}
	if obs[8].Subject != "r-1" {
		t.Errorf("media observation subject = %q", obs[8].Subject)
	}
}

func TestHTTPStatusErrors(t *testing.T) {
	cases := []struct {
		name      string
		ans       fakeAnswer
		denied    bool
		code, msg string
	}{
		{"403 json", fakeAnswer{403, `{"error":"forbidden","message":"not yours"}`}, true, "forbidden", "not yours"},
		{"404 json", fakeAnswer{404, `{"error":"not_found","message":"no such replay"}`}, true, "not_found", "no such replay"},
		{"401 json", fakeAnswer{401, `{"error":"unauthorized","message":"token"}`}, true, "unauthorized", "token"},
		{"409 json", fakeAnswer{409, `{"error":"conflict","message":"already ended"}`}, false, "conflict", "already ended"},
		{"500 html", fakeAnswer{500, `<html>oops</html>`}, false, "", "<html>oops</html>"},
		{"502 empty", fakeAnswer{502, ``}, false, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []Observation
			h, _ := newFake(t, map[string]fakeAnswer{"GET /v1/replays/r-1": c.ans}, HTTPOptions{Observer: func(o Observation) { got = append(got, o) }})
			_, err := h.GetReplay(context.Background(), sess, "r-1")
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *StatusError", err)
			}
			if se.Op != OpReplay || se.Code != c.ans.status || se.ErrCode != c.code || se.Message != c.msg {
				t.Errorf("StatusError = %+v", se)
			}
			if IsDenied(err) != c.denied {
				t.Errorf("IsDenied = %v, want %v", !c.denied, c.denied)
			}
			if StatusCode(err) != c.ans.status {
				t.Errorf("StatusCode = %d", StatusCode(err))
			}
			if errors.Is(err, ErrGarbage) || errors.Is(err, ErrUnreachable) {
				t.Errorf("status error also classed as garbage/unreachable: %v", err)
			}
			if len(got) != 1 || got[0].Status != c.ans.status || got[0].Err == nil || got[0].Bytes != len(c.ans.body) {
				t.Errorf("observations = %+v", got)
			}
		})
	}
	if IsDenied(nil) || IsDenied(errors.New("x")) {
		t.Error("IsDenied true for a non-status error")
	}
}

func TestHTTPGarbage(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		route string
		body  string
		field string
		call  func(h *HTTPTarget) error
	}{
		{"POST /v1/users", `not json`, "not JSON", func(h *HTTPTarget) error { _, err := h.Register(ctx, models.Patient); return err }},
		{"POST /v1/users", `{"id":"u","role":"patient"}`, "token", func(h *HTTPTarget) error { _, err := h.Register(ctx, models.Patient); return err }},
		{"POST /v1/users", `{"id":"u","role":"clinician","token":"t"}`, "role", func(h *HTTPTarget) error { _, err := h.Register(ctx, models.Patient); return err }},
		{"POST /v1/users", `{"id":7,"role":"patient","token":"t"}`, "field id", func(h *HTTPTarget) error { _, err := h.Register(ctx, models.Patient); return err }},
		{"POST /v1/appointments", `{"id":"a","patient_id":"u","clinician_id":"c"}`, "consultation_id", func(h *HTTPTarget) error { _, err := h.Book(ctx, sess, "c"); return err }},
		{"GET /v1/consultations/c-1", `{"id":"c-1","patient_id":"u","clinician_id":"c","state":"weird"}`, "state", func(h *HTTPTarget) error { _, err := h.Consultation(ctx, sess, "c-1"); return err }},
		{"POST /v1/consultations/c-1/join", `{"type":"answer","sdp":"x"}`, "segment", func(h *HTTPTarget) error { _, _, err := h.Join(ctx, sess, "c-1", "o"); return err }},
		{"POST /v1/consultations/c-1/join", `{"type":"offer","sdp":"x","segment":0}`, "type", func(h *HTTPTarget) error { _, _, err := h.Join(ctx, sess, "c-1", "o"); return err }},
		{"POST /v1/consultations/c-1/video", `{"type":"answer","sdp":""}`, "sdp", func(h *HTTPTarget) error { _, err := h.SwitchVideo(ctx, sess, "c-1", "o"); return err }},
		{"POST /v1/consultations/c-1/end", `{"consultation_id":"c-1","recording_id":"r"}`, "tracks", func(h *HTTPTarget) error { _, err := h.End(ctx, sess, "c-1"); return err }},
		{"POST /v1/consultations/c-1/end", `{"consultation_id":"c-1","recording_id":"r","tracks":[{"id":"t","owner":"u","kind":"smell"}]}`, "tracks[0].kind", func(h *HTTPTarget) error { _, err := h.End(ctx, sess, "c-1"); return err }},
		{"GET /v1/replays", `{"count":0}`, "replays", func(h *HTTPTarget) error { _, err := h.ListReplays(ctx, sess); return err }},
		{"GET /v1/replays", `{"replays":[{"id":"r"}],"count":1}`, "replays[0].consultation_id", func(h *HTTPTarget) error { _, err := h.ListReplays(ctx, sess); return err }},
		{"GET /v1/replays", `{"replays":[],"count":3}`, "count", func(h *HTTPTarget) error { _, err := h.ListReplays(ctx, sess); return err }},
		{"GET /v1/replays/r-1", `{"id":"r-1","consultation_id":"c","tracks":[{"id":"","owner":"u","kind":"audio"}]}`, "tracks[0].id", func(h *HTTPTarget) error { _, err := h.GetReplay(ctx, sess, "r-1"); return err }},
		{"GET /v1/replays/r-1", `[]`, "not a JSON object", func(h *HTTPTarget) error { _, err := h.GetReplay(ctx, sess, "r-1"); return err }},
	}
	for _, c := range cases {
		t.Run(c.route+" "+c.field, func(t *testing.T) {
			h, _ := newFake(t, map[string]fakeAnswer{c.route: {200, c.body}}, HTTPOptions{})
			err := c.call(h)
			if !errors.Is(err, ErrGarbage) {
				t.Fatalf("err = %v, want ErrGarbage", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("err %q does not name %q", err, c.field)
			}
		})
	}
}

func TestHTTPMaxBody(t *testing.T) {
	h, _ := newFake(t, map[string]fakeAnswer{"GET /v1/replays/r-1/media": {200, strings.Repeat("x", 100)}}, HTTPOptions{MaxBody: 99})
	if _, err := h.FetchMedia(context.Background(), sess, "r-1", "t"); !errors.Is(err, ErrGarbage) {
		t.Errorf("over-cap body: err = %v, want ErrGarbage", err)
	}
	h, _ = newFake(t, map[string]fakeAnswer{"GET /v1/replays/r-1/media": {200, strings.Repeat("x", 100)}}, HTTPOptions{MaxBody: 100})
	if b, err := h.FetchMedia(context.Background(), sess, "r-1", "t"); err != nil || len(b) != 100 {
		t.Errorf("at-cap body: %d bytes, %v", len(b), err)
	}
}

func TestHTTPUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var got []Observation
	h, err := NewHTTP("http://"+addr, HTTPOptions{Observer: func(o Observation) { got = append(got, o) }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = h.Health(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("refused: err = %v, want ErrUnreachable", err)
	}
	if len(got) != 1 || got[0].Status != 0 || got[0].Err == nil {
		t.Errorf("observations = %+v", got)
	}
}

func TestHTTPResetMidAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("no hijacker")
			return
		}
		c, _, _ := hj.Hijack()
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\""))
		c.Close()
	}))
	defer srv.Close()
	h, _ := NewHTTP(srv.URL, HTTPOptions{})
	defer h.Close()
	if _, err := h.Register(context.Background(), models.Patient); !errors.Is(err, ErrUnreachable) {
		t.Errorf("reset mid body: err = %v, want ErrUnreachable", err)
	}
}

func TestHTTPTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	defer close(release)
	h, _ := NewHTTP(srv.URL, HTTPOptions{Timeout: 100 * time.Millisecond})
	defer h.Close()

	err := h.Health(context.Background())
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: err = %v, want ErrUnreachable wrapping DeadlineExceeded", err)
	}

	// The caller's own cancellation is not the target's fault.
	h2, _ := NewHTTP(srv.URL, HTTPOptions{Timeout: 10 * time.Second})
	defer h2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = h2.Health(ctx)
	if errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller deadline: err = %v, want DeadlineExceeded and not ErrUnreachable", err)
	}
}

func TestNewHTTPValidates(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "127.0.0.1:80", "http://h/?q=1", "://bad", "http://h#f"} {
		if _, err := NewHTTP(u, HTTPOptions{}); err == nil {
			t.Errorf("NewHTTP(%q) accepted", u)
		}
	}
	h, err := NewHTTP("http://127.0.0.1:1/prefix/", HTTPOptions{})
	if err != nil || h.URL() != "http://127.0.0.1:1/prefix" {
		t.Errorf("NewHTTP with prefix = %v, %v", h, err)
	}
}

func TestHTTPEscapesIDs(t *testing.T) {
	h, f := newFake(t, nil, HTTPOptions{})
	h.GetReplay(context.Background(), sess, "../users?x=1")
	h.FetchMedia(context.Background(), sess, "r-1", "a&track=b")
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.seen[0].URL.Path; p != "/v1/replays/../users?x=1" || f.seen[0].URL.RawQuery != "" {
		t.Errorf("replay id not escaped: path %q query %q", p, f.seen[0].URL.RawQuery)
	}
	if q := f.seen[1].URL.Query()["track"]; len(q) != 1 || q[0] != "a&track=b" {
		t.Errorf("track id not escaped: %q", f.seen[1].URL.RawQuery)
	}
}

func TestHTTPConcurrentUsers(t *testing.T) {
	var mu sync.Mutex
	n := 0
	h, _ := newFake(t, nil, HTTPOptions{Observer: func(Observation) { mu.Lock(); n++; mu.Unlock() }})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Register(context.Background(), models.Patient); err != nil {
				errs <- err
			}
			if _, err := h.ListReplays(context.Background(), sess); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n != 128 {
		t.Errorf("%d observations for 128 requests", n)
	}
}
