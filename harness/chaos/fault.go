// Package chaos is telechaos' fault machinery (docs/design.md section 8): faults that
// really happen on real sockets and processes, scheduled by clock or by event,
// each injection recorded as a Window so results split into before, during and
// after a fault, plus coverage counters that prove risky paths really ran.
//
// The shape follows etcd's robustness failpoints: a small Fault interface
// (Name, Available, Inject, Heal), concrete faults inside:
//
//   - HTTPFault: Toxiproxy toxics on an in-process HTTPProxy fronting the target
//     (latency, jitter, bandwidth, reset, timeout, slicer).
//   - MediaFault: impairments of the clients' UDP sockets through
//     MediaImpairment.Net, a pion transport.Net handed to the WebRTC stack
//     (loss, delay, jitter, duplication, reordering, blackhole).
//   - ClinicFault: restart or crash of a Restartable target (embedded.Clinic for
//     the in-process clinic; containers plug in later).
//   - ClientFault: misbehaviour the virtual users decide with their own PRNG
//     (abandon, double switch, switch racing end, ...).
//
// A faultspec.Profile (the scenario's YAML, validated there) describes faults
// and triggers; Build turns it into faults and a Scheduler, through the
// builder each implementation file registers for its kinds (build.go). The
// runner feeds the Scheduler events ("switch", "end", "fetch") and reads the
// Recorder's windows, the Coverage counters and LossTolerance for
// recording-durability.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Fault is one kind of trouble the harness can cause. Inject starts it, Heal
// ends it; both must be safe to call from any goroutine, and Heal must be safe
// after a failed or partial Inject. A Fault is never injected twice at once
// (the Scheduler skips a trigger while its window is open).
type Fault interface {
	// Name labels windows and metrics ("http-latency", "media-loss#2").
	Name() string
	// Available says whether the fault can run against env; the error (wrapping
	// ErrUnavailable) names what is missing.
	Available(env Env) error
	Inject(ctx context.Context) error
	Heal(ctx context.Context) error
}

// Parameterised is implemented by faults whose windows carry parameters
// (latency, loss...). LossTolerance reads ParamLoss, ParamTail and
// ParamDirection from them.
type Parameterised interface {
	Params() map[string]string
}

// Window parameter keys with a meaning beyond the report.
const (
	ParamKind = "kind"
	// ParamLoss is the fraction (0..1) of the clients' media the fault may
	// destroy while its window is open: media loss p, blackhole and process
	// faults 1, HTTP faults absent (0).
	ParamLoss = "loss"
	// ParamTail is a duration the fault's effect on media outlives its window
	// (packets still queued by a delay, frames in flight at a crash).
	ParamTail = "tail"
	// ParamDirection is up (clients to target), down, or both. Only up and
	// both can cost the target recorded frames.
	ParamDirection = "direction"
)

// Sentinel errors callers branch on.
var (
	// ErrUnavailable: the fault cannot run in this environment (no proxy in
	// front of the target, no impaired media net, a target that cannot restart).
	ErrUnavailable = errors.New("fault unavailable")
	// ErrStopped: the Scheduler or the proxy is stopped.
	ErrStopped = errors.New("stopped")
)

// Env is what faults may act on. Nil fields are capabilities the run lacks.
type Env struct {
	Proxy  *HTTPProxy       // fronts the target's HTTP (required by http-* faults)
	Media  *MediaImpairment // the clients' UDP sockets (required by media-* faults)
	Target Restartable      // restarts the target (required by clinic-* faults)
	// Recorder receives the windows; Build makes one without metrics if nil.
	Recorder *Recorder
	// Seed fixes every random choice of the faults (media PRNGs).
	Seed uint64
}

// Window is one injection: when it started (before Inject was called), when
// it ended (after Heal returned; zero while open) and what went wrong.
type Window struct {
	Fault   string            `json:"fault"`
	Params  map[string]string `json:"params,omitempty"`
	Trigger string            `json:"trigger,omitempty"` // what caused it: "clock", "switch#3", "start"
	Start   time.Time         `json:"start"`
	End     time.Time         `json:"end"`
	Err     string            `json:"err,omitempty"` // inject or heal error, "" if none
}

// Open reports whether the window has not ended yet.
func (w Window) Open() bool { return w.End.IsZero() }

// Recorder keeps every Window of a run and mirrors them into Prometheus
// (telechaos_fault_active{fault}, telechaos_fault_injections_total{fault},
// telechaos_fault_errors_total{fault}). Safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	windows []Window
	open    map[int]bool
	hooks   []func(Window)

	active     *prometheus.GaugeVec
	injections *prometheus.CounterVec
	errs       *prometheus.CounterVec
}

// NewRecorder registers the fault metrics with reg (nil: no metrics). It
// fails if reg already holds them.
func NewRecorder(reg prometheus.Registerer) (*Recorder, error) {
	r := &Recorder{open: map[int]bool{}}
	if reg == nil {
		return r, nil
	}
	r.active = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "telechaos_fault_active", Help: "1 while a fault's window is open.",
	}, []string{"fault"})
	r.injections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "telechaos_fault_injections_total", Help: "Fault windows opened.",
	}, []string{"fault"})
	r.errs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "telechaos_fault_errors_total", Help: "Fault injections or heals that failed.",
	}, []string{"fault"})
	for _, c := range []prometheus.Collector{r.active, r.injections, r.errs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register fault metrics: %w", err)
		}
	}
	return r, nil
}

// OnWindow calls fn (outside the recorder's lock) with each window when it
// opens (End zero) and when it closes. The runner writes trace entries and
// tells virtual users about restarts from here.
func (r *Recorder) OnWindow(fn func(Window)) {
	r.mu.Lock()
	r.hooks = append(r.hooks, fn)
	r.mu.Unlock()
}

// Begin opens a window and returns its id for End.
func (r *Recorder) Begin(fault string, params map[string]string, trigger string) int {
	w := Window{Fault: fault, Params: maps.Clone(params), Trigger: trigger, Start: time.Now()}
	r.mu.Lock()
	id := len(r.windows)
	r.windows = append(r.windows, w)
	r.open[id] = true
	hooks := slices.Clone(r.hooks)
	r.mu.Unlock()
	if r.active != nil {
		r.active.WithLabelValues(fault).Inc()
		r.injections.WithLabelValues(fault).Inc()
	}
	for _, h := range hooks {
		h(w)
	}
	return id
}

// End closes window id, keeping err (nil: none). Later calls for the same id
// only add errors.
func (r *Recorder) End(id int, err error) {
	r.mu.Lock()
	if id < 0 || id >= len(r.windows) {
		r.mu.Unlock()
		return
	}
	w := &r.windows[id]
	if err != nil {
		if w.Err != "" {
			w.Err += "; "
		}
		w.Err += err.Error()
	}
	wasOpen := r.open[id]
	if wasOpen {
		w.End = time.Now()
		delete(r.open, id)
	}
	out := *w
	hooks := slices.Clone(r.hooks)
	r.mu.Unlock()
	if r.active != nil {
		if wasOpen {
			r.active.WithLabelValues(out.Fault).Dec()
		}
		if err != nil {
			r.errs.WithLabelValues(out.Fault).Inc()
		}
	}
	if wasOpen {
		for _, h := range hooks {
			h(out)
		}
	}
}

// Windows returns a copy of every window so far, in the order they opened.
func (r *Recorder) Windows() []Window {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Window, len(r.windows))
	for i, w := range r.windows {
		w.Params = maps.Clone(w.Params)
		out[i] = w
	}
	return out
}

// Active returns the names of the faults whose windows are open now, sorted
// and without repeats (for Coverage.HitUnder).
func (r *Recorder) Active() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for id := range r.open {
		seen[r.windows[id].Fault] = true
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}
