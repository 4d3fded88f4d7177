package driver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
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
