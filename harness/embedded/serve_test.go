package embedded

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestServeRunsUntilCancelled: Serve reports the URL it listens on, answers
// /healthz there, and closes the clinic (nil error) when ctx ends.
func TestServeRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{DataDir: t.TempDir(), ListenIP: "127.0.0.1", Ready: func(u string) { urls <- u }})
	}()
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatalf("Serve returned before it was ready: %v", err)
	}
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %s", resp.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("clinic still answers at %s after Serve returned", url)
	}
}

// TestServeBadOptions: a clinic that cannot start is an error naming why, at
// once (Serve does not wait for ctx).
func TestServeBadOptions(t *testing.T) {
	for name, o := range map[string]ServeOptions{
		"no data dir": {},
		"unknown bug": {DataDir: t.TempDir(), Bugs: []string{"no-such-bug"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := Serve(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), "clinic") {
				t.Errorf("err = %v, want a clinic start error", err)
			}
		})
	}
}
