package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// Restartable is a target the harness can restart: the embedded clinic now,
// containers (stop/start, SIGKILL) once the deployment package offers them.
// newURL is the target's HTTP base URL after the restart (ports may change).
type Restartable interface {
	Restart(ctx context.Context, crash bool) (newURL string, err error)
}

// Stoppable is a target that can stay down for a while (ClinicFault's down
// time): Stop, then Start later. It is the target registry's one control
// interface.
type Stoppable = target.Control

// The process fault kinds: a restart or a crash of the target.
func init() {
	register(faultspec.KindClinicRestart, buildClinic)
	register(faultspec.KindClinicCrash, buildClinic)
}

func buildClinic(name string, f faultspec.FaultSpec, env Env) (Fault, error) {
	return NewClinicFault(name, f.Kind == faultspec.KindClinicCrash, f.Down.Duration, f.Tail.Duration, env.Target, env.Proxy), nil
}

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
	kind := faultspec.KindClinicRestart
	if crash {
		kind = faultspec.KindClinicCrash
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
