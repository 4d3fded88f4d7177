package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// Chaos in a run (docs/design.md section 8). With a fault profile the run:
//
//   - fronts the target's HTTP with an HTTPProxy (always, for the embedded
//     clinic: a restart changes its ports and the proxy's front stays put),
//   - opens the clients' UDP sockets through MediaImpairment.Net,
//   - restarts the target through its control (Stoppable),
//   - reports events (join, switch, end, fetch) to the Scheduler just before
//     the request, and counts coverage after each answer under the faults
//     active then,
//   - lets users act out client faults with their own PRNG (ClientSeed), so
//     the plan's draws never shift,
//   - has calls in progress rejoin with new PeerConnections (a new segment)
//     when the target restarts, and retries requests a fault failed.
//
// Durability under faults (see oracle.TrackExpect): each track must hold the
// frames its client sent minus BaselineAllowed and AllowedMissing over the
// fault windows that reached the call (Runtime.Allowance).

// ErrRuntimeConfig marks a Runtime that cannot be built from what it was
// given (a fault the environment cannot run, a name taken twice): the run's
// configuration is wrong, not the target.
var ErrRuntimeConfig = errors.New("chaos configuration")

// External is a fault a caller brings to a run (a container deployment's),
// scheduled with the profile's own.
type External struct {
	Fault   Fault
	Trigger faultspec.Trigger
	// Restarts: the target is unreachable while the window is open and comes
	// back without its calls' media state; requests wait for the heal, and
	// calls in progress rejoin when the window closes.
	Restarts bool
}

// RuntimeConfig is what a run's fault machinery is built from.
type RuntimeConfig struct {
	Profile  faultspec.Profile
	External []External
	// Proxy is the caller's HTTP front (nil: the runtime fronts Upstream
	// with its own when Upstream is set).
	Proxy    *HTTPProxy
	Upstream string
	// Target restarts the target for clinic faults (a Stoppable can also
	// stay down for a while); nil: clinic faults are refused.
	Target   Restartable
	Registry prometheus.Registerer
	Seed     uint64
	Media    bool // impair the clients' UDP sockets
	Log      *slog.Logger
}

// Counters are a run's recoveries, for chaos.json and the log.
type Counters struct {
	Rejoins, RejoinFailed, Retries, Restarts, UsersErrored atomic.Int64
	EndAckLost, ClientFaults                               atomic.Int64
}

// Runtime is one run's fault machinery: the scheduler, the windows'
// recorder, coverage, client faults, the media impairment and the HTTP
// front, and what the run needs to know about the target's outages. A nil
// *Runtime is a run without faults: every method is safe on it and does
// nothing (Allowance allows nothing beyond the acknowledgement).
type Runtime struct {
	Count Counters

	sched  *Scheduler
	rec    *Recorder
	cov    *Coverage
	client ClientFaults
	// clientNames are the client faults' names (left out of coverage).
	clientNames map[string]bool
	media       *MediaImpairment
	proxy       *HTTPProxy
	// restarts names the external faults that restart the target.
	restarts map[string]bool
	// extDown counts their windows open: frames sent meanwhile go into the
	// void and are counted as such (see Allowance).
	extDown atomic.Int64

	mu      sync.Mutex
	last    string        // the fault that restarted the target last
	down    int           // restarting windows open
	upC     chan struct{} // closed when down drops to 0, then replaced
	restart chan struct{} // closed when a restart completes, then replaced
}

// NewRuntime builds the profile's faults and the external ones. It returns
// the URL the HTTP driver must use (Upstream when there is no proxy) and the
// closers of what it opened, which the caller runs after Stop.
func NewRuntime(cfg RuntimeConfig) (rt *Runtime, front string, closers []func(), err error) {
	fail := func(err error) (*Runtime, string, []func(), error) {
		for _, c := range closers {
			c()
		}
		return nil, "", nil, err
	}
	rec, err := NewRecorder(cfg.Registry)
	if err != nil {
		return fail(err)
	}
	cov, err := NewCoverage(cfg.Registry)
	if err != nil {
		return fail(err)
	}
	px := cfg.Proxy
	if px == nil && cfg.Upstream != "" {
		if px, err = NewHTTPProxy(cfg.Upstream); err != nil {
			return fail(err)
		}
		closers = append(closers, func() { px.Close() })
	}
	env := Env{Proxy: px, Target: cfg.Target, Recorder: rec, Seed: cfg.Seed}
	rt = &Runtime{rec: rec, cov: cov, proxy: px, restarts: map[string]bool{},
		upC: closedChan(), restart: make(chan struct{}), clientNames: map[string]bool{}}
	if cfg.Media {
		m, err := NewMediaImpairment(cfg.Seed, MediaOptions{})
		if err != nil {
			return fail(err)
		}
		if err := m.RegisterMetrics(cfg.Registry); err != nil {
			return fail(err)
		}
		rt.media, env.Media = m, m
	}
	faults, sched, err := Build(cfg.Profile, env)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrRuntimeConfig, err))
	}
	taken := map[string]bool{}
	for _, n := range cfg.Profile.Names() {
		taken[n] = true
	}
	for i, ef := range cfg.External {
		if ef.Fault == nil {
			return fail(fmt.Errorf("%w: chaos.faults[%d]: nil fault", ErrRuntimeConfig, i))
		}
		// Windows are told apart by name: a shared one would mix outages.
		n := ef.Fault.Name()
		if taken[n] {
			return fail(fmt.Errorf("%w: chaos.faults[%d]: name %q is already taken by another fault", ErrRuntimeConfig, i, n))
		}
		taken[n] = true
		if err := ef.Fault.Available(env); err != nil {
			return fail(fmt.Errorf("%w: chaos.faults[%d]: %w", ErrRuntimeConfig, i, err))
		}
		if err := sched.Add(ef.Fault, ef.Trigger); err != nil {
			return fail(fmt.Errorf("%w: chaos.faults[%d]: %w", ErrRuntimeConfig, i, err))
		}
		rt.restarts[n] = ef.Restarts
	}
	cfg.Profile.ApplyCoverage(cov)
	rec.OnWindow(rt.onWindow)
	if log := cfg.Log; log != nil {
		rec.OnWindow(func(w Window) {
			if w.Open() {
				log.Info("fault", "fault", w.Fault, "trigger", w.Trigger, "params", w.Params)
			} else {
				log.Info("fault healed", "fault", w.Fault, "after", w.End.Sub(w.Start).Round(time.Millisecond), "err", w.Err)
			}
		})
	}
	rt.sched, rt.client = sched, ClientFaultsOf(faults)
	for _, cf := range rt.client {
		rt.clientNames[cf.Name()] = true
	}
	if px == nil {
		return rt, cfg.Upstream, closers, nil
	}
	return rt, px.URL(), closers, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Start starts the scheduler's clocks (faults triggered by time).
func (rt *Runtime) Start(ctx context.Context) error {
	if rt == nil {
		return nil
	}
	return rt.sched.Start(ctx)
}

// Stop heals every fault.
func (rt *Runtime) Stop() {
	if rt != nil {
		rt.sched.Stop()
	}
}

// Media is the clients' impaired UDP stack (nil without media faults).
func (rt *Runtime) Media() *MediaImpairment {
	if rt == nil {
		return nil
	}
	return rt.media
}

// Windows are the fault windows so far.
func (rt *Runtime) Windows() []Window {
	if rt == nil {
		return nil
	}
	return rt.rec.Windows()
}

// IsClinicFault says whether w is a clinic restart or crash of the profile.
func IsClinicFault(w Window) bool {
	k := w.Params[ParamKind]
	return k == KindClinicRestart || k == KindClinicCrash
}

// RestartsTarget says whether w is an outage that restarts the target: a
// clinic fault of the profile or an external fault marked Restarts.
func (rt *Runtime) RestartsTarget(w Window) bool {
	return rt != nil && (IsClinicFault(w) || rt.restarts[w.Fault])
}

// onWindow follows the windows of faults that restart the target: down
// while open; a restart signal when one closes (the target is back: calls
// rejoin).
func (rt *Runtime) onWindow(w Window) {
	if !rt.RestartsTarget(w) {
		return
	}
	if rt.restarts[w.Fault] {
		if w.Open() {
			rt.extDown.Add(1)
		} else {
			rt.extDown.Add(-1)
		}
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if w.Open() {
		if rt.down == 0 {
			rt.upC = make(chan struct{})
		}
		rt.down++
		return
	}
	rt.down--
	if rt.down <= 0 {
		rt.down = 0
		close(rt.upC)
	}
	rt.Count.Restarts.Add(1)
	rt.last = w.Fault
	close(rt.restart)
	rt.restart = make(chan struct{})
}

// RestartSignal is closed at the next completed restart (nil: never).
func (rt *Runtime) RestartSignal() <-chan struct{} {
	if rt == nil {
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.restart
}

// LastRestart names the fault of the last completed restart.
func (rt *Runtime) LastRestart() string {
	if rt == nil {
		return ""
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.last
}

// TargetDown says whether an external fault that restarts the target is
// open: a frame sent now cannot be recorded.
func (rt *Runtime) TargetDown() bool { return rt != nil && rt.extDown.Load() > 0 }

// WaitUp waits (at most d) until no restarting fault is open.
func (rt *Runtime) WaitUp(ctx context.Context, d time.Duration) {
	if rt == nil {
		return
	}
	rt.mu.Lock()
	up := rt.upC
	rt.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-up:
	case <-t.C:
	case <-ctx.Done():
	}
}

// Event reports an event to the scheduler just before its request.
func (rt *Runtime) Event(kind string) {
	if rt != nil {
		rt.sched.Event(kind)
	}
}

// Hit counts a risky path that just ran, under the faults active now.
// Client faults are left out: "active" only means a user may act one out,
// and their own paths (abandon, retry, rejoin) are counted where they happen.
func (rt *Runtime) Hit(path string) {
	if rt == nil {
		return
	}
	active := rt.sched.Active()
	kept := active[:0:0]
	for _, f := range active {
		if !rt.clientNames[f] {
			kept = append(kept, f)
		}
	}
	rt.cov.HitUnder(path, kept)
}

// HitAfter counts a path that ran because of fault (a rejoin after a
// restart happens once the restart's window has closed).
func (rt *Runtime) HitAfter(path, fault string) {
	if rt != nil && fault != "" {
		rt.cov.Hit(path, fault)
	}
}

// Decide says whether a user acts out a client fault (one draw from its
// chaos PRNG, whatever the answer).
func (rt *Runtime) Decide(kind ClientFaultKind, rng *rand.Rand) bool {
	if rt == nil || rng == nil {
		return false
	}
	if rt.client.Decide(kind, rng) {
		rt.Count.ClientFaults.Add(1)
		return true
	}
	return false
}

// ClientSeed is user i's PRNG for client faults, separate from the plan's so
// that adding faults never changes a plan.
func ClientSeed(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0xc4a05c4a05, 0x5eed^uint64(i)<<1))
}

// Retryable says whether a failed request may succeed when sent again: no
// answer, or a 5xx (a 502/503 from the proxy while the target restarts).
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, driver.ErrUnreachable) {
		return true
	}
	return driver.StatusCode(err) >= 500
}

// Retry runs fn and, with faults, runs it again (up to 4 attempts) while it
// fails in a way a fault explains, waiting for the target to be up between
// attempts. Without faults (nil) it runs fn once.
func (rt *Runtime) Retry(ctx context.Context, fn func() error) error {
	err := fn()
	if rt == nil {
		return err
	}
	wait := 200 * time.Millisecond
	for attempt := 1; attempt < 4 && Retryable(err) && ctx.Err() == nil; attempt++ {
		rt.Count.Retries.Add(1)
		rt.Hit(PathRetry)
		rt.WaitUp(ctx, 15*time.Second)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			break
		}
		wait *= 2
		err = fn()
	}
	return err
}

// Allowance computes how many of the sent frames of a track of a call that
// ran from start to end may be missing, with the explanation; intoOutage of
// them were sent while an external fault that restarts the target was open.
// Those windows are judged by that count rather than by their share of the
// call: an outage of seconds is long against a call, and a track that is not
// sent evenly (video from the switch on, nothing while rejoining) loses far
// more than its share of the call. Their in-flight tail (frames sent just
// before the window, not yet stored) still counts by the rule. Calls no
// media-losing fault reached are judged against the acknowledgement only
// (allowed = sent): without a fault the target's own count is the reference,
// and a machine too loaded to keep up loses frames it honestly never
// acknowledges; that loss is measured (chaos.json) but not judged.
func (rt *Runtime) Allowance(sent, intoOutage int, start, end time.Time) (int, string) {
	const none = "no fault reached the call: judged against the acknowledgement only"
	if rt == nil || sent <= 0 || start.IsZero() {
		return max(sent, 0), none
	}
	var ws []Window
	for _, w := range rt.rec.Windows() {
		if !rt.restarts[w.Fault] {
			ws = append(ws, w)
			continue
		}
		// Only the frames in flight when it struck, by the rule.
		if tail, _ := time.ParseDuration(w.Params[ParamTail]); tail > 0 {
			ws = append(ws, Window{Fault: w.Fault, Start: w.Start.Add(-tail), End: w.Start,
				Params: map[string]string{ParamLoss: "1", ParamDirection: w.Params[ParamDirection]}})
		}
	}
	extra := AllowedMissing(ws, start, end, sent) + intoOutage
	if extra == 0 {
		return sent, none
	}
	base := BaselineAllowed(sent)
	var names []string
	seen := map[string]bool{}
	for _, w := range rt.rec.Windows() {
		reached := LossTolerance([]Window{w}, start, end) > 0
		if rt.restarts[w.Fault] {
			reached = w.Start.Before(end) && (w.Open() || w.End.After(start))
		}
		if reached && !seen[w.Fault] {
			seen[w.Fault] = true
			names = append(names, w.Fault)
		}
	}
	sort.Strings(names)
	why := fmt.Sprintf("baseline %d + faults %d (%s)", base, extra, strings.Join(names, ", "))
	if intoOutage > 0 {
		why += fmt.Sprintf(", %d of them sent while the target was down", intoOutage)
	}
	return min(base+extra, sent), why
}

// Fill copies the fault windows and the coverage into a summary; coverage
// shortfalls count against the run (exit 4).
func (rt *Runtime) Fill(s *reports.Summary) {
	if rt == nil {
		return
	}
	for _, w := range rt.rec.Windows() {
		s.FaultWindows = append(s.FaultWindows, reports.FaultWindow{Fault: w.Fault, Params: w.Params, Trigger: w.Trigger,
			Start: w.Start.UTC(), End: w.End.UTC(), Err: w.Err})
	}
	s.Coverage = rt.cov.Snapshot()
	for _, sf := range rt.cov.Check() {
		s.CoverageShortfalls = append(s.CoverageShortfalls, sf.String())
	}
}

// Events counts the events the scheduler saw, by kind.
func (rt *Runtime) Events() map[string]int {
	if rt == nil {
		return nil
	}
	return rt.sched.Events()
}

// Skipped counts triggers that fired with their fault already active.
func (rt *Runtime) Skipped() int64 {
	if rt == nil {
		return 0
	}
	return rt.sched.Skipped()
}

// Recorder is the runtime's record of fault windows (nil without faults).
func (rt *Runtime) Recorder() *Recorder {
	if rt == nil {
		return nil
	}
	return rt.rec
}
