// Package hostile is a deliberately broken target for telechaos' own tests:
// an HTTP front for a correct target (the reference clinic) that corrupts,
// truncates, inflates or redirects chosen answers, one Mode at a time. It is
// how the harness proves that what it could not judge never passes, that a
// hostile target cannot exhaust its memory, redirect its traffic or hide a
// found violation, and that broken infrastructure is not reported as a leak.
//
// Media (WebRTC) does not pass through the front: the SDP answers carry the
// upstream's own candidates, except in the candidate modes, which rewrite them.
// Redirect modes send clients to a Canary, which records whatever reaches it.
package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode names one way the front breaks the contract.
type Mode string

// The modes. Media modes touch GET /v1/replays/{rid}/media answers, list
// modes GET /v1/replays, replay modes GET /v1/replays/{rid}.
const (
	MediaJunkSuffix   Mode = "media-junk-suffix"  // five junk bytes after a good track
	MediaRandom       Mode = "media-random"       // random bytes of the same length
	MediaServerError  Mode = "media-500"          // 500 instead of the track
	MediaReset        Mode = "media-reset"        // half the body, then a TCP reset
	MediaTruncated    Mode = "media-truncated"    // Content-Length promises more than is sent
	MediaEmpty        Mode = "media-empty"        // 200 with no bytes
	MediaHTML         Mode = "media-html"         // 200 text/html error page
	MediaHuge         Mode = "media-huge"         // 200 with a declared 2 GiB body
	MediaHugeChunked  Mode = "media-huge-chunked" // 200, 2 GiB chunked, no length
	MediaRedirect     Mode = "media-redirect"     // 302 to the canary
	ListCut           Mode = "list-cut"           // the list answer cut in half
	ListEmptyObject   Mode = "list-empty-object"  // {}
	ListNull          Mode = "list-null"          // {"replays":null}
	ListGarbage       Mode = "list-garbage"       // random bytes
	ListServerError   Mode = "list-500"           // 500
	ListRedirect      Mode = "list-redirect"      // 302 to the canary
	ListHuge          Mode = "list-huge"          // ten million well-formed entries
	ReplayGarbage     Mode = "replay-garbage"     // replay metadata replaced by junk
	ReplayServerError Mode = "replay-500"         // replay metadata answered 500
	ProbeRedirect     Mode = "probe-redirect"     // every 4xx answer becomes a 302 to the canary
	HeaderFlood       Mode = "header-flood"       // list answers with 2 MiB of headers
	CandidateOffhost  Mode = "candidate-offhost"  // SDP answers offer only the canary's UDP address
	CandidateExtra    Mode = "candidate-extra"    // SDP answers offer the canary's address first, then the real one
	SlowBody          Mode = "slow-body"          // list answers trickle a byte a second
	RedirectAll       Mode = "redirect-all"       // every answer is a 302 to the canary
	Pass              Mode = "pass"               // no change: the control
	hugeBytes              = int64(2) << 30
	hugeListEntries        = 10_000_000
)

// Modes lists every mode with what it does, in a stable order.
var Modes = []struct {
	Mode Mode
	What string
}{
	{MediaJunkSuffix, "five junk bytes after every good track"},
	{MediaRandom, "every track replaced by random bytes of its length"},
	{MediaServerError, "every track answered 500"},
	{MediaReset, "every track cut by a TCP reset half-way"},
	{MediaTruncated, "every track shorter than its Content-Length"},
	{MediaEmpty, "every track answered 200 with no bytes"},
	{MediaHTML, "every track answered 200 with an HTML page"},
	{MediaHuge, "every track a declared 2 GiB body"},
	{MediaHugeChunked, "every track a 2 GiB chunked body"},
	{MediaRedirect, "every track a 302 to another port"},
	{ListCut, "every replay list cut in half"},
	{ListEmptyObject, "every replay list answered {}"},
	{ListNull, "every replay list answered {\"replays\":null}"},
	{ListGarbage, "every replay list answered random bytes"},
	{ListServerError, "every replay list answered 500"},
	{ListRedirect, "every replay list a 302 to another port"},
	{ListHuge, "every replay list ten million entries long"},
	{ReplayGarbage, "every replay's metadata answered junk"},
	{ReplayServerError, "every replay's metadata answered 500"},
	{ProbeRedirect, "every denial turned into a 302 to another port"},
	{HeaderFlood, "every replay list with 2 MiB of headers"},
	{CandidateOffhost, "SDP answers offer only an address the harness was not given"},
	{CandidateExtra, "SDP answers offer a foreign address besides the real one"},
	{SlowBody, "every replay list trickled a byte a second"},
	{RedirectAll, "every answer a 302 to another port"},
	{Pass, "nothing changed (the control)"},
}

// Server is a running hostile front.
type Server struct {
	URL    string // base URL of the front
	Canary *Canary
	mode   Mode
	up     *url.URL
	proxy  *httputil.ReverseProxy
	srv    *http.Server
	ln     net.Listener
	// Hits counts the answers the mode changed.
	Hits atomic.Int64
}

var (
	mediaPath  = regexp.MustCompile(`^/v1/replays/[^/]+/media$`)
	replayPath = regexp.MustCompile(`^/v1/replays/[^/]+$`)
	signalPath = regexp.MustCompile(`^/v1/consultations/[^/]+/(join|video)$`)
)

// Start fronts upstream (a base URL) with mode on a loopback port. Close it.
func Start(upstream string, mode Mode) (*Server, error) {
	known := false
	for _, m := range Modes {
		known = known || m.Mode == mode
	}
	if !known {
		return nil, fmt.Errorf("hostile: unknown mode %q", mode)
	}
	up, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("hostile: upstream %q: %w", upstream, err)
	}
	canary, err := newCanary()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		canary.Close()
		return nil, fmt.Errorf("hostile: listen: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), Canary: canary, mode: mode, up: up, ln: ln}
	s.proxy = httputil.NewSingleHostReverseProxy(up)
	s.proxy.ErrorLog = nil
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the front and its canary.
func (s *Server) Close() {
	s.srv.Close()
	s.Canary.Close()
}

// ServeHTTP applies the mode to the requests it concerns and passes the
// others through.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch m := s.mode; {
	case m == RedirectAll:
		s.redirect(w, r)
	case r.Method == http.MethodGet && mediaPath.MatchString(p) && strings.HasPrefix(string(m), "media-"):
		s.media(w, r)
	case r.Method == http.MethodGet && p == "/v1/replays" && (strings.HasPrefix(string(m), "list-") || m == HeaderFlood || m == SlowBody):
		s.list(w, r)
	case r.Method == http.MethodGet && replayPath.MatchString(p) && strings.HasPrefix(string(m), "replay-"):
		// Only answers the upstream granted are broken: a denial stays a
		// denial, so what the harness sees is broken infrastructure, not a
		// leak.
		rec := s.record(r)
		if rec.status != 200 {
			rec.replay(w)
			return
		}
		s.Hits.Add(1)
		if m == ReplayServerError {
			jsonError(w, 500, "internal", "metadata store unavailable")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":`+strconv.Quote(strings.TrimPrefix(p, "/v1/replays/"))+`,"tracks":[{"id":`)
	case r.Method == http.MethodPost && signalPath.MatchString(p) && strings.HasPrefix(string(m), "candidate-"):
		s.candidates(w, r)
	case m == ProbeRedirect:
		rec := s.record(r)
		if rec.status >= 400 && rec.status < 500 {
			s.redirect(w, r)
			return
		}
		rec.replay(w)
	default:
		s.proxy.ServeHTTP(w, r)
	}
}

func (s *Server) redirect(w http.ResponseWriter, r *http.Request) {
	s.Hits.Add(1)
	http.Redirect(w, r, s.Canary.URL+r.URL.RequestURI(), http.StatusFound)
}

func (s *Server) media(w http.ResponseWriter, r *http.Request) {
	// Only answers the upstream granted are broken (see replay modes).
	rec := s.record(r)
	if rec.status != 200 {
		rec.replay(w)
		return
	}
	s.Hits.Add(1)
	switch s.mode {
	case MediaServerError:
		jsonError(w, 500, "internal", "recording store unavailable")
		return
	case MediaRedirect:
		s.redirect(w, r)
		return
	case MediaHuge:
		w.Header().Set("Content-Length", strconv.FormatInt(hugeBytes, 10))
		w.WriteHeader(200)
		stream(r.Context(), w, hugeBytes)
		return
	case MediaHugeChunked:
		w.WriteHeader(200) // no length: net/http chunks it
		stream(r.Context(), w, hugeBytes)
		return
	case MediaEmpty:
		w.WriteHeader(200)
		return
	case MediaHTML:
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		return
	}
	body := rec.body.Bytes()
	switch s.mode {
	case MediaJunkSuffix:
		body = append(body, 0xde, 0xad, 0xbe, 0xef, 0x00)
	case MediaRandom:
		body = randomBytes(len(body))
	case MediaTruncated:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(200)
		w.Write(body[:len(body)/2])
		hangUp(w, false)
		return
	case MediaReset:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(200)
		w.Write(body[:len(body)/2])
		hangUp(w, true)
		return
	}
	w.Header().Set("Content-Type", rec.header.Get("Content-Type"))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(200)
	w.Write(body)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	rec := s.record(r)
	if rec.status != 200 {
		rec.replay(w)
		return
	}
	switch s.mode {
	case ListServerError:
		s.Hits.Add(1)
		jsonError(w, 500, "internal", "list unavailable")
		return
	case ListRedirect:
		s.redirect(w, r)
		return
	case ListEmptyObject, ListNull, ListGarbage:
		s.Hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch s.mode {
		case ListEmptyObject:
			io.WriteString(w, "{}")
		case ListNull:
			io.WriteString(w, `{"replays":null}`)
		default:
			w.Write(randomBytes(173))
		}
		return
	case ListHuge:
		s.Hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		hugeList(r.Context(), w)
		return
	}
	s.Hits.Add(1)
	body := rec.body.Bytes()
	switch s.mode {
	case ListCut:
		body = body[:len(body)/2]
	case HeaderFlood:
		for i := range 2048 {
			w.Header().Set(fmt.Sprintf("X-Flood-%d", i), strings.Repeat("x", 1000))
		}
	case SlowBody:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(200)
		for _, b := range body {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(200)
	w.Write(body)
}

// candidates rewrites the SDP answer's candidates to the canary's UDP
// address (alone, or before the real ones).
func (s *Server) candidates(w http.ResponseWriter, r *http.Request) {
	rec := s.record(r)
	if rec.status != 200 {
		rec.replay(w)
		return
	}
	var ans map[string]any
	if err := json.Unmarshal(rec.body.Bytes(), &ans); err != nil {
		rec.replay(w)
		return
	}
	sdp, _ := ans["sdp"].(string)
	host, port, _ := net.SplitHostPort(s.Canary.UDPAddr)
	fake := fmt.Sprintf("a=candidate:9 1 udp 2130706431 %s %s typ host", host, port)
	var out []string
	for _, line := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(line, "a=candidate:") {
			if s.mode == CandidateExtra {
				out = append(out, fake, line)
			} else {
				out = append(out, fake)
			}
			s.Hits.Add(1)
			continue
		}
		out = append(out, line)
	}
	ans["sdp"] = strings.Join(out, "\r\n")
	b, _ := json.Marshal(ans)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	w.Write(b)
}

// recorded is an upstream answer held in memory.
type recorded struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func (s *Server) record(r *http.Request) *recorded {
	rw := &recordWriter{rec: &recorded{header: http.Header{}, status: 200}}
	s.proxy.ServeHTTP(rw, r)
	return rw.rec
}

func (rec *recorded) replay(w http.ResponseWriter) {
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
}

type recordWriter struct {
	rec   *recorded
	wrote bool
}

func (w *recordWriter) Header() http.Header { return w.rec.header }
func (w *recordWriter) WriteHeader(code int) {
	if !w.wrote {
		w.rec.status, w.wrote = code, true
	}
}
func (w *recordWriter) Write(b []byte) (int, error) { w.wrote = true; return w.rec.body.Write(b) }

func jsonError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":%q,"message":%q}`, errCode, msg)
}

// stream writes n zero bytes, stopping when the client goes away.
func stream(ctx context.Context, w io.Writer, n int64) {
	buf := make([]byte, 256<<10)
	for n > 0 && ctx.Err() == nil {
		k := min(int64(len(buf)), n)
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		n -= k
	}
}

// hugeList streams a well-formed list of hugeListEntries entries.
func hugeList(ctx context.Context, w io.Writer) {
	if _, err := io.WriteString(w, `{"replays":[`); err != nil {
		return
	}
	var b []byte
	for i := range hugeListEntries {
		if ctx.Err() != nil {
			return
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"id":"r_%d","consultation_id":"c_%d","title":"t","participants":["u_%d"],"tracks":0}`, i, i, i)
		if len(b) > 64<<10 {
			if _, err := w.Write(b); err != nil {
				return
			}
			b = b[:0]
		}
	}
	b = fmt.Appendf(b, `],"count":%d}`, hugeListEntries)
	w.Write(b)
}

// hangUp ends the connection without finishing the answer: with reset, by an
// RST (SO_LINGER 0) rather than a FIN.
func hangUp(w http.ResponseWriter, reset bool) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := c.(*net.TCPConn); ok && reset {
		tc.SetLinger(0)
	}
	c.Close()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

// Canary is where redirects and foreign candidates point: an HTTP listener
// and a UDP socket on loopback that count what reaches them. A harness that
// keeps to its target leaves both at zero.
type Canary struct {
	URL     string // http://127.0.0.1:port
	UDPAddr string // 127.0.0.2:port (another loopback address than the target's)
	srv     *http.Server
	udp     net.PacketConn

	mu        sync.Mutex
	requests  int
	tokens    int
	udpPacket int
}

func newCanary() (*Canary, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hostile: canary listen: %w", err)
	}
	// Another loopback address, so a harness limited to the target's own
	// address must not send to it, while the packets never leave the host.
	udp, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("hostile: canary udp: %w", err)
	}
	c := &Canary{URL: "http://" + ln.Addr().String(), UDPAddr: udp.LocalAddr().String(), udp: udp}
	c.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.requests++
		if r.Header.Get("Authorization") != "" {
			c.tokens++
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"replays":[],"count":0}`)
	})}
	go c.srv.Serve(ln)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			c.mu.Lock()
			c.udpPacket++
			c.mu.Unlock()
		}
	}()
	return c, nil
}

// Seen returns how many HTTP requests reached the canary, how many of them
// carried an Authorization header, and how many UDP packets arrived.
func (c *Canary) Seen() (requests, withToken, udpPackets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, c.tokens, c.udpPacket
}

// Close stops the canary.
func (c *Canary) Close() {
	c.srv.Close()
	c.udp.Close()
}
