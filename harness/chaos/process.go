package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"telechaos/clinic"
)

// Restartable is a target the harness can restart: the embedded clinic now,
// containers (stop/start, SIGKILL) once the deployment package offers them.
// newURL is the target's HTTP base URL after the restart (ports may change).
type Restartable interface {
	Restart(ctx context.Context, crash bool) (newURL string, err error)
}

// Stoppable is a Restartable that can stay down for a while (ClinicFault's
// down time): Stop, then Start later.
type Stoppable interface {
	Restartable
	Stop(ctx context.Context, crash bool) error
	Start(ctx context.Context) (newURL string, err error)
}

// EmbeddedClinic owns an in-process clinic and restarts it on the same data
// directory with the same configuration. Safe for concurrent use.
type EmbeddedClinic struct {
	mu       sync.Mutex
	cfg      clinic.Config
	srv      *clinic.Server // nil while stopped
	restarts int
}

var _ Stoppable = (*EmbeddedClinic)(nil)

// StartClinic starts a clinic with cfg (cfg.DataDir is required: it is what
// survives restarts).
func StartClinic(ctx context.Context, cfg clinic.Config) (*EmbeddedClinic, error) {
	srv, err := clinic.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &EmbeddedClinic{cfg: cfg, srv: srv}, nil
}

// AdoptClinic wraps a clinic the runner already started with cfg.
func AdoptClinic(srv *clinic.Server, cfg clinic.Config) *EmbeddedClinic {
	return &EmbeddedClinic{cfg: cfg, srv: srv}
}

// Server is the running clinic, nil while stopped.
func (c *EmbeddedClinic) Server() *clinic.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv
}

// URL is the running clinic's base URL ("" while stopped).
func (c *EmbeddedClinic) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return ""
	}
	return c.srv.URL()
}

// Restarts counts completed starts after the first.
func (c *EmbeddedClinic) Restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restarts
}

// Stop closes the clinic gracefully (crash false) or as a crash would
// (clinic.Server.Crash: nothing finalised, connections cut).
func (c *EmbeddedClinic) Stop(_ context.Context, crash bool) error {
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
func (c *EmbeddedClinic) Start(ctx context.Context) (string, error) {
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
func (c *EmbeddedClinic) Restart(ctx context.Context, crash bool) (string, error) {
	stopErr := c.Stop(ctx, crash)
	url, err := c.Start(ctx)
	if err != nil {
		return "", errors.Join(stopErr, err)
	}
	return url, stopErr
}

// Close stops the clinic gracefully for good.
func (c *EmbeddedClinic) Close() error { return c.Stop(context.Background(), false) }

// Process fault kinds.
const (
	KindClinicRestart = "clinic-restart" // graceful close, start on the same data
	KindClinicCrash   = "clinic-crash"   // crash (nothing finalised), start on the same data
)

// CrashInFlight is the default ParamTail of process faults: frames the
// clients sent just before the stop that were still in socket buffers or in
// the target's pipeline (and frames sent after the restart window until the
// clients notice, see ClinicFault) may be lost without a bug.
const CrashInFlight = 500 * time.Millisecond

// ClinicFault restarts (or crashes and restarts) the target. Inject does the
// whole thing: stop, stay down for Down, start, then point the proxy at the
// new address; the window therefore covers the outage. Heal only retries a
// start that failed. Calls in progress cannot survive (their DTLS state is
// gone): the runner learns about the restart from the Recorder's OnWindow
// hook (or OnRestart) and has its users rejoin with new PeerConnections.
type ClinicFault struct {
	name   string
	crash  bool
	down   time.Duration
	target Restartable
	proxy  *HTTPProxy
	params map[string]string

	mu        sync.Mutex
	stopped   bool
	onRestart []func(newURL string)
}

var _ Fault = (*ClinicFault)(nil)

// NewClinicFault builds a restart (crash false) or crash fault of target;
// proxy (may be nil) is retargeted to the new address. tail is how long after
// the window clients may still lose media (0: CrashInFlight).
func NewClinicFault(name string, crash bool, down, tail time.Duration, target Restartable, proxy *HTTPProxy) *ClinicFault {
	kind := KindClinicRestart
	if crash {
		kind = KindClinicCrash
	}
	if tail <= 0 {
		tail = CrashInFlight
	}
	p := map[string]string{ParamKind: kind, ParamLoss: "1", ParamDirection: DirBoth, ParamTail: tail.String()}
	if down > 0 {
		p["down"] = down.String()
	}
	return &ClinicFault{name: name, crash: crash, down: down, target: target, proxy: proxy, params: p}
}

// OnRestart calls fn with the target's new URL after every successful start.
func (f *ClinicFault) OnRestart(fn func(newURL string)) {
	f.mu.Lock()
	f.onRestart = append(f.onRestart, fn)
	f.mu.Unlock()
}

func (f *ClinicFault) Name() string              { return f.name }
func (f *ClinicFault) Params() map[string]string { return f.params }

func (f *ClinicFault) Available(env Env) error {
	if f.target == nil || env.Target == nil {
		return fmt.Errorf("%s: %w: the target cannot be restarted by the harness", f.name, ErrUnavailable)
	}
	if _, ok := f.target.(Stoppable); f.down > 0 && !ok {
		return fmt.Errorf("%s: %w: down time needs a target that can stay stopped", f.name, ErrUnavailable)
	}
	return nil
}

func (f *ClinicFault) Inject(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.target.(Stoppable)
	if f.down <= 0 || !ok {
		url, err := f.target.Restart(ctx, f.crash)
		if url == "" {
			f.stopped = true
			return err
		}
		return errors.Join(err, f.started(url))
	}
	stopErr := st.Stop(ctx, f.crash)
	f.stopped = true
	t := time.NewTimer(f.down)
	select {
	case <-t.C:
	case <-ctx.Done(): // stopping: come back up at once
		t.Stop()
	}
	// The target must come back even when the run is stopping.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	url, err := st.Start(sctx)
	if err != nil {
		return errors.Join(stopErr, err)
	}
	return errors.Join(stopErr, f.started(url))
}

// started retargets the proxy and tells the listeners; f.mu is held.
func (f *ClinicFault) started(url string) error {
	f.stopped = false
	var err error
	if f.proxy != nil {
		err = f.proxy.Retarget(url)
	}
	for _, fn := range f.onRestart {
		fn(url)
	}
	return err
}

// Heal starts the target if an Inject left it down.
func (f *ClinicFault) Heal(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		return nil
	}
	st, ok := f.target.(Stoppable)
	if !ok {
		url, err := f.target.Restart(ctx, false)
		if err != nil {
			return err
		}
		return f.started(url)
	}
	url, err := st.Start(ctx)
	if err != nil {
		return err
	}
	return f.started(url)
}
