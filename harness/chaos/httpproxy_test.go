package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// upstream serves /ok ("ok:<tag>") and /big (size bytes of 'x').
func upstream(t *testing.T, tag string, size int) *httptest.Server {
	t.Helper()
	big := bytes.Repeat([]byte("x"), size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
			return
		}
		fmt.Fprint(w, "ok:"+tag)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newProxy(t *testing.T, up string) *HTTPProxy {
	t.Helper()
	p, err := NewHTTPProxy(up)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if !strings.HasPrefix(p.URL(), "http://127.0.0.1:") {
		t.Fatalf("proxy url %s is not on 127.0.0.1", p.URL())
	}
	return p
}

func newClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// get fetches url and returns the body and the time it took.
func get(c *http.Client, url string) (string, time.Duration, error) {
	st := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return "", time.Since(st), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), time.Since(st), err
}

func mustFault(t *testing.T, p *HTTPProxy, spec HTTPSpec) *HTTPFault {
	t.Helper()
	f, err := NewHTTPFault(spec.Kind, p, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Available(Env{Proxy: p}); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestHTTPLatency: 200ms of latency on responses makes every request through
// the proxy take at least 200ms, on open connections too; healing removes it.
func TestHTTPLatency(t *testing.T) {
	p := newProxy(t, upstream(t, "a", 0).URL)
	c := newClient(t, 10*time.Second)
	body, base, err := get(c, p.URL()+"/ok") // opens a keep-alive connection
	if err != nil || body != "ok:a" {
		t.Fatalf("through the proxy: %q %v", body, err)
	}
	f := mustFault(t, p, HTTPSpec{Kind: faultspec.KindHTTPLatency, Latency: 200 * time.Millisecond})
	if err := f.Inject(t.Context()); err != nil {
		t.Fatal(err)
	}
	var minD time.Duration = time.Hour
	for i := 0; i < 3; i++ {
		_, d, err := get(c, p.URL()+"/ok")
		if err != nil {
			t.Fatal(err)
		}
		minD = min(minD, d)
	}
	if err := f.Heal(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, after, err := get(c, p.URL()+"/ok")
	t.Logf("latency 200ms: before %s, during >= %s, after %s", base, minD, after)
	if err != nil {
		t.Fatal(err)
	}
	if minD < 200*time.Millisecond {
		t.Errorf("request under latency took %s, want >= 200ms", minD)
	}
	if len(p.Toxics()) != 0 {
		t.Errorf("toxics left after heal: %v", p.Toxics())
	}
}

// TestHTTPReset: a reset toxic fails requests (connection reset or cut);
// after healing requests succeed again.
func TestHTTPReset(t *testing.T) {
	p := newProxy(t, upstream(t, "a", 0).URL)
	c := newClient(t, 5*time.Second)
	f := mustFault(t, p, HTTPSpec{Kind: faultspec.KindHTTPReset, Stream: "upstream"})
	if err := f.Inject(t.Context()); err != nil {
		t.Fatal(err)
	}
	fails := 0
	for i := 0; i < 3; i++ {
		if _, _, err := get(c, p.URL()+"/ok"); err != nil {
			fails++
			if i == 0 {
				t.Logf("under reset: %v", err)
			}
		}
	}
	if fails != 3 {
		t.Errorf("%d of 3 requests failed under reset_peer, want 3", fails)
	}
	_ = f.Heal(t.Context())
	if body, _, err := get(c, p.URL()+"/ok"); err != nil || body != "ok:a" {
		t.Errorf("after heal: %q %v", body, err)
	}
}

// TestHTTPTimeout: a timeout toxic with timeout 0 holds the data: the
// client's own timeout fires.
func TestHTTPTimeout(t *testing.T) {
	p := newProxy(t, upstream(t, "a", 0).URL)
	c := newClient(t, 300*time.Millisecond)
	f := mustFault(t, p, HTTPSpec{Kind: faultspec.KindHTTPTimeout})
	_ = f.Inject(t.Context())
	_, d, err := get(c, p.URL()+"/ok")
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("under timeout toxic: %v after %s, want a client timeout", err, d)
	}
	_ = f.Heal(t.Context())
	if body, _, err := get(newClient(t, 5*time.Second), p.URL()+"/ok"); err != nil || body != "ok:a" {
		t.Errorf("after heal: %q %v", body, err)
	}
}

// TestHTTPBandwidth: 50 KB/s makes a 60 KB body take about a second.
func TestHTTPBandwidth(t *testing.T) {
	p := newProxy(t, upstream(t, "a", 60<<10).URL)
	c := newClient(t, 20*time.Second)
	_, base, _ := get(c, p.URL()+"/big")
	f := mustFault(t, p, HTTPSpec{Kind: faultspec.KindHTTPBandwidth, RateKBps: 50})
	_ = f.Inject(t.Context())
	defer f.Heal(context.Background())
	body, d, err := get(c, p.URL()+"/big")
	t.Logf("60 KB at 50 KB/s: %s (unlimited %s)", d, base)
	if err != nil || len(body) != 60<<10 {
		t.Fatalf("body %d bytes, err %v", len(body), err)
	}
	if d < 700*time.Millisecond {
		t.Errorf("60 KB at 50 KB/s took %s, want about 1.2s (>= 700ms)", d)
	}
}

// TestHTTPSlicer: the response arrives intact but in many small pieces.
func TestHTTPSlicer(t *testing.T) {
	p := newProxy(t, upstream(t, "a", 4000).URL)
	f := mustFault(t, p, HTTPSpec{Kind: faultspec.KindHTTPSlicer, AverageSize: 16, SizeVariation: 8, SliceDelay: 200 * time.Microsecond})
	reads := func() (int, int) {
		conn, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(conn, "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		n, total := 0, 0
		buf := make([]byte, 64<<10)
		for {
			k, err := conn.Read(buf)
			if k > 0 {
				n++
				total += k
			}
			if err != nil {
				return n, total
			}
		}
	}
	n0, total0 := reads()
	_ = f.Inject(t.Context())
	n1, total1 := reads()
	_ = f.Heal(t.Context())
	t.Logf("4000-byte response: %d reads without slicer, %d with (avg 16 B slices)", n0, n1)
	if total1 != total0 || n1 < 50 || n1 <= n0 {
		t.Errorf("slicer: %d reads of %d bytes (plain: %d reads of %d bytes), want many more reads of the same bytes", n1, total1, n0, total0)
	}
}

// TestHTTPRetarget: the front address stays, the upstream moves; open
// connections to the old upstream are cut; toxics survive.
func TestHTTPRetarget(t *testing.T) {
	a, b := upstream(t, "a", 0), upstream(t, "b", 0)
	p := newProxy(t, a.URL)
	front := p.URL()
	c := newClient(t, 5*time.Second)
	if body, _, err := get(c, front+"/ok"); body != "ok:a" {
		t.Fatalf("before retarget: %q %v", body, err)
	}
	f := mustFault(t, p, HTTPSpec{Kind: faultspec.KindHTTPLatency, Latency: 50 * time.Millisecond})
	_ = f.Inject(t.Context())
	if err := p.Retarget(b.URL); err != nil {
		t.Fatal(err)
	}
	if p.URL() != front {
		t.Errorf("front moved from %s to %s", front, p.URL())
	}
	var body string
	var err error
	var d time.Duration
	for i := 0; i < 3; i++ { // the first try may hit the cut keep-alive connection
		if body, d, err = get(c, front+"/ok"); err == nil {
			break
		}
	}
	if body != "ok:b" {
		t.Errorf("after retarget: %q %v, want ok:b", body, err)
	}
	if d < 50*time.Millisecond {
		t.Errorf("latency toxic lost by retarget: request took %s", d)
	}
	if p.Upstream() != strings.TrimPrefix(b.URL, "http://") {
		t.Errorf("upstream %s, want %s", p.Upstream(), b.URL)
	}
}

func TestHTTPProxyBadInput(t *testing.T) {
	for _, up := range []string{"", "nohost", "ftp://127.0.0.1:1", "127.0.0.1:0", "http://[::1"} {
		if p, err := NewHTTPProxy(up); err == nil {
			p.Close()
			t.Errorf("NewHTTPProxy(%q) accepted", up)
		}
	}
	if _, err := NewHTTPFault("x", nil, HTTPSpec{Kind: "http-nope"}); !errors.Is(err, faultspec.ErrInvalidProfile) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := NewHTTPFault("x", nil, HTTPSpec{Kind: faultspec.KindHTTPLatency, Stream: "sideways"}); err == nil {
		t.Error("bad stream accepted")
	}
	f, _ := NewHTTPFault("x", nil, HTTPSpec{Kind: faultspec.KindHTTPLatency, Latency: time.Second})
	if err := f.Available(Env{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("available without a proxy: %v", err)
	}
	p := newProxy(t, upstream(t, "a", 0).URL)
	p.Close()
	if err := p.AddToxic(Toxic{Name: "t", Type: "latency"}); !errors.Is(err, ErrStopped) {
		t.Errorf("add toxic after close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("closed proxy still accepts connections")
	}
}
