package clinic

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// apiClient is a small HTTP client for the contract in docs/api.md.
type apiClient struct {
	t    testing.TB
	base string
	hc   *http.Client
}

func newAPIClient(t testing.TB, base string) *apiClient {
	c := &apiClient{t: t, base: base, hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %d response %q: %v", r.status, r.body, err)
	}
}

func (c *apiClient) do(method, path, token string, body any) resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatalf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Errorf, not Fatalf: do runs on helper goroutines too.
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, path, err)
		return resp{status: -1}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Errorf("read %s %s: %v", method, path, err)
		return resp{status: -1}
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// must checks the status and decodes the body into v (if not nil).
func (c *apiClient) must(want int, method, path, token string, body, v any) resp {
	c.t.Helper()
	r := c.do(method, path, token, body)
	if r.status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if v != nil {
		r.json(c.t, v)
	}
	return r
}

type testUser struct {
	ID, Role, Name, Token string
}

func (c *apiClient) register(role string) testUser {
	c.t.Helper()
	var u testUser
	c.must(201, "POST", "/v1/users", "", map[string]string{"role": role}, &u)
	if u.ID == "" || len(u.Token) != 64 || u.Role != role {
		c.t.Fatalf("register %s: got %+v", role, u)
	}
	return u
}

type bookResp struct {
	ID             string `json:"id"`
	ConsultationID string `json:"consultation_id"`
	PatientID      string `json:"patient_id"`
	ClinicianID    string `json:"clinician_id"`
	Mode           string `json:"mode"`
}

func (c *apiClient) book(p, d testUser) bookResp {
	c.t.Helper()
	var b bookResp
	c.must(201, "POST", "/v1/appointments", p.Token, map[string]string{"clinician_id": d.ID, "mode": "audio"}, &b)
	return b
}

type trackJSON struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Kind    string `json:"kind"`
	Codec   string `json:"codec"`
	Format  string `json:"format"`
	Segment int    `json:"segment"`
	Frames  int64  `json:"frames"`
	Bytes   int64  `json:"bytes"`
}

type endJSON struct {
	ConsultationID string      `json:"consultation_id"`
	RecordingID    string      `json:"recording_id"`
	State          string      `json:"state"`
	Tracks         []trackJSON `json:"tracks"`
}

type summaryJSON struct {
	ID             string   `json:"id"`
	ConsultationID string   `json:"consultation_id"`
	Title          string   `json:"title"`
	Participants   []string `json:"participants"`
	StartedAt      string   `json:"started_at"`
	EndedAt        string   `json:"ended_at"`
	Tracks         int      `json:"tracks"`
}

type listJSON struct {
	Replays []summaryJSON `json:"replays"`
	Count   int           `json:"count"`
}

type replayJSON struct {
	ID             string      `json:"id"`
	ConsultationID string      `json:"consultation_id"`
	Title          string      `json:"title"`
	Participants   []string    `json:"participants"`
	Tracks         []trackJSON `json:"tracks"`
}

func (c *apiClient) list(u testUser) listJSON {
	c.t.Helper()
	var l listJSON
	c.must(200, "GET", "/v1/replays", u.Token, nil, &l)
	if l.Count != len(l.Replays) {
		c.t.Errorf("list count %d != %d entries", l.Count, len(l.Replays))
	}
	return l
}

func listIDs(l listJSON) []string {
	out := []string{}
	for _, r := range l.Replays {
		out = append(out, r.ID)
	}
	return out
}

type errJSON struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}
