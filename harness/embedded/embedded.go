// Package embedded is the embedded target: the reference clinic started in
// the harness's own process, which it can stop, crash and start again on the
// same data. It is the harness side's one door to the clinic's code (with
// the packages listed in internal/archtest that still open it directly):
// everything else reaches the clinic over HTTP and WebRTC, as it would any
// target.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"telechaos/clinic"
)

// Clinic owns an in-process clinic and restarts it on the same data
// directory with the same configuration. Safe for concurrent use.
type Clinic struct {
	mu       sync.Mutex
	cfg      clinic.Config
	srv      *clinic.Server // nil while stopped
	restarts int
}

// Start starts a clinic with cfg (cfg.DataDir is required: it is what
// survives restarts).
func Start(ctx context.Context, cfg clinic.Config) (*Clinic, error) {
	srv, err := clinic.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Clinic{cfg: cfg, srv: srv}, nil
}

// Adopt wraps a clinic the runner already started with cfg.
func Adopt(srv *clinic.Server, cfg clinic.Config) *Clinic {
	return &Clinic{cfg: cfg, srv: srv}
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
	srv, err := clinic.Start(ctx, c.cfg)
	if err != nil {
		return "", fmt.Errorf("restart clinic: %w", err)
	}
	c.srv = srv
	c.restarts++
	return srv.URL(), nil
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
