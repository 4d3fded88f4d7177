package clinic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Fuzz targets for every request decoder: garbage never panics and is always
// answered with a 4xx naming a code. Run one with
// go test -run '^$' -fuzz FuzzDecodeOffer ./clinic

func check4xx(t *testing.T, e *apiError) {
	t.Helper()
	if e.Status < 400 || e.Status > 499 || e.Code == "" || e.Message == "" {
		t.Fatalf("error %+v is not a complete 4xx", e)
	}
}

func FuzzDecodeUserRequest(f *testing.F) {
	for _, s := range []string{`{"role":"patient"}`, `{"role":"clinician","name":"Dr. Who"}`, `{"role":`, ``, `null`, `[]`,
		`{"role":"patient"}{}`, `{"role":"patient","name":"\u0000"}`, `"x"`, `{"role":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := decodeUserRequest(bytes.NewReader(body))
		if e != nil {
			check4xx(t, e)
			return
		}
		if req.Role != rolePatient && req.Role != roleClinician {
			t.Fatalf("accepted role %q", req.Role)
		}
	})
}

func FuzzDecodeAppointmentRequest(f *testing.F) {
	for _, s := range []string{`{"clinician_id":"u_1","mode":"audio"}`, `{"clinician_id":"u_1"}`, `{"mode":"video"}`, `{}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := decodeAppointmentRequest(bytes.NewReader(body))
		if e != nil {
			check4xx(t, e)
			return
		}
		if req.ClinicianID == "" || req.Mode != "audio" {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func FuzzDecodeOffer(f *testing.F) {
	for _, s := range []string{`{"type":"offer","sdp":"v=0\r\n"}`, `{"type":"answer","sdp":"v=0"}`, `{"type":"offer"}`,
		`{"type":"offer","sdp":"hello"}`, `{"type":"offer","sdp":1}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := decodeOffer(bytes.NewReader(body))
		if e != nil {
			check4xx(t, e)
			return
		}
		if req.Type != "offer" || !strings.Contains(req.SDP, "v=0") {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"", "limit=10", "limit=0", "offset=5&limit=1", "limit=1&limit=2", "limit=9999999999999999999", "offset=-1", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // what r.URL.Query() does: bad pairs dropped
		q, e := parseListQuery(v)
		if e != nil {
			check4xx(t, e)
			return
		}
		if q.Limit != -1 && (q.Limit < 1 || q.Limit > maxListLimit) || q.Offset < 0 {
			t.Fatalf("accepted %+v", q)
		}
	})
}

func FuzzParseTrackQuery(f *testing.F) {
	for _, s := range []string{"track=t_1", "", "track=", "track=a&track=b", "track=" + strings.Repeat("x", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw)
		tid, e := parseTrackQuery(v)
		if e != nil {
			check4xx(t, e)
			return
		}
		if tid == "" || len(tid) > maxIDLen {
			t.Fatalf("accepted track %q", tid)
		}
	})
}

// FuzzHandler drives whole requests (method, path, query, body, token or not)
// through the real handler with the fake engine: never a 5xx, errors are JSON.
func FuzzHandler(f *testing.F) {
	s := startFake(f, "")
	c := newAPIClient(f, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	b := c.book(p, d)
	f.Add("POST", "/v1/users", `{"role":"patient"}`, false)
	f.Add("POST", "/v1/appointments", `{"clinician_id":"`+d.ID+`"}`, true)
	f.Add("POST", "/v1/consultations/"+b.ConsultationID+"/join", `{"type":"offer","sdp":"v=0\r\nm=audio"}`, true)
	f.Add("POST", "/v1/consultations/"+b.ConsultationID+"/video", `{"type":"offer","sdp":"v=0"}`, true)
	f.Add("POST", "/v1/consultations/"+b.ConsultationID+"/end", ``, true)
	f.Add("GET", "/v1/replays?limit=x", ``, true)
	f.Add("GET", "/v1/replays/r_x/media?track=", ``, true)
	f.Add("GET", "/v1/consultations/%00", ``, true)
	f.Add("PUT", "/v1/users", `{}`, false)
	f.Fuzz(func(t *testing.T, method, target, body string, auth bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(target, "//") {
			return
		}
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || strings.ContainsFunc(method, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return
		}
		if u.Path == "/metrics" {
			return // Prometheus text, not JSON
		}
		req := &http.Request{Method: method, URL: u, RequestURI: target, Header: http.Header{},
			Body: http.NoBody, Host: "clinic.test", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		if body != "" {
			req.Body = httptest.NewRequest("POST", "/", strings.NewReader(body)).Body
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+p.Token)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, w.Code, w.Body.Bytes())
		}
		if w.Code >= 400 {
			var ej errJSON
			if err := json.Unmarshal(w.Body.Bytes(), &ej); err != nil || ej.Error == "" {
				t.Fatalf("%s %s: error body %q is not a JSON error", method, target, w.Body.Bytes())
			}
		}
	})
}
