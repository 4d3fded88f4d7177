package deploy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/target"
)

// Container fault kinds (chaos window parameter "kind").
const (
	// FaultKill is SIGKILL (no flush, no finalisation), then a start on the
	// same data when the window heals: a crash.
	FaultKill = "container-kill"
	// FaultStop is SIGTERM (the clinic shuts down gracefully), then a start.
	FaultStop = "container-stop"
	// FaultPause freezes the container (cgroup freezer) until the window
	// heals: requests and media queue, nothing is lost at the socket.
	FaultPause = "container-pause"
	// FaultDisconnect takes the container off its network until the window
	// heals: its published ports go away while it keeps running.
	FaultDisconnect = "container-disconnect"
)

// FaultKinds lists the container fault kinds.
var FaultKinds = []string{FaultKill, FaultStop, FaultPause, FaultDisconnect}

// stopTimeout is FaultStop's grace before the engine sends SIGKILL; the
// clinic's own shutdown is bounded at 10 s.
const stopTimeout = 10 * time.Second

// exitWait bounds the wait for a killed or stopped container to leave the
// running state (a start while it still runs would be a no-op).
const exitWait = 20 * time.Second

// Target adapts a Deployment to target.Control (and chaos.Restartable), so
// the chaos package's ClinicFault, and anything else written against the
// control interface, can stop, start and restart a container as it does the
// embedded clinic. URLs it returns are the
// container's own published address, which changes across restarts; front it
// with a chaos.HTTPProxy to keep one stable URL.
type Target struct{ d *Deployment }

var (
	_ target.Control    = (*Target)(nil)
	_ chaos.Restartable = (*Target)(nil)
)

// ChaosTarget returns d as a chaos target (chaos.Env.Target).
func (d *Deployment) ChaosTarget() *Target { return &Target{d: d} }

// Deployment is the deployment the target acts on.
func (t *Target) Deployment() *Deployment { return t.d }

// Stop kills the container (crash) or stops it gracefully, and waits until
// the engine reports it is no longer running.
func (t *Target) Stop(ctx context.Context, crash bool) error {
	var err error
	if crash {
		err = t.d.Kill(ctx)
	} else {
		err = t.d.Stop(ctx, stopTimeout)
	}
	if err != nil {
		return err
	}
	return t.d.waitNotRunning(ctx)
}

// Start starts the container again on the same data, waits for /healthz and
// returns its (possibly new) URL.
func (t *Target) Start(ctx context.Context) (string, error) {
	if err := t.d.Start(ctx); err != nil {
		return "", err
	}
	return t.d.URL(), nil
}

// Restart is Stop then Start.
func (t *Target) Restart(ctx context.Context, crash bool) (string, error) {
	if err := t.Stop(ctx, crash); err != nil {
		return "", err
	}
	return t.Start(ctx)
}

// waitNotRunning polls the container's state until it has exited.
func (d *Deployment) waitNotRunning(ctx context.Context) error {
	deadline := time.Now().Add(exitWait)
	for {
		st, err := d.State(ctx)
		if err != nil {
			return err
		}
		if st != "running" && st != "restarting" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deploy: container still %s %v after the signal", st, exitWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deploy: wait for exit: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ContainerFault is one container-level fault of a deployment, through the
// chaos.Fault interface: Inject breaks (kill, stop, pause, disconnect), Heal
// repairs (start, unpause, connect) and, when the published HTTP port moved,
// retargets the proxy so the harness keeps its URL. The window therefore
// spans the whole outage, start-up included. Calls in progress do not
// survive a kill, stop or disconnect (their DTLS state, or their path, is
// gone); the pinned media UDP port stays the same.
type ContainerFault struct {
	name   string
	kind   string
	d      *Deployment
	proxy  *chaos.HTTPProxy
	params map[string]string

	mu     sync.Mutex
	broken bool // Inject did (part of) its work and Heal has not undone it
	heals  []func(url string)
}

var (
	_ chaos.Fault         = (*ContainerFault)(nil)
	_ chaos.Parameterised = (*ContainerFault)(nil)
)

// ErrUnknownFault is returned by NewContainerFault for a kind it does not know.
var ErrUnknownFault = errors.New("deploy: unknown container fault")

// NewContainerFault builds a fault of kind (one of FaultKinds) on d. proxy,
// which may be nil for FaultPause, is the HTTP front the harness uses; it is
// retargeted after the container comes back on a new port. name labels the
// windows ("" means the kind).
func NewContainerFault(kind string, d *Deployment, proxy *chaos.HTTPProxy, name string) (*ContainerFault, error) {
	switch kind {
	case FaultKill, FaultStop, FaultPause, FaultDisconnect:
	default:
		return nil, fmt.Errorf("%w: %q (want one of %v)", ErrUnknownFault, kind, FaultKinds)
	}
	if d == nil {
		return nil, fmt.Errorf("%w: %s: nil deployment", ErrInvalidOption, kind)
	}
	if name == "" {
		name = kind
	}
	// Every container fault may cost all media both ways while it lasts;
	// the tail covers frames in flight at the moment it struck.
	p := map[string]string{
		chaos.ParamKind: kind, chaos.ParamLoss: "1", chaos.ParamDirection: "both",
		chaos.ParamTail: chaos.CrashInFlight.String(),
	}
	return &ContainerFault{name: name, kind: kind, d: d, proxy: proxy, params: p}, nil
}

// Name labels the fault's windows.
func (f *ContainerFault) Name() string { return f.name }

// Kind is one of FaultKinds.
func (f *ContainerFault) Kind() string { return f.kind }

// Params are the window parameters (kind, loss 1, direction both, tail).
func (f *ContainerFault) Params() map[string]string { return f.params }

// OnHeal calls fn with the deployment's URL after every successful heal (the
// container's own address, not the proxy's).
func (f *ContainerFault) OnHeal(fn func(url string)) {
	f.mu.Lock()
	f.heals = append(f.heals, fn)
	f.mu.Unlock()
}

// RestartsTarget says whether the fault takes the calls' media state with
// it (kill, stop, disconnect: DTLS state or the UDP path is gone), so that a
// runner must treat its window as down time and have calls in progress
// rejoin once it heals; a pause keeps both (harness.ExternalFault.Restarts).
func (f *ContainerFault) RestartsTarget() bool { return f.kind != FaultPause }

// movesPort says whether healing publishes the HTTP port anew.
func (f *ContainerFault) movesPort() bool { return f.kind != FaultPause }

// Available needs a live container deployment as the run's target: env.Target
// must be this deployment's Target (a fault on another system than the one
// under test would be meaningless), and faults that move the HTTP port need
// a proxy to retarget.
func (f *ContainerFault) Available(env chaos.Env) error {
	t, ok := env.Target.(*Target)
	if !ok || t == nil {
		return fmt.Errorf("%s: %w: the target is not a container deployment", f.name, chaos.ErrUnavailable)
	}
	if t.d != f.d {
		return fmt.Errorf("%s: %w: the run's target is another deployment", f.name, chaos.ErrUnavailable)
	}
	if _, err := f.d.container(); err != nil {
		return fmt.Errorf("%s: %w: %w", f.name, chaos.ErrUnavailable, err)
	}
	if f.movesPort() && f.proxy == nil {
		return fmt.Errorf("%s: %w: the HTTP port moves when the container comes back; front it with a chaos.HTTPProxy", f.name, chaos.ErrUnavailable)
	}
	return nil
}

// Inject breaks the container. A kill or stop returns once it has exited.
func (f *ContainerFault) Inject(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken = true // even a failed attempt may have done part of its work
	var err error
	switch f.kind {
	case FaultKill:
		err = f.d.ChaosTarget().Stop(ctx, true)
	case FaultStop:
		err = f.d.ChaosTarget().Stop(ctx, false)
	case FaultPause:
		err = f.d.Pause(ctx)
	case FaultDisconnect:
		err = f.d.Disconnect(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	return nil
}

// Heal undoes Inject: start (waiting for /healthz), unpause or reconnect,
// then retargets the proxy. It is a no-op when nothing is broken, and it
// repairs whatever state the container is in (a failed kill that left it
// running is fine).
func (f *ContainerFault) Heal(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.broken {
		return nil
	}
	// The target must come back even when the run is stopping.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultStartupTimeout+10*time.Second)
	defer cancel()
	var err error
	switch f.kind {
	case FaultKill, FaultStop:
		err = f.d.Start(ctx)
	case FaultPause:
		err = f.d.Unpause(ctx)
		if err != nil {
			if st, serr := f.d.State(ctx); serr == nil && st != "paused" {
				err = nil // never paused (Inject failed): nothing to undo
			}
		}
	case FaultDisconnect:
		err = f.d.Connect(ctx)
		if err != nil && f.d.refresh(ctx) == nil {
			err = nil // still connected (Inject failed): nothing to undo
		}
	}
	if err != nil {
		return fmt.Errorf("%s: heal: %w", f.name, err)
	}
	f.broken = false
	url := f.d.URL()
	if f.movesPort() && f.proxy != nil {
		if err := f.proxy.Retarget(url); err != nil {
			return fmt.Errorf("%s: retarget proxy: %w", f.name, err)
		}
	}
	for _, fn := range f.heals {
		fn(url)
	}
	return nil
}
