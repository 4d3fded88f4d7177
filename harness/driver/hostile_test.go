package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telechaos/telechaos/models"
)

// redirectSink is a second listener a hostile target redirects to; it
// counts the requests that reach it (none may).
func redirectSink(t *testing.T) (url string, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, registerAnswer)
	}))
	t.Cleanup(sink.Close)
	return sink.URL, hits
}

func TestHTTPSRedirectNotFollowed(t *testing.T) {
	sinkURL, hits := redirectSink(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, sinkURL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	// srv.Client trusts the test certificate; its default CheckRedirect
	// would follow.
	h, err := NewHTTP(srv.URL, HTTPOptions{Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if h.lean != nil {
		t.Fatal("https target uses the lean client")
	}
	_, err = h.ListReplays(context.Background(), sess)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Errorf("err = %v, want a *StatusError with code 302", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
	if srv.Client().CheckRedirect != nil {
		t.Error("NewHTTP changed the caller's client")
	}
}

// The client NewHTTP builds for https does not follow either.
func TestHTTPSOwnClientNoRedirect(t *testing.T) {
	h, err := NewHTTP("https://127.0.0.1:1", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.client.CheckRedirect == nil || h.client.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("the https client follows redirects")
	}
}

func TestLeanRedirectNotFollowed(t *testing.T) {
	sinkURL, hits := redirectSink(t)
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(302, "", "Location: "+sinkURL+"/v1/replays\r\n"))
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	_, err := h.ListReplays(context.Background(), sess)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Errorf("err = %v, want a *StatusError with code 302", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
}

// An HTTP/1.0 answer has no chunked encoding: its body runs to the close.
func TestLeanHTTP10IgnoresChunked(t *testing.T) {
	const body = "4\r\nOggS\r\n0\r\n\r\n"
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
		return false
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	b, err := h.FetchMedia(context.Background(), sess, "r", "t")
	if err != nil || string(b) != body {
		t.Errorf("FetchMedia = %q, %v; want the raw bytes %q as net/http reads them", b, err, body)
	}
}

// hangingServers answer every request with a 200 declaring length bytes,
// then send nothing more until the test ends: one plain (the lean client),
// one TLS (net/http).
func hangingServers(t *testing.T, length string) map[string]HTTPOptions {
	t.Helper()
	release := make(chan struct{})
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+length+"\r\n\r\nOggS")
		<-release
		return false
	})
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", length)
		w.WriteHeader(200)
		io.WriteString(w, "OggS")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Cleanups run last first: release the handlers, then close.
	t.Cleanup(tls.Close)
	t.Cleanup(func() { close(release) })
	return map[string]HTTPOptions{s.url(): {}, tls.URL: {Client: tls.Client()}}
}

// A 2 GiB Content-Length against the 64 MiB default is refused from the
// header, without waiting for (or buffering) the body that never comes.
func TestHTTPDeclaredTooLargeRefusedUnread(t *testing.T) {
	for url, opts := range hangingServers(t, "2147483648") {
		var obs []Observation
		opts.Observer = func(o Observation) { obs = append(obs, o) }
		opts.Timeout = 30 * time.Second // a safety net: the refusal is immediate
		h, err := NewHTTP(url, opts)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = h.FetchMedia(context.Background(), sess, "r", "t")
		h.Close()
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrGarbage) {
			t.Fatalf("%s: err = %v, want ErrTooLarge (and ErrGarbage)", url, err)
		}
		if want := "body of 2147483648 bytes exceeds the 64 MiB limit"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %q does not say %q", url, err, want)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("%s: refusal took %v", url, el)
		}
		if len(obs) != 1 || obs[0].Status != 200 || obs[0].Bytes != 2147483648 || obs[0].Err == nil {
			t.Errorf("%s: observations = %+v, want one 200 of 2147483648 bytes with the error", url, obs)
		}
	}
}

// Bodies without a length fail with ErrTooLarge when they cross MaxBody;
// the observation says how far they got.
func TestHTTPUndeclaredTooLarge(t *testing.T) {
	for name, raw := range map[string]string{
		"chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" + strings.Repeat("x", 50) + "\r\n32\r\n" + strings.Repeat("y", 50) + "\r\n0\r\n\r\n",
		"close":   "HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat("x", 100),
	} {
		s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
			io.WriteString(w, raw)
			return false
		})
		var obs []Observation
		h := leanTarget(t, s.url(), HTTPOptions{MaxBody: 99, Observer: func(o Observation) { obs = append(obs, o) }})
		_, err := h.FetchMedia(context.Background(), sess, "r", "t")
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "exceeds the 99-byte limit") {
			t.Errorf("%s: err = %v, want ErrTooLarge naming the limit", name, err)
		}
		if len(obs) != 1 || obs[0].Bytes != 100 || obs[0].Err == nil {
			t.Errorf("%s: observations = %+v, want 100 bytes seen", name, obs)
		}
	}
}

// A 2xx whose body does not decode, or decodes to what the contract does
// not allow, is a failed request: its Observation carries the error.
func TestHTTPGarbageObservedAsError(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		route, body string
		call        func(h *HTTPTarget) error
	}{
		{"GET /v1/replays", `{"replays":[{"id":"r"`, func(h *HTTPTarget) error { _, err := h.ListReplays(ctx, sess); return err }},
		{"GET /v1/replays", `{"replays":[{"id":"r"}],"count":1}`, func(h *HTTPTarget) error { _, err := h.ListReplays(ctx, sess); return err }},
		{"POST /v1/users", `{"id":"u","role":"patient"}`, func(h *HTTPTarget) error { _, err := h.Register(ctx, models.Patient); return err }},
		{"POST /v1/appointments", `garbage`, func(h *HTTPTarget) error { _, err := h.Book(ctx, sess, "c"); return err }},
		{"POST /v1/consultations/c-1/join", `{"type":"answer","sdp":"x"}`, func(h *HTTPTarget) error { _, _, err := h.Join(ctx, sess, "c-1", "o"); return err }},
		{"POST /v1/consultations/c-1/video", `{"type":"offer","sdp":"x"}`, func(h *HTTPTarget) error { _, err := h.SwitchVideo(ctx, sess, "c-1", "o"); return err }},
		{"POST /v1/consultations/c-1/end", `{"consultation_id":"c-1","recording_id":"r","tracks":[{"id":"t"}]}`, func(h *HTTPTarget) error { _, err := h.End(ctx, sess, "c-1"); return err }},
		{"GET /v1/consultations/c-1", `{"id":"c-1","patient_id":"u","clinician_id":"c","state":"weird"}`, func(h *HTTPTarget) error { _, err := h.Consultation(ctx, sess, "c-1"); return err }},
		{"GET /v1/replays/r-1", `{"id":"r-1","consultation_id":"c"}`, func(h *HTTPTarget) error { _, err := h.GetReplay(ctx, sess, "r-1"); return err }},
	}
	for _, c := range cases {
		var obs []Observation
		h, _ := newFake(t, map[string]fakeAnswer{c.route: {200, c.body}}, HTTPOptions{Observer: func(o Observation) { obs = append(obs, o) }})
		err := c.call(h)
		if !errors.Is(err, ErrGarbage) {
			t.Errorf("%s %s: err = %v, want ErrGarbage", c.route, c.body, err)
		}
		if len(obs) != 1 || obs[0].Status != 200 || !errors.Is(obs[0].Err, ErrGarbage) || obs[0].Bytes != len(c.body) {
			t.Errorf("%s %s: observations = %+v, want one 200 with the ErrGarbage", c.route, c.body, obs)
		}
	}
}

func replayList(n int, escaped bool) string {
	var sb strings.Builder
	sb.WriteString(`{"replays":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		title := "t"
		if escaped {
			title = `\u0074` // encoding/json's path
		}
		fmt.Fprintf(&sb, `{"id":"r-%d","consultation_id":"c-%d","title":"%s","participants":["u-1"],"tracks":1}`, i, i, title)
	}
	fmt.Fprintf(&sb, `],"count":%d}`, n)
	return sb.String()
}

// A list past MaxList is garbage, on the fast path and on encoding/json's.
func TestHTTPListOverMaxList(t *testing.T) {
	ctx := context.Background()
	for _, escaped := range []bool{false, true} {
		h, _ := newFake(t, map[string]fakeAnswer{"GET /v1/replays": {200, replayList(4, escaped)}}, HTTPOptions{MaxList: 3})
		_, err := h.ListReplays(ctx, sess)
		if !errors.Is(err, ErrGarbage) || !strings.Contains(err.Error(), "limit of 3 entries") {
			t.Errorf("4 replays, MaxList 3 (escaped %v): err = %v, want ErrGarbage naming the limit", escaped, err)
		}
		h, _ = newFake(t, map[string]fakeAnswer{"GET /v1/replays": {200, replayList(3, escaped)}}, HTTPOptions{MaxList: 3})
		if got, err := h.ListReplays(ctx, sess); err != nil || len(got) != 3 {
			t.Errorf("3 replays, MaxList 3 (escaped %v): %d, %v", escaped, len(got), err)
		}
	}
	tracks := `{"id":"r-1","consultation_id":"c-1","tracks":[` + strings.Repeat(trackJSONText+",", 3) + trackJSONText + `]}`
	h, _ := newFake(t, map[string]fakeAnswer{"GET /v1/replays/r-1": {200, tracks}}, HTTPOptions{MaxList: 3})
	if _, err := h.GetReplay(ctx, sess, "r-1"); !errors.Is(err, ErrGarbage) || !strings.Contains(err.Error(), "limit of 3 entries") {
		t.Errorf("4 tracks, MaxList 3: err = %v, want ErrGarbage naming the limit", err)
	}
	// The default is 10000.
	h, _ = newFake(t, map[string]fakeAnswer{"GET /v1/replays": {200, replayList(10001, false)}}, HTTPOptions{})
	if _, err := h.ListReplays(ctx, sess); !errors.Is(err, ErrGarbage) || !strings.Contains(err.Error(), "limit of 10000 entries") {
		t.Errorf("10001 replays: err = %v, want ErrGarbage naming the default limit", err)
	}
}

// The fast path stops building at the limit.
func TestFastListStopsAtMaxList(t *testing.T) {
	var o listAnswer
	d := jdec{b: []byte(replayList(100, false)), maxList: 3}
	if o.fastDecode(&d) || !d.tooLong {
		t.Fatal("fast path took a list past its limit")
	}
	if o.replays != nil && len(*o.replays) > 3 {
		t.Errorf("built %d entries before giving up", len(*o.replays))
	}
}

// A list answer that is not the contract's object with its array is
// garbage, never an empty list; the documented empty list stays valid.
func TestHTTPListShapeStrict(t *testing.T) {
	ctx := context.Background()
	for _, body := range []string{`{}`, `null`, `"replays"`, `7`, `[]`, `{"count":0}`, `{"replays":null,"count":0}`, `{"replays":{},"count":0}`, `{"replays":"x"}`, ``} {
		h, _ := newFake(t, map[string]fakeAnswer{"GET /v1/replays": {200, body}}, HTTPOptions{})
		if got, err := h.ListReplays(ctx, sess); !errors.Is(err, ErrGarbage) {
			t.Errorf("%q: %v, %v; want ErrGarbage", body, got, err)
		}
	}
	for _, body := range []string{`{"replays":[],"count":0}`, `{"replays":[]}`} {
		h, _ := newFake(t, map[string]fakeAnswer{"GET /v1/replays": {200, body}}, HTTPOptions{})
		if got, err := h.ListReplays(ctx, sess); err != nil || got == nil || len(got) != 0 {
			t.Errorf("%q: %v, %v; want an empty list", body, got, err)
		}
	}
}
