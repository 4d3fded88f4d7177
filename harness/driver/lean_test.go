package driver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telechaos/telechaos/models"
)

// rawServer answers requests with bytes a test writes itself, to exercise
// the lean client's framing. answer gets the connection's index (from 0),
// the request's index on it and the parsed request; it writes the answer to
// w and returns false to close the connection.
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	reqs     []*http.Request
	bodies   []string
	wg       sync.WaitGroup
}

func newRawServer(t *testing.T, answer func(conn, n int, r *http.Request, w net.Conn) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			idx := int(s.accepted.Add(1) - 1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(r.Body)
					s.mu.Lock()
					s.reqs = append(s.reqs, r)
					s.bodies = append(s.bodies, string(b))
					s.mu.Unlock()
					if !answer(idx, n, r, c) {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

func leanTarget(t *testing.T, url string, opts HTTPOptions) *HTTPTarget {
	t.Helper()
	h, err := NewHTTP(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	if h.lean == nil {
		t.Fatal("plain-http target without a client does not use the lean client")
	}
	t.Cleanup(func() { h.Close() })
	return h
}

const registerAnswer = `{"id":"u-1","role":"patient","token":"tok-1"}`

func sized(status int, body string, extra ...string) string {
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), strings.Join(extra, ""), len(body), body)
}

func TestLeanContentLengthKeepAlive(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(201, registerAnswer))
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	for i := range 3 {
		got, err := h.Register(context.Background(), models.Patient)
		if err != nil || got.Token != "tok-1" {
			t.Fatalf("request %d: %+v, %v", i, got, err)
		}
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections for 3 sequential requests, want 1 (keep-alive)", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reqs[0]
	if r.Method != "POST" || r.URL.Path != "/v1/users" || r.Header.Get("Content-Type") != "application/json" ||
		r.ContentLength != int64(len(s.bodies[0])) || s.bodies[0] != `{"role":"patient"}` || r.Host != s.ln.Addr().String() {
		t.Errorf("request = %s %s host %q type %q length %d body %q", r.Method, r.URL, r.Host, r.Header.Get("Content-Type"), r.ContentLength, s.bodies[0])
	}
}

func TestLeanRequestShape(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(200, `{"consultation_id":"c-1","recording_id":"r-1","tracks":[]}`))
		return true
	})
	h := leanTarget(t, s.url()+"/prefix", HTTPOptions{})
	if _, err := h.End(context.Background(), sess, "c/1"); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reqs[0]
	// A POST without a body still says Content-Length: 0 (as net/http does).
	if r.Method != "POST" || r.URL.EscapedPath() != "/prefix/v1/consultations/c%2F1/end" || r.ContentLength != 0 ||
		r.Header.Get("Authorization") != "Bearer tok-1" || r.Header.Get("Content-Type") != "" || len(r.Header.Values("Content-Length")) != 1 {
		t.Errorf("request = %s %s length %d header %v", r.Method, r.URL.EscapedPath(), r.ContentLength, r.Header)
	}
}

func TestLeanChunked(t *testing.T) {
	body := `{"replays":[],"count":0}`
	s := newRawServer(t, func(_, n int, r *http.Request, w net.Conn) bool {
		// Split over chunks, one with an extension, and a trailer.
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x;ext=1\r\n%s\r\n%X\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n",
			10, body[:10], len(body)-10, body[10:])
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	for i := range 2 {
		if got, err := h.ListReplays(context.Background(), sess); err != nil || len(got) != 0 {
			t.Fatalf("request %d: %+v, %v", i, got, err)
		}
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1: the chunked body was not consumed exactly", n)
	}
}

func TestLeanChunkedMaxBody(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n"+strings.Repeat("x", 50)+"\r\n32\r\n"+strings.Repeat("y", 50)+"\r\n0\r\n\r\n")
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{MaxBody: 99})
	if _, err := h.FetchMedia(context.Background(), sess, "r", "t"); !errors.Is(err, ErrGarbage) {
		t.Errorf("over-cap chunked body: err = %v, want ErrGarbage", err)
	}
	h = leanTarget(t, s.url(), HTTPOptions{MaxBody: 100})
	if b, err := h.FetchMedia(context.Background(), sess, "r", "t"); err != nil || string(b) != strings.Repeat("x", 50)+strings.Repeat("y", 50) {
		t.Errorf("at-cap chunked body: %q, %v", b, err)
	}
}

func TestLeanConnectionClose(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(201, registerAnswer, "Connection: close\r\n"))
		return false
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	for i := range 3 {
		if _, err := h.Register(context.Background(), models.Patient); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := s.accepted.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (each answer said Connection: close)", n)
	}
}

func TestLeanHTTP10CloseDelimited(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.0 200 OK\r\nContent-Type: audio/ogg\r\n\r\nOggS-bytes")
		return false
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	for i := range 2 {
		if b, err := h.FetchMedia(context.Background(), sess, "r", "t"); err != nil || string(b) != "OggS-bytes" {
			t.Fatalf("request %d: %q, %v", i, b, err)
		}
	}
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestLeanInterimAnswer(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"+sized(201, registerAnswer))
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	if _, err := h.Register(context.Background(), models.Patient); err != nil {
		t.Fatal(err)
	}
}

// The server closes an idle keep-alive connection (its idle timeout, a
// restart): the next request, a POST that is never retried, must not be
// sent on it.
func TestLeanServerClosedIdle(t *testing.T) {
	closed := make(chan struct{}, 1)
	s := newRawServer(t, func(conn, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(201, registerAnswer))
		if conn == 0 {
			w.Close()
			closed <- struct{}{}
			return false
		}
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	if _, err := h.Register(context.Background(), models.Patient); err != nil {
		t.Fatal(err)
	}
	<-closed
	time.Sleep(20 * time.Millisecond) // let the FIN arrive
	if _, err := h.Register(context.Background(), models.Patient); err != nil {
		t.Fatalf("POST after the server closed the idle connection: %v", err)
	}
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A reused connection that dies before the answer: a GET is retried on a new
// connection (as net/http does), a POST is not (it may have been applied).
func TestLeanDiesBeforeAnswer(t *testing.T) {
	answer := func(conn, n int, r *http.Request, w net.Conn) bool {
		if conn == 0 && n == 1 {
			return false // read the request, close without a word
		}
		if r.Method == "GET" {
			io.WriteString(w, sized(200, `{"replays":[],"count":0}`))
		} else {
			io.WriteString(w, sized(201, registerAnswer))
		}
		return true
	}
	s := newRawServer(t, answer)
	h := leanTarget(t, s.url(), HTTPOptions{})
	ctx := context.Background()
	if _, err := h.ListReplays(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ListReplays(ctx, sess); err != nil {
		t.Errorf("GET on a reused connection that died: %v, want a retry on a new one", err)
	}
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}

	s = newRawServer(t, answer)
	h = leanTarget(t, s.url(), HTTPOptions{})
	if _, err := h.Register(ctx, models.Patient); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Register(ctx, models.Patient); !errors.Is(err, ErrUnreachable) {
		t.Errorf("POST on a reused connection that died: err = %v, want ErrUnreachable (not retried)", err)
	}
}

func TestLeanTimeoutMidBody(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\"")
		<-release
		return false
	})
	h := leanTarget(t, s.url(), HTTPOptions{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := h.Register(context.Background(), models.Patient)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled body: err = %v, want ErrUnreachable wrapping DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("timeout took %v", el)
	}
}

func TestLeanCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		<-release
		return false
	})
	h := leanTarget(t, s.url(), HTTPOptions{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err := h.Health(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Errorf("cancelled: err = %v, want Canceled and not ErrUnreachable", err)
	}
}

func TestLeanErrorBodies(t *testing.T) {
	big := `{"error":"not_found","message":"` + strings.Repeat("m", 70<<10) + `"}`
	s := newRawServer(t, func(_, n int, r *http.Request, w net.Conn) bool {
		switch n {
		case 0: // chunked JSON error: read, connection kept
			io.WriteString(w, "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n29\r\n{\"error\":\"not_found\",\"message\":\"no such\"}\r\n0\r\n\r\n")
		case 1: // non-JSON error
			io.WriteString(w, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 17\r\n\r\n<html>oops</html>")
		case 2: // an error body past the 64 KiB kept: cut, the rest drained
			io.WriteString(w, sized(404, big))
		default:
			io.WriteString(w, sized(200, `{"replays":[],"count":0}`))
		}
		return true
	})
	var obs []Observation
	h := leanTarget(t, s.url(), HTTPOptions{Observer: func(o Observation) { obs = append(obs, o) }})
	ctx := context.Background()
	_, err := h.ListReplays(ctx, sess)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 || se.ErrCode != "not_found" || se.Message != "no such" {
		t.Errorf("chunked 404: %v", err)
	}
	_, err = h.ListReplays(ctx, sess)
	if !errors.As(err, &se) || se.Code != 502 || se.ErrCode != "" || se.Message != "<html>oops</html>" {
		t.Errorf("html 502: %v", err)
	}
	_, err = h.ListReplays(ctx, sess)
	if !errors.As(err, &se) || se.Code != 404 || !IsDenied(err) || obs[2].Bytes != maxErrorBody {
		t.Errorf("big 404: %v, %d bytes observed", err, obs[2].Bytes)
	}
	if _, err := h.ListReplays(ctx, sess); err != nil {
		t.Errorf("after the error answers: %v", err)
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (error bodies consumed)", n)
	}
}

func TestLeanMalformedAnswer(t *testing.T) {
	for _, raw := range []string{
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	} {
		s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
			io.WriteString(w, raw)
			return false
		})
		h := leanTarget(t, s.url(), HTTPOptions{})
		if _, err := h.ListReplays(context.Background(), sess); !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrGarbage) {
			t.Errorf("%q: err = %v, want a failure", raw, err)
		}
	}
}

func TestLeanRejectsHeaderInjection(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(200, `{"replays":[],"count":0}`))
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	bad := Session{ID: "u", Token: "tok\r\nX-Evil: 1"}
	if _, err := h.ListReplays(context.Background(), bad); err == nil {
		t.Error("a token with CRLF was sent")
	}
	if n := s.accepted.Load(); n != 0 {
		t.Errorf("%d connections for a refused request", n)
	}
}

// Users under different contexts: cancelling one cuts short only its own
// exchange, whichever context the pool saw last.
func TestLeanCancelOneOfTwoContexts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		if r.URL.Path == "/healthz" {
			<-release
			return false
		}
		io.WriteString(w, sized(200, `{"replays":[],"count":0}`))
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{Timeout: time.Minute})
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	stalled := make(chan error, 1)
	go func() { stalled <- h.Health(ctxA) }()
	time.Sleep(50 * time.Millisecond) // A's exchange is in flight
	for i := range 3 {
		if _, err := h.ListReplays(ctxB, sess); err != nil {
			t.Fatalf("B's request %d: %v", i, err)
		}
	}
	select {
	case err := <-stalled:
		t.Fatalf("A's request ended before A was cancelled: %v", err)
	default:
	}
	cancelA()
	select {
	case err := <-stalled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("A: err = %v, want Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling A did not cut its exchange short")
	}
	if _, err := h.ListReplays(ctxB, sess); err != nil {
		t.Errorf("B after A's cancellation: %v", err)
	}
}

// A request larger than the socket buffers goes out in full before the
// answer is read (on linux the request is sent from within the read; what
// does not fit at once is sent waiting for room).
func TestLeanLargeRequest(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(200, `{"type":"answer","sdp":"v=0","segment":0}`))
		return true
	})
	h := leanTarget(t, s.url(), HTTPOptions{})
	offer := strings.Repeat("a=x\r\n", 2<<20) // 10 MiB, 20 MiB escaped
	for i := range 2 {
		if _, _, err := h.Join(context.Background(), sess, "c-1", offer); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.bodies {
		var got sdpMsg
		if err := json.Unmarshal([]byte(b), &got); err != nil || got.SDP != offer {
			t.Errorf("request %d: the server got %d bytes, not the offer (%v)", i, len(b), err)
		}
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
