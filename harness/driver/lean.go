package driver

// A lean HTTP/1.1 client for plain-http targets. net/http's Transport hands
// every request to two goroutines per connection (persistConn's read and
// write loops) and allocates a Request, a Response and their headers; here
// the calling goroutine writes the request with one Write and parses the
// answer itself on a pooled keep-alive connection. It speaks only what the
// driver needs: GET and POST with a small body, answers with Content-Length,
// chunked or close-delimited bodies, Connection: close, 1xx interim answers.
// https targets and caller-supplied clients keep using net/http.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	leanMaxIdle     = 1024
	leanIdleTimeout = 90 * time.Second
	leanDialTimeout = 5 * time.Second
	// leanMaxHeader bounds an answer's status line and headers together.
	leanMaxHeader = 1 << 20
	leanUserAgent = "Go-http-client/1.1"
)

// scratchPool recycles the buffers of answers that are decoded and dropped;
// buffers past maxScratch are not kept.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxScratch = 64 << 10

// errServerClosed: the connection ended before any byte of the answer.
var errServerClosed = errors.New("server closed the connection before answering")

// leanClient is a pool of keep-alive connections to one host:port.
type leanClient struct {
	addr string // host:port to dial
	host string // Host header

	mu    sync.Mutex
	idle  []*leanConn // LIFO: the most recently used first out
	watch *ctxWatch   // of the context last seen
}

// ctxWatch cuts short the exchanges in flight under one context when it is
// done. The pool keeps one for the context it saw last: a run's users share
// one, so a request costs two map operations under the pool's lock rather
// than registering a callback with the context.
type ctxWatch struct {
	done    <-chan struct{}
	stop    func() bool
	conns   map[*leanConn]struct{} // in flight
	fired   bool
	current bool // the pool's watch
}

// watchFrom registers lc, about to be used under ctx, with ctx's watch.
func (l *leanClient) watchFrom(ctx context.Context, lc *leanConn) *ctxWatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.watch
	if w == nil || w.done != ctx.Done() {
		if w != nil {
			w.current = false
			if len(w.conns) == 0 {
				w.stop()
			}
		}
		w = &ctxWatch{done: ctx.Done(), conns: map[*leanConn]struct{}{}, current: true}
		w.stop = context.AfterFunc(ctx, func() { l.fire(w) })
		l.watch = w
	}
	w.conns[lc] = struct{}{}
	if w.fired {
		lc.c.SetDeadline(aLongTimeAgo)
	}
	return w
}

var aLongTimeAgo = time.Unix(1, 0)

func (l *leanClient) fire(w *ctxWatch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.fired = true
	for lc := range w.conns {
		lc.c.SetDeadline(aLongTimeAgo)
	}
	if l.watch == w {
		l.watch = nil
	}
}

// unwatch ends lc's exchange under w and says whether its context was done
// meanwhile (its deadline is then spoilt).
func (l *leanClient) unwatch(w *ctxWatch, lc *leanConn) (fired bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(w.conns, lc)
	if !w.current && len(w.conns) == 0 {
		w.stop()
	}
	return w.fired
}

type leanConn struct {
	c      net.Conn
	raw    syscall.RawConn // for alive; nil if c has none
	rw     io.ReadWriter   // c, or its socket with raw system calls
	br     *bufio.Reader
	wbuf   []byte
	idleAt time.Time
}

func newLeanClient(addr, host string) *leanClient {
	return &leanClient{addr: addr, host: host}
}

// closeIdle closes the pooled connections (those in use are closed or pooled
// when their request finishes).
func (l *leanClient) closeIdle() {
	l.mu.Lock()
	idle := l.idle
	l.idle = nil
	l.mu.Unlock()
	for _, lc := range idle {
		lc.c.Close()
	}
}

// get returns an idle connection that is still open, or nil.
func (l *leanClient) get(now time.Time) *leanConn {
	for {
		l.mu.Lock()
		n := len(l.idle)
		if n == 0 {
			l.mu.Unlock()
			return nil
		}
		lc := l.idle[n-1]
		l.idle[n-1] = nil
		l.idle = l.idle[:n-1]
		l.mu.Unlock()
		if now.Sub(lc.idleAt) < leanIdleTimeout && alive(lc) {
			return lc
		}
		lc.c.Close()
	}
}

func (l *leanClient) put(lc *leanConn, now time.Time) {
	if lc.br.Buffered() > 0 {
		// Bytes past the answer: the connection is out of step.
		lc.c.Close()
		return
	}
	lc.idleAt = now
	l.mu.Lock()
	if len(l.idle) < leanMaxIdle {
		l.idle = append(l.idle, lc)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	lc.c.Close()
}

func (l *leanClient) dial(ctx context.Context, deadline time.Time) (*leanConn, error) {
	d := net.Dialer{Timeout: leanDialTimeout, Deadline: deadline, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	lc := &leanConn{c: c, rw: c}
	if sc, ok := c.(syscall.Conn); ok {
		lc.raw, _ = sc.SyscallConn()
		if rw := newRawIO(c, lc.raw); rw != nil {
			lc.rw = rw
		}
	}
	lc.br = bufio.NewReaderSize(lc.rw, 4096)
	return lc, nil
}

// leanAnswer is one HTTP answer: its status and as much of its body as the
// caller's limit allowed.
type leanAnswer struct {
	status int
	body   []byte
	// bodyErr: the body could not be read in full (after the status was).
	bodyErr error
}

// leanRequest is what roundTrip sends.
type leanRequest struct {
	method, path, token string
	body                []byte
	json                bool // Content-Type: application/json
	// scratch, if not nil, holds the answer's body instead of a new slice
	// (a body that is decoded and dropped); a larger one replaces it.
	scratch *[]byte
	// limit says how much of a body to keep for a status (see bodyLimit).
	limit func(status int) bodyLimit
	// res, if not nil, is the budget the body is buffered within.
	res *reservation
}

// roundTrip sends req and reads its answer, bounded by timeout and by ctx.
// The error is a transport failure with no HTTP answer.
func (l *leanClient) roundTrip(ctx context.Context, timeout time.Duration, req *leanRequest) (leanAnswer, error) {
	if err := validHeaderValue(req.token); err != nil {
		return leanAnswer{}, err
	}
	if err := ctx.Err(); err != nil {
		return leanAnswer{}, err
	}
	now := time.Now()
	deadline := now.Add(timeout)
	if req.res != nil {
		req.res.deadline = deadline
	}
	for {
		lc := l.get(now)
		reused := lc != nil
		if !reused {
			var err error
			if lc, err = l.dial(ctx, deadline); err != nil {
				if time.Now().After(deadline) {
					return leanAnswer{}, timeoutErr(timeout, err)
				}
				return leanAnswer{}, err
			}
		}
		ans, keep, wrote, err := l.exchange(ctx, lc, deadline, req)
		if ans.bodyErr != nil && isTimeout(ans.bodyErr) {
			ans.bodyErr = timeoutErr(timeout, ans.bodyErr)
		}
		if err == nil {
			if keep {
				l.put(lc, time.Now())
			} else {
				lc.c.Close()
			}
			return ans, nil
		}
		lc.c.Close()
		if ctx.Err() != nil {
			return leanAnswer{}, ctx.Err()
		}
		if isTimeout(err) {
			return leanAnswer{}, timeoutErr(timeout, err)
		}
		// As net/http: a reused connection the server had closed is retried
		// on another if nothing was written, or if the request is a GET and
		// no byte of the answer came back.
		if reused && (!wrote || (req.method == "GET" && errors.Is(err, errServerClosed))) {
			now = time.Now()
			continue
		}
		return leanAnswer{}, err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func timeoutErr(timeout time.Duration, err error) error {
	return fmt.Errorf("no answer within %v: %w: %w", timeout, context.DeadlineExceeded, err)
}

// exchange writes req on lc and reads the answer. keep says whether lc may be
// reused; wrote whether any byte of the request was written.
func (l *leanClient) exchange(ctx context.Context, lc *leanConn, deadline time.Time, req *leanRequest) (ans leanAnswer, keep, wrote bool, err error) {
	if err := lc.c.SetDeadline(deadline); err != nil {
		return ans, false, false, err
	}
	if ctx.Done() != nil {
		// The caller's cancellation cuts the exchange short; the connection
		// is then not reused (its deadline is spoilt).
		w := l.watchFrom(ctx, lc)
		defer func() {
			if l.unwatch(w, lc) {
				keep = false
			}
		}()
	}
	lc.wbuf = l.appendRequest(lc.wbuf[:0], req)
	if q, ok := lc.rw.(queuer); ok && lc.br.Buffered() == 0 {
		q.queue(lc.wbuf)
		ans, keep, err = readAnswer(lc.br, req)
		n, all := q.dequeue()
		return ans, keep && all, n > 0, err
	}
	n, err := lc.rw.Write(lc.wbuf)
	if err != nil {
		return ans, false, n > 0, err
	}
	ans, keep, err = readAnswer(lc.br, req)
	return ans, keep, true, err
}

// queuer is a connection's I/O that sends a request from within the wait
// for its answer (rawIO on linux).
type queuer interface {
	queue(request []byte)
	dequeue() (written int, all bool)
}

func (l *leanClient) appendRequest(b []byte, req *leanRequest) []byte {
	b = append(b, req.method...)
	b = append(b, ' ')
	b = append(b, req.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, l.host...)
	b = append(b, "\r\nUser-Agent: "+leanUserAgent+"\r\n"...)
	if req.body != nil || req.method == "POST" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.body)), 10)
		b = append(b, "\r\n"...)
	}
	if req.json {
		b = append(b, "Content-Type: application/json\r\n"...)
	}
	if req.token != "" {
		b = append(b, "Authorization: Bearer "...)
		b = append(b, req.token...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, req.body...)
}

// validHeaderValue rejects what net/http would refuse to send in a header.
func validHeaderValue(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("invalid header field value for Authorization")
		}
	}
	return nil
}

// readAnswer parses one answer (skipping 1xx interim ones) from br, its
// body as req.limit and req.scratch say.
func readAnswer(br *bufio.Reader, req *leanRequest) (ans leanAnswer, keep bool, err error) {
	headerBytes := 0
	for first := true; ; first = false {
		line, err := readLine(br, &headerBytes)
		if err != nil {
			if first && len(line) == 0 && (err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err)) {
				return ans, false, fmt.Errorf("%w: %w", errServerClosed, err)
			}
			return ans, false, headerErr(err)
		}
		status, http10, err := parseStatusLine(line)
		if err != nil {
			return ans, false, err
		}
		h, err := readHeaders(br, &headerBytes, http10)
		if err != nil {
			return ans, false, err
		}
		if status >= 100 && status < 200 {
			if status == 101 {
				return ans, false, fmt.Errorf("unexpected 101 Switching Protocols")
			}
			continue
		}
		ans.status = status
		keep = !http10 && !h.close
		r := bodyRead{lim: req.limit(status), scratch: req.scratch, res: req.res}
		switch {
		case status == 204 || status == 304:
			return ans, keep, nil
		case h.chunked:
			ans.body, keep, ans.bodyErr = readChunked(br, &r, keep)
		case h.length >= 0:
			ans.body, keep, ans.bodyErr = readSized(br, h.length, &r, keep)
		default:
			// Delimited by the end of the connection.
			ans.body, ans.bodyErr = r.readAll(br, -1)
			keep = false
		}
		if ans.bodyErr != nil {
			keep = false
		}
		return ans, keep, nil
	}
}

func headerErr(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.Is(err, syscall.ECONNRESET) || (errors.As(err, &oe) && !oe.Timeout())
}

// readLine returns one line without its CRLF (or LF); total bounds the
// header bytes of an answer.
func readLine(br *bufio.Reader, total *int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(long)+*total > leanMaxHeader {
				return nil, fmt.Errorf("answer header exceeds %d bytes", leanMaxHeader)
			}
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	*total += len(line)
	if *total > leanMaxHeader {
		return nil, fmt.Errorf("answer header exceeds %d bytes", leanMaxHeader)
	}
	if err != nil {
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.x NNN[ reason]" as net/http's
// ReadResponse does (spaces before the code are skipped, the reason is not
// looked at), but stricter on two things a plain-http target has no reason
// to send: a version other than HTTP/1.x and a code below 100.
func parseStatusLine(line []byte) (status int, http10 bool, err error) {
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return 0, false, fmt.Errorf("malformed HTTP status line %q", excerpt(line))
	}
	// HTTP/1.y with one digit y: a minor version past 1 speaks 1.1.
	if len(proto) != 8 || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || proto[7] < '0' || proto[7] > '9' {
		return 0, false, fmt.Errorf("malformed HTTP version in %q", excerpt(line))
	}
	http10 = proto[7] == '0'
	code, _, _ := bytes.Cut(bytes.TrimLeft(rest, " "), []byte(" "))
	if len(code) != 3 {
		return 0, false, fmt.Errorf("malformed HTTP status code in %q", excerpt(line))
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("malformed HTTP status code in %q", excerpt(line))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, false, fmt.Errorf("malformed HTTP status code in %q", excerpt(line))
	}
	return status, http10, nil
}

type answerHeader struct {
	length  int64 // -1: none
	chunked bool
	close   bool
}

// readFields reads header fields (or trailers) up to the empty line by
// net/textproto's rules, which net/http answers are read by: a bare LF ends
// a line; a name is token bytes (a space is let through, and the field then
// matches no known name); a value holds no control byte but tab; a line
// that starts with a space or tab continues the previous field (obsolete
// line folding), for which field is called with fold set and name nil.
func readFields(br *bufio.Reader, total *int, field func(name, value []byte, fold bool) error) error {
	for first := true; ; first = false {
		line, err := readLine(br, total)
		if err != nil {
			return headerErr(err)
		}
		if len(line) == 0 {
			return nil
		}
		if c := line[0]; c == ' ' || c == '\t' {
			if first {
				return fmt.Errorf("malformed HTTP header: continuation first %q", excerpt(line))
			}
			if !validFieldValue(line) {
				return fmt.Errorf("malformed HTTP header value %q", excerpt(line))
			}
			if err := field(nil, trimOWS(line), true); err != nil {
				return err
			}
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || !validFieldName(line[:i]) || !validFieldValue(line[i+1:]) {
			return fmt.Errorf("malformed HTTP header line %q", excerpt(line))
		}
		if err := field(line[:i], trimOWS(line[i+1:]), false); err != nil {
			return err
		}
	}
}

// readHeaders reads the header fields, keeping the ones that frame the body
// and the connection. Transfer-Encoding is ignored on an HTTP/1.0 answer
// (which HTTP/1.0 does not have), as net/http does: such a body is
// delimited by its Content-Length or the end of the connection.
func readHeaders(br *bufio.Reader, total *int, http10 bool) (answerHeader, error) {
	h := answerHeader{length: -1}
	var (
		last       string // the framing field a folded line would continue
		lengthLen  int    // digits of the first Content-Length
		encodings  int
		badTrailer bool
	)
	err := readFields(br, total, func(name, value []byte, fold bool) error {
		if fold {
			// net/http joins the fold to the value with a space, which no
			// Content-Length or Transfer-Encoding then parses.
			if len(value) > 0 && last != "" {
				return fmt.Errorf("folded %s header", last)
			}
			return nil
		}
		last = ""
		switch {
		case asciiEqualFold(name, "content-length"):
			last = "Content-Length"
			n, err := strconv.ParseUint(string(value), 10, 63)
			if err != nil {
				return fmt.Errorf("bad Content-Length %q", excerpt(value))
			}
			// Repeats must be the same text (as net/http compares them).
			if h.length >= 0 && (h.length != int64(n) || lengthLen != len(value)) {
				return fmt.Errorf("conflicting Content-Length headers")
			}
			h.length, lengthLen = int64(n), len(value)
		case asciiEqualFold(name, "transfer-encoding"):
			if http10 {
				return nil
			}
			last = "Transfer-Encoding"
			if encodings++; encodings > 1 {
				return fmt.Errorf("too many Transfer-Encoding headers")
			}
			if !asciiEqualFold(value, "chunked") {
				return fmt.Errorf("unsupported transfer encoding %q", excerpt(value))
			}
			h.chunked = true
		case asciiEqualFold(name, "trailer"):
			for _, k := range bytes.Split(value, []byte(",")) {
				k = trimOWS(k)
				if asciiEqualFold(k, "content-length") || asciiEqualFold(k, "transfer-encoding") || asciiEqualFold(k, "trailer") {
					badTrailer = true
				}
			}
		case asciiEqualFold(name, "connection"):
			for _, tok := range bytes.Split(value, []byte(",")) {
				if asciiEqualFold(trimOWS(tok), "close") {
					h.close = true
				}
			}
		}
		return nil
	})
	if err == nil && badTrailer && h.chunked {
		// A trailer may not reframe the body (net/http refuses it too).
		err = fmt.Errorf("bad Trailer header")
	}
	return h, err
}

// trimOWS trims spaces and tabs, the only white space a valid field has.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// validFieldName: token bytes, and the space net/textproto lets through.
func validFieldName(b []byte) bool {
	for _, c := range b {
		if c != ' ' && (c >= 0x80 || !isTokenByte[c]) {
			return false
		}
	}
	return true
}

// validFieldValue: visible bytes, space, tab and obs-text (0x80 and up).
func validFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// isTokenByte marks RFC 9110's tchar.
var isTokenByte = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func asciiEqualFold[S []byte | string](b S, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// readSized reads a body of n bytes, keeping up to r.lim.keep and dropping
// up to r.lim.drain more so the connection can be reused; past that it gives
// up on the connection. A refused body past the limit fails before a byte of
// it is read.
func readSized(br *bufio.Reader, n int64, r *bodyRead, keep bool) ([]byte, bool, error) {
	if r.lim.refuse && n > r.lim.keep {
		return nil, false, &tooLargeError{size: n, limit: r.lim.keep}
	}
	k := min(n, r.lim.keep)
	b, err := r.alloc(k)
	if err != nil {
		return nil, false, err
	}
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, false, unexpected(err)
	}
	rest := n - k
	if rest == 0 {
		return b, keep, nil
	}
	if rest > r.lim.drain {
		return b, false, nil
	}
	if _, err := br.Discard(int(rest)); err != nil {
		return b, false, nil // the body was read as far as asked
	}
	return b, keep, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readChunked reads a chunked body (RFC 9112 section 7.1) and its trailers
// as net/http does: chunk lines end in CRLF (a bare LF or a stray CR is
// refused), at most 16 hex digits, trailing white space before an
// extension is not trimmed, and framing overhead past 16 KiB beyond the
// data's own is refused.
func readChunked(br *bufio.Reader, r *bodyRead, keep bool) ([]byte, bool, error) {
	var b []byte
	if r.scratch != nil {
		b = (*r.scratch)[:0]
		defer func() {
			if cap(b) <= maxScratch {
				*r.scratch = b[:0]
			}
		}()
	}
	var dropped, excess int64
	for {
		line, err := readChunkLine(br)
		if err != nil {
			return b, false, err
		}
		excess += int64(len(line)) + 2
		line, _, _ = bytes.Cut(trimOWS(line), []byte(";"))
		n, err := parseHexUint(line)
		if err != nil {
			return b, false, err
		}
		excess = max(excess-16-2*int64(min(n, 1<<60)), 0)
		if excess > 16<<10 {
			return b, false, fmt.Errorf("chunked encoding contains too much non-data")
		}
		if n == 0 {
			break
		}
		if n > 1<<62 {
			return b, false, fmt.Errorf("chunk of %d bytes", n)
		}
		size := int64(n)
		if r.lim.refuse && int64(len(b))+size > r.lim.keep {
			return b, false, &tooLargeError{size: int64(len(b)) + size, atLeast: true, limit: r.lim.keep}
		}
		if room := r.lim.keep - int64(len(b)); room > 0 {
			k := min(room, size)
			start := len(b)
			if b, err = r.grow(b, k); err != nil {
				return b, false, err
			}
			b = b[:start+int(k)]
			if _, err := io.ReadFull(br, b[start:]); err != nil {
				return b[:start], false, unexpected(err)
			}
			size -= k
		}
		if size > 0 {
			if dropped+size > r.lim.drain {
				return b, false, nil // kept what was asked; the rest is not worth reading
			}
			if _, err := br.Discard(int(size)); err != nil {
				return b, false, unexpected(err)
			}
			dropped += size
		}
		if err := crlf(br); err != nil {
			return b, false, err
		}
	}
	if err := readTrailers(br); err != nil {
		return b, false, err
	}
	return b, keep, nil
}

// maxChunkLine bounds a chunk-size line, as net/http's.
const maxChunkLine = 4096

// readChunkLine returns a chunk-size line without its CRLF.
func readChunkLine(br *bufio.Reader) ([]byte, error) {
	p, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("chunk line exceeds %d bytes", maxChunkLine)
	}
	if err != nil {
		return nil, unexpected(err)
	}
	// The first CR ends the line (a lone "\n" has it at -1, as len-2).
	if i := bytes.IndexByte(p, '\r'); i < 0 || i != len(p)-2 {
		return nil, fmt.Errorf("malformed chunk line %q", excerpt(p))
	}
	p = p[:len(p)-2]
	if len(p) >= maxChunkLine {
		return nil, fmt.Errorf("chunk line exceeds %d bytes", maxChunkLine)
	}
	return p, nil
}

func parseHexUint(v []byte) (n uint64, err error) {
	if len(v) == 0 || len(v) > 16 {
		return 0, fmt.Errorf("malformed chunk size %q", excerpt(v))
	}
	for _, c := range v {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, fmt.Errorf("malformed chunk size %q", excerpt(v))
		}
		n = n<<4 | uint64(c)
	}
	return n, nil
}

// readTrailers reads the trailer section after the last chunk. As net/http,
// a non-empty one must show its end (CRLF CRLF) within the reader's buffer,
// so a hostile target cannot stream trailers for ever.
func readTrailers(br *bufio.Reader) error {
	p, err := br.Peek(2)
	if string(p) == "\r\n" {
		br.Discard(2)
		return nil
	}
	if len(p) < 2 {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	if !upcomingDoubleCRLF(br) {
		return fmt.Errorf("trailer section too long or unterminated")
	}
	total := 0
	return readFields(br, &total, func([]byte, []byte, bool) error { return nil })
}

func upcomingDoubleCRLF(br *bufio.Reader) bool {
	for n := 4; ; n++ {
		p, err := br.Peek(n)
		if bytes.HasSuffix(p, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

func crlf(br *bufio.Reader) error {
	var p [2]byte
	if _, err := io.ReadFull(br, p[:]); err != nil {
		return unexpected(err)
	}
	if p != [2]byte{'\r', '\n'} {
		return fmt.Errorf("malformed chunked encoding: no CRLF after chunk data")
	}
	return nil
}
