package driver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestProbeRequestVariants checks what each matrix request carries on the
// wire: method, path, query, token and override.
func TestProbeRequestVariants(t *testing.T) {
	type seen struct {
		method, path, auth, xuser, body string
		query                           map[string][]string
	}
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("X-User-Id"), string(b), r.URL.Query()}
		mu.Unlock()
		if r.URL.Query().Get("as") != "" {
			w.Write([]byte("leaked body")) // 200 with bytes
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"not_found","message":"no"}`))
	}))
	defer srv.Close()
	h, err := NewHTTP(srv.URL, HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]Route{}
	for _, r := range h.Routes() {
		routes[r.Name] = r
	}
	if len(routes) != 6 {
		t.Fatalf("routes %v", routes)
	}
	tok := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	me := Session{ID: "u_me", Token: tok}
	ids := ProbeIDs{Consultation: "c/1", Recording: "r_1", Track: "t 1"}
	do := func(route string, cred Credential, o *Override, ids ProbeIDs) (AuthzAnswer, seen) {
		t.Helper()
		ans, err := h.ProbeRequest(context.Background(), AuthzRequest{Route: routes[route], As: me, Cred: cred, Override: o, Claim: "u_victim", IDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return ans, last
	}
	ans, s := do("GET /v1/replays/{rid}/media?track=", CredToken, nil, ids)
	if ans.Status != 404 || ans.Bytes != 0 || s.method != "GET" || s.path != "/v1/replays/r_1/media" || s.query["track"][0] != "t 1" || s.auth != "Bearer "+tok {
		t.Errorf("media: %+v %+v", ans, s)
	}
	_, s = do("POST /v1/consultations/{cid}/end", CredNone, &Override{"header", "X-User-Id"}, ids)
	if s.method != "POST" || s.path != "/v1/consultations/c/1/end" || s.auth != "" || s.xuser != "u_victim" {
		t.Errorf("end: %+v", s)
	}
	_, s = do("POST /v1/consultations/{cid}/join", CredMalformed, nil, ids)
	var offer map[string]string
	if err := json.Unmarshal([]byte(s.body), &offer); err != nil || offer["type"] != "offer" || !strings.HasPrefix(offer["sdp"], "v=0") {
		t.Errorf("join body %q: %v", s.body, err)
	}
	bad := strings.TrimPrefix(s.auth, "Bearer ")
	if len(bad) != len(tok) || bad == tok {
		t.Errorf("malformed token %q: want the shape of %q, not it", bad, tok)
	}
	_, s = do("GET /v1/replays/{rid}", CredTruncated, nil, ids)
	if got := strings.TrimPrefix(s.auth, "Bearer "); got != tok[:32] {
		t.Errorf("truncated token %q", got)
	}
	ans, s = do("GET /v1/consultations/{cid}", CredToken, &Override{"query", "as"}, ProbeIDs{Consultation: "c_2", Recording: "r_mine"})
	if ans.Status != 200 || ans.Bytes != len("leaked body") || s.query["as"][0] != "u_victim" || s.query["recording_id"][0] != "r_mine" {
		t.Errorf("override+mix: %+v %+v", ans, s)
	}
	if _, err := h.ProbeRequest(context.Background(), AuthzRequest{Route: Route{Name: "GET /nope"}}); err == nil {
		t.Error("unknown route accepted")
	}
}
