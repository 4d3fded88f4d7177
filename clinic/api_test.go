package clinic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const fakeOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
const fakeVideoOffer = fakeOffer + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"

func offerBody(sdp string) map[string]string { return map[string]string{"type": "offer", "sdp": sdp} }

// fakeCall books, joins both participants and ends; it returns the end answer.
func fakeCall(c *apiClient, p, d testUser) (bookResp, endJSON) {
	c.t.Helper()
	b := c.book(p, d)
	base := "/v1/consultations/" + b.ConsultationID
	c.must(200, "POST", base+"/join", p.Token, offerBody(fakeOffer), nil)
	c.must(200, "POST", base+"/join", d.Token, offerBody(fakeOffer), nil)
	var e endJSON
	c.must(200, "POST", base+"/end", p.Token, nil, &e)
	return b, e
}

func TestAPIFlowWithFakeEngine(t *testing.T) {
	s := startFake(t, "")
	c := newAPIClient(t, s.URL())
	c.must(200, "GET", "/healthz", "", nil, nil)
	p, d, other := c.register("patient"), c.register("clinician"), c.register("patient")

	b := c.book(p, d)
	if b.PatientID != p.ID || b.ClinicianID != d.ID || b.Mode != "audio" || b.ConsultationID == "" {
		t.Fatalf("booking: %+v", b)
	}
	var cons consultation
	c.must(200, "GET", "/v1/consultations/"+b.ConsultationID, d.Token, nil, &cons)
	if cons.State != stateBooked || cons.RecordingID == "" || cons.AppointmentID != b.ID || cons.Video {
		t.Errorf("booked consultation: %+v", cons)
	}
	base := "/v1/consultations/" + b.ConsultationID
	var ans sdpMessage
	c.must(200, "POST", base+"/join", p.Token, offerBody(fakeOffer), &ans)
	if ans.Type != "answer" || ans.Segment == nil || *ans.Segment != 1 {
		t.Errorf("join answer: %+v", ans)
	}
	c.must(200, "POST", base+"/join", d.Token, offerBody(fakeOffer), nil)
	c.must(200, "POST", base+"/video", p.Token, offerBody(fakeVideoOffer), &ans)
	c.must(200, "GET", base, p.Token, nil, &cons)
	if cons.State != stateActive || !cons.Video {
		t.Errorf("active consultation: %+v", cons)
	}
	if l := c.list(p); l.Count != 0 {
		t.Errorf("unfinished recording listed: %+v", l)
	}
	var e endJSON
	c.must(200, "POST", base+"/end", d.Token, nil, &e)
	if e.State != stateEnded || e.RecordingID != cons.RecordingID || len(e.Tracks) != 2 {
		t.Fatalf("end answer: %+v", e)
	}
	c.must(409, "POST", base+"/end", p.Token, nil, nil)

	for _, u := range []testUser{p, d} {
		l := c.list(u)
		if got := listIDs(l); !slices.Equal(got, []string{e.RecordingID}) {
			t.Errorf("%s list = %v, want [%s]", u.Role, got, e.RecordingID)
			continue
		}
		r := l.Replays[0]
		if r.ConsultationID != b.ConsultationID || r.Tracks != 2 || !strings.Contains(r.Title, d.Name) ||
			r.StartedAt == "" || r.EndedAt == "" {
			t.Errorf("summary: %+v", r)
		}
		if !slices.Equal(r.Participants, sortedPair(p.ID, d.ID)) {
			t.Errorf("participants %v", r.Participants)
		}
	}
	if l := c.list(other); l.Count != 0 {
		t.Errorf("third user sees %v", listIDs(l))
	}
	var rep replayJSON
	c.must(200, "GET", "/v1/replays/"+e.RecordingID, p.Token, nil, &rep)
	if len(rep.Tracks) != 2 {
		t.Fatalf("replay tracks: %+v", rep)
	}
	for _, tr := range rep.Tracks {
		r := c.must(200, "GET", "/v1/replays/"+e.RecordingID+"/media?track="+tr.ID, d.Token, nil, nil)
		if ct := r.header.Get("Content-Type"); ct != "audio/ogg" {
			t.Errorf("content type %q", ct)
		}
		if want := fakePayload(tr.Owner, tr.Segment); !bytes.Equal(r.body, want) {
			t.Errorf("track %s bytes %q, want %q", tr.ID, r.body, want)
		}
	}
}

func sortedPair(a, b string) []string {
	s := []string{a, b}
	slices.Sort(s)
	return s
}

func TestAuthorizationDeniesNonParticipants(t *testing.T) {
	s := startFake(t, "")
	c := newAPIClient(t, s.URL())
	p, d, intruder, doc2 := c.register("patient"), c.register("clinician"), c.register("patient"), c.register("clinician")
	b, e := fakeCall(c, p, d)
	live := c.book(p, d) // a consultation still booked
	tid := e.Tracks[0].ID
	for _, who := range []testUser{intruder, doc2} {
		for _, rq := range []struct{ method, path string }{
			{"GET", "/v1/consultations/" + b.ConsultationID},
			{"GET", "/v1/consultations/" + live.ConsultationID},
			{"POST", "/v1/consultations/" + live.ConsultationID + "/join"},
			{"POST", "/v1/consultations/" + live.ConsultationID + "/video"},
			{"POST", "/v1/consultations/" + live.ConsultationID + "/end"},
			{"GET", "/v1/replays/" + e.RecordingID},
			{"GET", "/v1/replays/" + e.RecordingID + "/media?track=" + tid},
		} {
			var body any
			if rq.method == "POST" {
				body = offerBody(fakeOffer)
			}
			r := c.do(rq.method, rq.path, who.Token, body)
			if r.status != 403 && r.status != 404 {
				t.Errorf("%s %s %s: status %d, want 403/404", who.Role, rq.method, rq.path, r.status)
			}
			if bytes.Contains(r.body, []byte("OggS")) || bytes.Contains(r.body, []byte(p.ID)) {
				t.Errorf("%s %s: leaked %q", rq.method, rq.path, r.body)
			}
		}
	}
	// The denied attempts changed nothing.
	var cons consultation
	c.must(200, "GET", "/v1/consultations/"+live.ConsultationID, p.Token, nil, &cons)
	if cons.State != stateBooked {
		t.Errorf("intruder changed the consultation: %+v", cons)
	}
	// A track id from another recording does not open through this one.
	_, e2 := fakeCall(c, intruder, doc2)
	c.must(404, "GET", "/v1/replays/"+e2.RecordingID+"/media?track="+tid, intruder.Token, nil, nil)
}

func TestErrorTable(t *testing.T) {
	s := startFake(t, "")
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	b := c.book(p, d)
	ended, e := fakeCall(c, p, d)
	cb := "/v1/consultations/" + b.ConsultationID
	huge := `{"role":"patient","name":"` + strings.Repeat("x", maxBody) + `"}`
	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code         string
	}{
		{"malformed json", "POST", "/v1/users", "", `{"role":`, 400, "malformed_json"},
		{"empty body", "POST", "/v1/users", "", ``, 400, "malformed_json"},
		{"array body", "POST", "/v1/users", "", `[]`, 400, "malformed_json"},
		{"trailing data", "POST", "/v1/users", "", `{"role":"patient"} {}`, 400, "malformed_json"},
		{"wrong type", "POST", "/v1/users", "", `{"role":7}`, 400, "malformed_json"},
		{"unknown role", "POST", "/v1/users", "", `{"role":"admin"}`, 400, "invalid_role"},
		{"long name", "POST", "/v1/users", "", map[string]string{"role": "patient", "name": strings.Repeat("n", 201)}, 400, "invalid_name"},
		{"body too large", "POST", "/v1/users", "", huge, 413, "body_too_large"},
		{"no token", "POST", "/v1/appointments", "", map[string]string{"clinician_id": d.ID}, 401, "unauthorized"},
		{"bad token", "GET", "/v1/replays", strings.Repeat("ab", 32), nil, 401, "unauthorized"},
		{"short token", "GET", "/v1/replays", "abc", nil, 401, "unauthorized"},
		{"clinician books", "POST", "/v1/appointments", d.Token, map[string]string{"clinician_id": d.ID}, 403, "forbidden_role"},
		{"missing clinician", "POST", "/v1/appointments", p.Token, map[string]string{"mode": "audio"}, 400, "missing_field"},
		{"unknown clinician", "POST", "/v1/appointments", p.Token, map[string]string{"clinician_id": "u_nope"}, 404, "clinician_not_found"},
		{"patient as clinician", "POST", "/v1/appointments", p.Token, map[string]string{"clinician_id": p.ID}, 404, "clinician_not_found"},
		{"video mode", "POST", "/v1/appointments", p.Token, map[string]string{"clinician_id": d.ID, "mode": "video"}, 400, "invalid_mode"},
		{"unknown consultation", "GET", "/v1/consultations/c_nope", p.Token, nil, 404, "not_found"},
		{"join without sdp", "POST", cb + "/join", p.Token, map[string]string{"type": "offer"}, 400, "invalid_offer"},
		{"join answer type", "POST", cb + "/join", p.Token, map[string]string{"type": "answer", "sdp": fakeOffer}, 400, "invalid_offer"},
		{"join not sdp", "POST", cb + "/join", p.Token, offerBody("hello"), 400, "bad_sdp"},
		{"join engine rejects sdp", "POST", cb + "/join", p.Token, offerBody("v=0\r\ngarbage"), 400, "bad_sdp"},
		{"switch before join", "POST", cb + "/video", p.Token, offerBody(fakeVideoOffer), 409, "not_joined"},
		{"join ended", "POST", "/v1/consultations/" + ended.ConsultationID + "/join", p.Token, offerBody(fakeOffer), 409, "consultation_ended"},
		{"end twice", "POST", "/v1/consultations/" + ended.ConsultationID + "/end", d.Token, nil, 409, "already_ended"},
		{"unknown replay", "GET", "/v1/replays/r_nope", p.Token, nil, 404, "not_found"},
		{"media without track", "GET", "/v1/replays/" + e.RecordingID + "/media", p.Token, nil, 400, "missing_track"},
		{"media unknown track", "GET", "/v1/replays/" + e.RecordingID + "/media?track=t_nope", p.Token, nil, 404, "not_found"},
		{"bad limit", "GET", "/v1/replays?limit=abc", p.Token, nil, 400, "invalid_query"},
		{"negative offset", "GET", "/v1/replays?offset=-1", p.Token, nil, 400, "invalid_query"},
		{"no route", "GET", "/v1/nothing", p.Token, nil, 404, "no_route"},
		{"wrong method", "DELETE", "/v1/users", "", nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(tt.method, tt.path, tt.token, tt.body)
			if r.status != tt.status {
				t.Errorf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			var ej errJSON
			r.json(t, &ej)
			if ej.Error != tt.code || ej.Message == "" {
				t.Errorf("error body %s, want code %q", r.body, tt.code)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
	// Switch after join without a video m-line is the engine's call: 400.
	c.must(200, "POST", cb+"/join", p.Token, offerBody(fakeOffer), nil)
	r := c.do("POST", cb+"/video", p.Token, offerBody(fakeOffer))
	if r.status != 400 || !strings.Contains(string(r.body), "no_video") {
		t.Errorf("switch without video: %d %s", r.status, r.body)
	}
}

// TestConcurrentEndOneWinner: both participants hang up at once; exactly one
// end succeeds and the recording is finalised once.
func TestConcurrentEndOneWinner(t *testing.T) {
	s := startFake(t, "")
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	b := c.book(p, d)
	base := "/v1/consultations/" + b.ConsultationID
	c.must(200, "POST", base+"/join", p.Token, offerBody(fakeOffer), nil)
	c.must(200, "POST", base+"/join", d.Token, offerBody(fakeOffer), nil)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, u := range []testUser{p, d} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = c.do("POST", base+"/end", u.Token, nil).status
		}()
	}
	wg.Wait()
	slices.Sort(codes)
	if !slices.Equal(codes, []int{200, 409}) {
		t.Errorf("end codes %v, want [200 409]", codes)
	}
}

// TestManyConcurrentWrites: hundreds of concurrent registrations and bookings
// go through the single writer without SQLITE_BUSY (no 5xx).
func TestManyConcurrentWrites(t *testing.T) {
	s := startFake(t, "")
	c := newAPIClient(t, s.URL())
	d := c.register("clinician")
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	fails := map[int]int{}
	sem := make(chan struct{}, 64)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := c.do("POST", "/v1/users", "", map[string]string{"role": "patient"})
			var u testUser
			if r.status == 201 {
				json.Unmarshal(r.body, &u)
			}
			if r.status != 201 || u.Token == "" {
				mu.Lock()
				fails[r.status]++
				mu.Unlock()
				return
			}
			r = c.do("POST", "/v1/appointments", u.Token, map[string]string{"clinician_id": d.ID})
			if r.status != 201 {
				mu.Lock()
				fails[r.status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Errorf("failed requests by status: %v", fails)
	}
}

func TestMetricsExposed(t *testing.T) {
	s := startFake(t, "")
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	b := c.book(p, d)
	base := "/v1/consultations/" + b.ConsultationID
	c.must(200, "POST", base+"/join", p.Token, offerBody(fakeOffer), nil)
	c.must(200, "POST", base+"/video", p.Token, offerBody(fakeVideoOffer), nil)
	body := string(c.must(200, "GET", "/metrics", "", nil, nil).body)
	for _, want := range []string{
		`clinic_http_request_duration_seconds_count{code="201",route="POST /v1/users"} 2`,
		`clinic_calls_active 1`,
		`clinic_switches_total 1`,
		`clinic_recordings_finalised_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if problems, err := testutil.GatherAndLint(s.reg); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %+v", err, problems)
	}
	c.must(200, "POST", base+"/end", p.Token, nil, nil)
	body = string(c.must(200, "GET", "/metrics", "", nil, nil).body)
	for _, want := range []string{`clinic_calls_active 0`, `clinic_recordings_finalised_total 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics after end lack %q", want)
		}
	}
}

func TestRestartKeepsFinishedRecordingsFake(t *testing.T) {
	dir := t.TempDir()
	s := startFake(t, dir)
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	_, e := fakeCall(c, p, d)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s2 := startFake(t, dir)
	c2 := newAPIClient(t, s2.URL())
	for _, u := range []testUser{p, d} {
		if got := listIDs(c2.list(u)); !slices.Equal(got, []string{e.RecordingID}) {
			t.Errorf("after restart %s lists %v", u.Role, got)
		}
	}
	var rep replayJSON
	c2.must(200, "GET", "/v1/replays/"+e.RecordingID, p.Token, nil, &rep)
	for _, tr := range rep.Tracks {
		r := c2.must(200, "GET", "/v1/replays/"+e.RecordingID+"/media?track="+tr.ID, p.Token, nil, nil)
		if !bytes.Equal(r.body, fakePayload(tr.Owner, tr.Segment)) {
			t.Errorf("track %s changed across restart", tr.ID)
		}
	}
}

func TestHandlerPanicIsA500(t *testing.T) {
	s := startFake(t, "")
	s.mux.HandleFunc("GET /test/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	c := newAPIClient(t, s.URL())
	r := c.do("GET", "/test/panic", "", nil)
	var ej errJSON
	r.json(t, &ej)
	if r.status != 500 || ej.Error != "internal" {
		t.Errorf("panic answered %d %s", r.status, r.body)
	}
	c.must(200, "GET", "/healthz", "", nil, nil) // still serving
}
