// Package embedded is the embedded target: the reference clinic started in
// the harness's own process, which it can stop, crash and start again on the
// same data. It is the harness side's one door to the clinic's code:
// everything else reaches the clinic over HTTP and WebRTC, as it would any
// target, and opens it through the target registry (scheme "embedded",
// registered by this package), or asks this package what the clinic's bug
// catalogue means (bugs.go).
package embedded

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/telechaos/telechaos/clinic"
)

// Config configures an embedded clinic (the clinic's own configuration:
// address, data directory, media port and IPs, bugs, seed, logger).
type Config = clinic.Config

// Clinic owns an in-process clinic and restarts it on the same data
// directory with the same configuration. Safe for concurrent use. It is a
// target.Control (and a chaos.Restartable).
type Clinic struct {
	mu       sync.Mutex
	cfg      clinic.Config
	srv      *clinic.Server // nil while stopped
	restarts int
	keepAddr bool
}

// Start starts a clinic with cfg (cfg.DataDir is required: it is what
// survives restarts). Restarts listen anew on cfg.Addr (with port 0, on a
// new port); see KeepAddr.
func Start(ctx context.Context, cfg Config) (*Clinic, error) {
	srv, err := clinic.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Clinic{cfg: cfg, srv: srv}, nil
}

// KeepAddr makes every restart listen on the HTTP address the clinic has
// now, so a client's base URL holds across restarts (a start that loses
// the just-released port to a race tries again for a short while).
func (c *Clinic) KeepAddr() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		c.cfg.Addr = strings.TrimPrefix(c.srv.URL(), "http://")
	}
	c.keepAddr = true
}

// Server is the running clinic, nil while stopped.
func (c *Clinic) Server() *clinic.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv
}

// URL is the running clinic's base URL ("" while stopped).
func (c *Clinic) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return ""
	}
	return c.srv.URL()
}

// Restarts counts completed starts after the first.
func (c *Clinic) Restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restarts
}

// Stop closes the clinic gracefully (crash false) or as a crash would
// (clinic.Server.Crash: nothing finalised, connections cut).
func (c *Clinic) Stop(_ context.Context, crash bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return nil
	}
	srv := c.srv
	c.srv = nil
	var err error
	if crash {
		err = srv.Crash()
	} else {
		err = srv.Close()
	}
	if err != nil {
		return fmt.Errorf("stop clinic (crash %v): %w", crash, err)
	}
	return nil
}

// Start starts the clinic again on the same data directory and config; a
// running clinic is left alone.
func (c *Clinic) Start(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		return c.srv.URL(), nil
	}
	attempts := 1
	if c.keepAddr {
		attempts = 5 // the address was just released: a race for the port is retried
	}
	var err error
	for i := 0; i < attempts; i++ {
		var srv *clinic.Server
		if srv, err = clinic.Start(ctx, c.cfg); err == nil {
			c.srv = srv
			c.restarts++
			return srv.URL(), nil
		}
		if i+1 < attempts && sleepCtx(ctx, 100*time.Millisecond) != nil {
			break
		}
	}
	return "", fmt.Errorf("restart clinic: %w", err)
}

// Restart is Stop then Start.
func (c *Clinic) Restart(ctx context.Context, crash bool) (string, error) {
	stopErr := c.Stop(ctx, crash)
	url, err := c.Start(ctx)
	if err != nil {
		return "", errors.Join(stopErr, err)
	}
	return url, stopErr
}

// Close stops the clinic gracefully for good.
func (c *Clinic) Close() error { return c.Stop(context.Background(), false) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
