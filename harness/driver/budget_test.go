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
	"sync"
	"testing"
	"time"
)

// Many concurrent fetches of large bodies under a small shared budget: the
// budget is never exceeded, every fetch ends (whole, or ErrTooLarge), none
// waits for ever, and all the budget is given back.
func TestBudgetBoundsConcurrentBodies(t *testing.T) {
	const size = 192 << 10
	body := strings.Repeat("x", size)
	s := newRawServer(t, func(_, n int, r *http.Request, w net.Conn) bool {
		switch r.URL.Query().Get("track") {
		case "sized":
			io.WriteString(w, sized(200, body))
		case "chunked":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < size; i += 16 << 10 {
				fmt.Fprintf(w, "%x\r\n%s\r\n", 16<<10, body[i:i+16<<10])
				time.Sleep(time.Millisecond) // let other answers grow meanwhile
			}
			io.WriteString(w, "0\r\n\r\n")
		default: // to the close
			io.WriteString(w, "HTTP/1.1 200 OK\r\n\r\n"+body)
			return false
		}
		return true
	})
	budget := NewBudget(1 << 20) // room for 5 bodies at once
	// Two targets sharing the budget, as the targets of one run may.
	h1 := leanTarget(t, s.url(), HTTPOptions{Budget: budget})
	h2 := leanTarget(t, s.url(), HTTPOptions{Budget: budget})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net only
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := map[string]int{}, map[string]int{}
	for i := range 48 {
		kind := []string{"sized", "chunked", "close"}[i%3]
		h := []*HTTPTarget{h1, h2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := h.FetchMedia(ctx, sess, "r", kind)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && len(b) == size:
				ok[kind]++
			case errors.Is(err, ErrTooLarge):
				refused[kind]++
			default:
				t.Errorf("%s: %d bytes, %v", kind, len(b), err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("fetches still waiting at the safety net's deadline")
	}
	if p := budget.peak.Load(); p > budget.Size() {
		t.Errorf("peak in use %d exceeds the budget %d", p, budget.Size())
	}
	if n := budget.InUse(); n != 0 {
		t.Errorf("%d bytes still in use after every fetch returned", n)
	}
	if ok["sized"] != 16 {
		t.Errorf("%d of 16 sized bodies read (they wait for room)", ok["sized"])
	}
	t.Logf("read %v, refused %v, peak %d of %d", ok, refused, budget.peak.Load(), budget.Size())
}

// A body larger than the whole budget is refused from its header (it could
// never fit), naming the budget.
func TestBudgetRefusesBodyLargerThanBudget(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(200, strings.Repeat("x", 2048)))
		return true
	})
	budget := NewBudget(1024)
	h := leanTarget(t, s.url(), HTTPOptions{Budget: budget})
	_, err := h.FetchMedia(context.Background(), sess, "r", "t")
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "exceeds the 1 KiB budget") {
		t.Errorf("err = %v, want ErrTooLarge naming the budget", err)
	}
	if budget.InUse() != 0 {
		t.Errorf("%d bytes in use", budget.InUse())
	}
}

// A body of known length waits for room, for no longer than the request
// may take; then it fails as too large for the budget's room, not as the
// target's silence.
func TestBudgetWaitBoundedByTimeout(t *testing.T) {
	s := newRawServer(t, func(_, _ int, r *http.Request, w net.Conn) bool {
		io.WriteString(w, sized(200, strings.Repeat("x", 512)))
		return true
	})
	budget := NewBudget(1024)
	hold := reservation{budget: budget}
	if err := hold.reserve(1024); err != nil {
		t.Fatal(err)
	}
	h := leanTarget(t, s.url(), HTTPOptions{Budget: budget, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := h.FetchMedia(context.Background(), sess, "r", "t")
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no room in the 1 KiB budget") {
		t.Errorf("err = %v, want ErrTooLarge for want of room", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("waited %v", el)
	}
	hold.release()
	if b, err := h.FetchMedia(context.Background(), sess, "r", "t"); err != nil || len(b) != 512 {
		t.Errorf("with room: %d bytes, %v", len(b), err)
	}
	if budget.InUse() != 0 {
		t.Errorf("%d bytes in use", budget.InUse())
	}
}

// The net/http path (https) reads within the budget too.
func TestBudgetBoundsConcurrentBodiesHTTPS(t *testing.T) {
	const size = 192 << 10
	body := strings.Repeat("x", size)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("track") == "sized" {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		for i := 0; i < size; i += 16 << 10 {
			io.WriteString(w, body[i:i+16<<10])
			w.(http.Flusher).Flush() // unsized: chunked
		}
	}))
	t.Cleanup(srv.Close)
	budget := NewBudget(1 << 20)
	h, err := NewHTTP(srv.URL, HTTPOptions{Client: srv.Client(), Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net only
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[string]int{}
	for i := range 24 {
		kind := []string{"sized", "chunked"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := h.FetchMedia(ctx, sess, "r", kind)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && len(b) == size {
				ok[kind]++
			} else if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s: %d bytes, %v", kind, len(b), err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("fetches still waiting at the safety net's deadline")
	}
	if p := budget.peak.Load(); p > budget.Size() || budget.InUse() != 0 {
		t.Errorf("peak %d, in use after %d, budget %d", p, budget.InUse(), budget.Size())
	}
	if ok["sized"] != 12 {
		t.Errorf("%d of 12 sized bodies read", ok["sized"])
	}
}
