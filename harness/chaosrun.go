package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"telechaos/harness/chaos"
	"telechaos/harness/driver"
	"telechaos/harness/oracle"
	"telechaos/harness/target"
	"telechaos/reports"
)

// Chaos in a run (docs/design.md section 8). With a fault profile the runner:
//
//   - fronts the target's HTTP with chaos.HTTPProxy (always, for the embedded
//     clinic: a restart changes its ports and the proxy's front stays put),
//   - opens the clients' UDP sockets through chaos.MediaImpairment.Net,
//   - restarts the target through its target.Control (the embedded
//     clinic's is embedded.Clinic),
//   - reports events (join, switch, end, fetch) to the Scheduler just before
//     the request, and counts coverage after each answer under the faults
//     active then,
//   - lets patients act out client faults with their own PRNG (chaosSeed),
//     so the plan's draws never shift,
//   - has calls in progress rejoin with new PeerConnections (a new segment)
//     when the clinic restarts, and retries requests a fault failed.
//
// Durability under faults (see oracle.TrackExpect): each track must hold the
// frames its client sent minus chaos.BaselineAllowed and chaos.AllowedMissing over
// the fault windows that reached the call.

// ExternalChaos is fault machinery a caller brings to a run whose target it
// manages (a container deployment, a remote system): the runner schedules
// these faults with the scenario's own, records their windows (the summary's
// fault windows and coverage, the loss recording-durability allows), retries
// requests across their outages and has calls rejoin after the faults that
// restart the target. Set RunConfig.Chaos to use it; it works with a URL
// target and with NewTarget (there Proxy, if any, is only for the faults:
// the target NewTarget returns is what the runner talks to).
type ExternalChaos struct {
	// Proxy is the target's HTTP front, for faults that act on it or
	// retarget it. With a URL target it replaces the runner's own proxy: the
	// driver talks to Proxy.URL(). The caller closes it.
	Proxy *chaos.HTTPProxy
	// Target restarts the target (the scenario's clinic-* faults need it).
	Target chaos.Restartable
	// Faults are scheduled by the run, with the scenario's profile.
	Faults []ExternalFault
}

// ExternalFault is one fault of an ExternalChaos with its trigger.
type ExternalFault struct {
	Fault   chaos.Fault
	Trigger chaos.Trigger
	// Restarts says the target is unreachable while the window is open and
	// comes back without its calls' media state (killed, stopped, cut off
	// its network): requests wait for the heal, and calls in progress
	// rejoin with new PeerConnections when the window closes, as after a
	// clinic restart.
	Restarts bool
}

// wantsChaos says whether the run has faults or coverage to set up.
func (r *run) wantsChaos() bool {
	return len(r.sc.Chaos.Faults) > 0 || len(r.sc.Chaos.Coverage) > 0 || (r.cfg.Chaos != nil && len(r.cfg.Chaos.Faults) > 0)
}

// Chaos outcome counters for the report (chaos.json) and the log.
type chaosCounters struct {
	rejoins, rejoinFailed, retries, restarts, usersErrored atomic.Int64
	endAckLost, clientFaults                               atomic.Int64
}

// chaosRun is one run's fault machinery; nil without a profile.
type chaosRun struct {
	sched  *chaos.Scheduler
	rec    *chaos.Recorder
	cov    *chaos.Coverage
	client chaos.ClientFaults
	// clientNames are the client faults' names (left out of coverage).
	clientNames map[string]bool
	media       *chaos.MediaImpairment
	proxy       *chaos.HTTPProxy
	// control stops and starts the opened target (nil: the harness
	// cannot); its restarts become a repro trace's target ops.
	control target.Control
	cnt     chaosCounters

	// restarts names the external faults that restart the target.
	restarts map[string]bool
	// extDown counts their windows open: frames sent meanwhile go into the
	// void and are counted as such (see allowance).
	extDown atomic.Int64

	mu      sync.Mutex
	last    string        // the clinic fault that restarted it last
	down    int           // clinic windows open
	upC     chan struct{} // closed when down drops to 0, then replaced
	restart chan struct{} // closed when a restart completes, then replaced
}

func newChaosRun() *chaosRun {
	return &chaosRun{upC: closedChan(), restart: make(chan struct{})}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func isClinicFault(w chaos.Window) bool {
	k := w.Params[chaos.ParamKind]
	return k == chaos.KindClinicRestart || k == chaos.KindClinicCrash
}

// restartsTarget says whether w is an outage that restarts the target: a
// clinic fault of the profile or an external fault marked Restarts.
func (c *chaosRun) restartsTarget(w chaos.Window) bool {
	return isClinicFault(w) || c.restarts[w.Fault]
}

// onWindow follows the windows of faults that restart the target: down
// while open; a restart signal when one closes (the target is back: calls
// rejoin).
func (c *chaosRun) onWindow(w chaos.Window) {
	if !c.restartsTarget(w) {
		return
	}
	if c.restarts[w.Fault] {
		if w.Open() {
			c.extDown.Add(1)
		} else {
			c.extDown.Add(-1)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.Open() {
		if c.down == 0 {
			c.upC = make(chan struct{})
		}
		c.down++
		return
	}
	c.down--
	if c.down <= 0 {
		c.down = 0
		close(c.upC)
	}
	c.cnt.restarts.Add(1)
	c.last = w.Fault
	close(c.restart)
	c.restart = make(chan struct{})
}

// restartSignal is closed at the next completed restart (nil chaos: never).
func (r *run) restartSignal() <-chan struct{} {
	if r.chaos == nil {
		return nil
	}
	r.chaos.mu.Lock()
	defer r.chaos.mu.Unlock()
	return r.chaos.restart
}

// lastRestart names the clinic fault of the last restart.
func (r *run) lastRestart() string {
	if r.chaos == nil {
		return ""
	}
	r.chaos.mu.Lock()
	defer r.chaos.mu.Unlock()
	return r.chaos.last
}

// targetDown says whether an external fault that restarts the target is
// open: a frame sent now cannot be recorded.
func (r *run) targetDown() bool {
	return r.chaos != nil && r.chaos.extDown.Load() > 0
}

// hitAfter counts a path that ran because of fault (a rejoin after a
// restart happens once the restart's window has closed).
func (r *run) hitAfter(path, fault string) {
	if r.chaos != nil && fault != "" {
		r.chaos.cov.Hit(path, fault)
	}
}

// waitUp waits (at most d) until no clinic fault is open.
func (r *run) waitUp(ctx context.Context, d time.Duration) {
	if r.chaos == nil {
		return
	}
	r.chaos.mu.Lock()
	up := r.chaos.upC
	r.chaos.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-up:
	case <-t.C:
	case <-ctx.Done():
	}
}

// chaosEvent reports an event to the scheduler just before its request.
func (r *run) chaosEvent(kind string) {
	if r.chaos != nil {
		r.chaos.sched.Event(kind)
	}
}

// hit counts a risky path that just ran, under the faults active now.
// Client faults are left out: "active" only means a user may act one out,
// and their own paths (abandon, retry, rejoin) are counted where they happen.
func (r *run) hit(path string) {
	if r.chaos == nil {
		return
	}
	active := r.chaos.sched.Active()
	kept := active[:0:0]
	for _, f := range active {
		if _, isClient := r.chaos.clientNames[f]; !isClient {
			kept = append(kept, f)
		}
	}
	r.chaos.cov.HitUnder(path, kept)
}

// decide says whether a patient acts out a client fault (one draw from its
// chaos PRNG, whatever the answer).
func (r *run) decide(kind chaos.ClientFaultKind, rng *rand.Rand) bool {
	if r.chaos == nil || rng == nil {
		return false
	}
	if r.chaos.client.Decide(kind, rng) {
		r.chaos.cnt.clientFaults.Add(1)
		return true
	}
	return false
}

// chaosSeed is patient i's PRNG for client faults, separate from the plan's
// so that adding faults never changes a plan.
func chaosSeed(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0xc4a05c4a05, 0x5eed^uint64(i)<<1))
}

// retryable says whether a failed request may succeed when sent again: no
// answer, a 5xx, or a 502/503 from the proxy while the target restarts.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, driver.ErrUnreachable) {
		return true
	}
	c := driver.StatusCode(err)
	return c >= 500
}

// retry runs fn, and under chaos runs it again (up to 4 attempts) while it
// fails in a way a fault explains, waiting for the clinic to be up between
// attempts. Without chaos it runs fn once.
func (r *run) retry(ctx context.Context, fn func() error) error {
	err := fn()
	if r.chaos == nil {
		return err
	}
	wait := 200 * time.Millisecond
	for attempt := 1; attempt < 4 && retryable(err) && ctx.Err() == nil; attempt++ {
		r.chaos.cnt.retries.Add(1)
		r.hit(chaos.PathRetry)
		r.waitUp(ctx, 15*time.Second)
		if r.sleep(ctx, wait) != nil {
			break
		}
		wait *= 2
		err = fn()
	}
	return err
}

// allowance computes how many of the sent frames of a track of a call that
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
func (r *run) allowance(sent, intoOutage int, start, end time.Time) (int, string) {
	if r.chaos == nil || sent <= 0 || start.IsZero() {
		return max(sent, 0), "no fault reached the call: judged against the acknowledgement only"
	}
	var ws []chaos.Window
	for _, w := range r.chaos.rec.Windows() {
		if !r.chaos.restarts[w.Fault] {
			ws = append(ws, w)
			continue
		}
		// Only the frames in flight when it struck, by the rule.
		tail, _ := time.ParseDuration(w.Params[chaos.ParamTail])
		if tail > 0 {
			ws = append(ws, chaos.Window{Fault: w.Fault, Start: w.Start.Add(-tail), End: w.Start,
				Params: map[string]string{chaos.ParamLoss: "1", chaos.ParamDirection: w.Params[chaos.ParamDirection]}})
		}
	}
	extra := chaos.AllowedMissing(ws, start, end, sent) + intoOutage
	if extra == 0 {
		return sent, "no fault reached the call: judged against the acknowledgement only"
	}
	base := chaos.BaselineAllowed(sent)
	var names []string
	seen := map[string]bool{}
	for _, w := range r.chaos.rec.Windows() {
		reached := chaos.LossTolerance([]chaos.Window{w}, start, end) > 0
		if r.chaos.restarts[w.Fault] {
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

// setupChaos builds the profile's faults, and RunConfig.Chaos's, against
// what the run has. ctl is the opened target's Control (nil when the
// harness cannot stop it: a URL, NewTarget); upstream is the target's URL
// ("" for NewTarget or a target without one). It returns the URL the HTTP
// driver must use (upstream when there is no proxy).
func (r *run) setupChaos(ctl target.Control, upstream string, closers *[]func()) (string, error) {
	c := newChaosRun()
	ext := r.cfg.Chaos
	if ext == nil {
		ext = &ExternalChaos{}
	}
	reg := r.cfg.Registry
	rec, err := chaos.NewRecorder(reg)
	if err != nil {
		return "", fmt.Errorf("%w: chaos: %w", ErrTarget, err)
	}
	cov, err := chaos.NewCoverage(reg)
	if err != nil {
		return "", fmt.Errorf("%w: chaos: %w", ErrTarget, err)
	}
	px := ext.Proxy
	if px == nil && upstream != "" {
		if px, err = chaos.NewHTTPProxy(upstream); err != nil {
			return "", fmt.Errorf("%w: chaos: %w", ErrTarget, err)
		}
		*closers = append(*closers, func() { px.Close() })
	}
	env := chaos.Env{Proxy: px, Target: ext.Target, Recorder: rec, Seed: r.seed}
	if ctl != nil {
		c.control = ctl
		env.Target = target.WithRestart(ctl)
	}
	if r.sc.Media {
		m, err := chaos.NewMediaImpairment(r.seed, chaos.MediaOptions{})
		if err != nil {
			return "", fmt.Errorf("%w: chaos: %w", ErrTarget, err)
		}
		if err := m.RegisterMetrics(reg); err != nil {
			return "", fmt.Errorf("%w: chaos: %w", ErrTarget, err)
		}
		c.media, env.Media = m, m
	}
	faults, sched, err := chaos.Build(r.sc.Chaos, env)
	if err != nil {
		return "", fmt.Errorf("%w: scenario %s: chaos: %w", ErrConfig, r.sc.Name, err)
	}
	c.restarts = map[string]bool{}
	taken := map[string]bool{}
	for _, n := range r.sc.Chaos.Names() {
		taken[n] = true
	}
	for i, ef := range ext.Faults {
		if ef.Fault == nil {
			return "", fmt.Errorf("%w: chaos.faults[%d]: nil fault", ErrConfig, i)
		}
		// Windows are told apart by name: a shared one would mix outages.
		if n := ef.Fault.Name(); taken[n] {
			return "", fmt.Errorf("%w: chaos.faults[%d]: name %q is already taken by another fault", ErrConfig, i, n)
		}
		taken[ef.Fault.Name()] = true
		if err := ef.Fault.Available(env); err != nil {
			return "", fmt.Errorf("%w: chaos.faults[%d]: %w", ErrConfig, i, err)
		}
		if err := sched.Add(ef.Fault, ef.Trigger); err != nil {
			return "", fmt.Errorf("%w: chaos.faults[%d]: %w", ErrConfig, i, err)
		}
		c.restarts[ef.Fault.Name()] = ef.Restarts
	}
	r.sc.Chaos.ApplyCoverage(cov)
	rec.OnWindow(c.onWindow)
	rec.OnWindow(func(w chaos.Window) {
		if w.Open() {
			r.log.Info("fault", "fault", w.Fault, "trigger", w.Trigger, "params", w.Params)
		} else {
			r.log.Info("fault healed", "fault", w.Fault, "after", w.End.Sub(w.Start).Round(time.Millisecond), "err", w.Err)
		}
	})
	c.sched, c.rec, c.cov, c.client, c.proxy = sched, rec, cov, chaos.ClientFaultsOf(faults), px
	c.clientNames = map[string]bool{}
	for _, cf := range c.client {
		c.clientNames[cf.Name()] = true
	}
	r.chaos = c
	if px == nil {
		return upstream, nil
	}
	return px.URL(), nil
}

// stopChaos heals every fault and closes the clinic wrapper's current server
// (the one the runner started may have been replaced by a restart).
func (r *run) stopChaos() {
	if r.chaos == nil {
		return
	}
	r.chaos.sched.Stop()
}

// fillChaos copies the fault windows and the coverage into the summary.
func (r *run) fillChaos(s *reports.Summary) {
	for _, w := range r.chaos.rec.Windows() {
		s.FaultWindows = append(s.FaultWindows, reports.FaultWindow{Fault: w.Fault, Params: w.Params, Trigger: w.Trigger,
			Start: w.Start.UTC(), End: w.End.UTC(), Err: w.Err})
	}
	s.Coverage = r.chaos.cov.Snapshot()
	for _, sf := range r.chaos.cov.Check() {
		s.CoverageShortfalls = append(s.CoverageShortfalls, sf.String())
	}
}

// ChaosFile is the report file with what the faults did to the run.
const ChaosFile = "chaos.json"

// ChaosReport is what the faults did to a run (chaos.json): the media
// impairment's packet counts, the runner's recoveries and, per track, the
// loss measured against what was sent and what was allowed.
type ChaosReport struct {
	Media        *chaos.MediaStats  `json:"media,omitempty"`
	Rejoins      int64              `json:"rejoins"`
	RejoinFailed int64              `json:"rejoin_failed"`
	Retries      int64              `json:"retries"`
	Restarts     int64              `json:"restarts"`
	EndAckLost   int64              `json:"end_ack_lost"`
	ClientFaults int64              `json:"client_faults"`
	UsersErrored int64              `json:"users_errored"`
	CallsFailed  int64              `json:"calls_failed"`
	Events       map[string]int     `json:"events"`
	Skipped      int64              `json:"triggers_skipped"`
	Losses       []oracle.TrackLoss `json:"losses,omitempty"`
}

// Chaos returns what the faults did (nil for a run without a profile).
func (r *run) chaosReport() *ChaosReport {
	if r.chaos == nil {
		return nil
	}
	c := r.chaos
	cr := &ChaosReport{
		Rejoins: c.cnt.rejoins.Load(), RejoinFailed: c.cnt.rejoinFailed.Load(), Retries: c.cnt.retries.Load(),
		Restarts: c.cnt.restarts.Load(), EndAckLost: c.cnt.endAckLost.Load(), ClientFaults: c.cnt.clientFaults.Load(),
		UsersErrored: c.cnt.usersErrored.Load(), CallsFailed: r.cnt.callsFailed.Load(),
		Events: c.sched.Events(), Skipped: c.sched.Skipped(), Losses: r.or.Losses(),
	}
	if c.media != nil {
		st := c.media.Stats()
		cr.Media = &st
	}
	return cr
}

func (r *run) writeChaos() error {
	cr := r.chaosReport()
	if cr == nil {
		return nil
	}
	b, err := json.MarshalIndent(cr, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", ChaosFile, err)
	}
	if err := os.WriteFile(filepath.Join(r.cfg.ReportDir, ChaosFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", ChaosFile, err)
	}
	return nil
}
