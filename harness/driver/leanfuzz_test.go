package driver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// fuzzCap is the body cap both parsers read with: small, so that the
// fuzzer reaches bodies past it.
const fuzzCap = 256

// verdict is what a parser made of an answer.
type verdict struct {
	ok     bool
	status int
	body   []byte
	err    error
}

// rawListener serves each dialled connection the bytes handed to serve,
// then closes it: an answer exactly as a hostile target would write it.
type rawListener struct {
	ln   net.Listener
	next chan []byte
}

func newRawListener(tb testing.TB) *rawListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	l := &rawListener{ln: ln, next: make(chan []byte, 1)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			raw := <-l.next
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.Write(raw)
			}()
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return l
}

// serve dials the listener, which answers raw.
func (l *rawListener) serve(tb testing.TB, raw []byte) *bufio.Reader {
	l.next <- raw
	c, err := net.Dial("tcp", l.ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The size both clients use: framing limits (a chunk line, trailers)
	// are the reader's buffer.
	return bufio.NewReaderSize(c, 4096)
}

func leanVerdict(br *bufio.Reader) verdict {
	limit := func(int) bodyLimit { return bodyLimit{keep: fuzzCap, refuse: true} }
	ans, _, err := readAnswer(br, &leanRequest{limit: limit})
	if err == nil {
		err = ans.bodyErr
	}
	return verdict{ok: err == nil, status: ans.status, body: ans.body, err: err}
}

// errTooLargeFuzz marks net/http's side reading past fuzzCap (the lean
// client's own ErrTooLarge is its bodyErr).
var errTooLargeFuzz = errors.New("body past the fuzz cap")

// stdVerdict reads the answer as net/http's Transport does (ReadResponse,
// skipping 1xx interim answers), its body with the same cap. excluded: the
// answer is one the lean client refuses on purpose, where net/http lets it
// through:
//   - a version other than HTTP/1.x (ReadResponse takes HTTP/0.9 or
//     HTTP/2.0 on an HTTP/1 connection);
//   - a status code below 100 (ReadResponse takes 000 and even "+99");
//   - 101 Switching Protocols (net/http hands over the connection; the
//     driver never asks to upgrade).
func stdVerdict(br *bufio.Reader) (v verdict, excluded bool) {
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			return verdict{err: err}, false
		}
		if resp.ProtoMajor != 1 || resp.StatusCode < 100 || resp.StatusCode == 101 {
			return verdict{}, true
		}
		if resp.StatusCode < 200 {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, fuzzCap+1))
		if err == nil && len(b) > fuzzCap {
			err = errTooLargeFuzz
		}
		return verdict{ok: err == nil, status: resp.StatusCode, body: b, err: err}, false
	}
}

var fuzzSeeds = []string{
	// normal
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{\"replays\":[],\"count\":0}",
	// chunked, with an extension
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na;ext=1\r\n{\"replays\"\r\ne\r\n:[],\"count\":0}\r\n0\r\n\r\n",
	// chunked with trailers
	"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nOggS\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
	// Content-Length mismatch (short, long)
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nOggS",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOggS",
	// duplicate Content-Length, same and different
	"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nOggS",
	"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 04\r\n\r\nOggS",
	"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nOggS!",
	// negative and huge Content-Length
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nOggS",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nOggS",
	"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\nOggS",
	// HTTP/1.0, delimited by the close, with chunked ignored, with a length
	"HTTP/1.0 200 OK\r\n\r\nOggS-bytes",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nOggS\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nOggS-more",
	// 204 and 304 with a body
	"HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nOggS",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nOggS\r\n0\r\n\r\n",
	// obsolete line folding
	"HTTP/1.1 200 OK\r\nX-Long: a\r\n b\r\nContent-Length: 4\r\n\r\nOggS",
	"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n 0\r\n\r\nOggS",
	"HTTP/1.1 200 OK\r\n Content-Length: 4\r\n\r\nOggS",
	// bare LF
	"HTTP/1.1 200 OK\nContent-Length: 4\n\nOggS",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\nOggS\r\n0\r\n\r\n",
	// interim answers, an error answer, a too-large body
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 404 Not Found\r\nContent-Length: 22\r\n\r\n{\"error\":\"not_found\"}\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + string(bytes.Repeat([]byte("x"), 300)),
	// Transfer-Encoding with Content-Length; an unknown encoding
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nOggS\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nOggS",
}

// FuzzLeanMatchesNetHTTP: the lean client and net/http, given the same raw
// answer, agree on whether to take it, its status and its body.
func FuzzLeanMatchesNetHTTP(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	l := newRawListener(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		std, excluded := stdVerdict(l.serve(t, raw))
		if excluded {
			return
		}
		lean := leanVerdict(l.serve(t, raw))
		if lean.ok != std.ok {
			t.Fatalf("%q:\nlean ok=%v (%v)\nnet/http ok=%v (%v)", raw, lean.ok, lean.err, std.ok, std.err)
		}
		if !lean.ok {
			return
		}
		if lean.status != std.status || !bytes.Equal(lean.body, std.body) {
			t.Fatalf("%q:\nlean %d %q\nnet/http %d %q", raw, lean.status, lean.body, std.status, std.body)
		}
	})
}
