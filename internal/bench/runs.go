package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/driver"
	hmetrics "github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/scenarios"
)

// parseScenario builds a scenario from YAML text (the loader applies its
// defaults and validation, as for a user's file).
func parseScenario(name, yaml string) (*scenarios.Scenario, error) {
	sc, err := scenarios.Parse(name+".yaml", []byte(yaml))
	if err != nil {
		return nil, fmt.Errorf("bench scenario %s: %w", name, err)
	}
	return sc, nil
}

// errLog keeps the first few failed steps a run logs (at debug level), so a
// figure with errors says what they were.
type errLog struct {
	mu   sync.Mutex
	errs []string
}

func (e *errLog) Enabled(context.Context, slog.Level) bool { return true }
func (e *errLog) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *errLog) WithGroup(string) slog.Handler            { return e }
func (e *errLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "step failed" {
		return nil
	}
	var msg string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "step" || a.Key == "err" {
			msg += a.Value.String() + ": "
		}
		return true
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.errs) < 3 {
		e.errs = append(e.errs, strings.TrimSuffix(msg, ": "))
	}
	return nil
}

// peaks tracks the highest values progress reported.
type peaks struct {
	errs         errLog
	mu           sync.Mutex
	users, calls int64
	callsAt      map[int64]time.Duration // first time Calls reached a value
	heapAtPeak   uint64                  // live heap when users peaked
	heapMax      uint64
	lastCalls    int64
	lastCallsAt  time.Duration
}

func (p *peaks) note(pr harness.Progress, heap uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.UsersActive > p.users {
		p.users = pr.UsersActive
		p.heapAtPeak = heap
	}
	p.calls = max(p.calls, pr.CallsActive)
	p.heapMax = max(p.heapMax, heap)
	if pr.Calls > p.lastCalls {
		p.lastCalls, p.lastCallsAt = pr.Calls, pr.Elapsed
	}
}

// liveHeap is the heap live after the last GC (cheap: no stop-the-world).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// settledHeap forces collections and returns the live heap.
func settledHeap() uint64 {
	runtime.GC()
	runtime.GC()
	return liveHeap()
}

// runOnce runs a scenario in-process with progress sampling every `every`
// (heap sampled too when sampleHeap). stopOnViolation cancels the run at the
// first violation (detection).
func runOnce(ctx context.Context, sc *scenarios.Scenario, every time.Duration, sampleHeap, stopOnViolation bool, newTarget func(driver.Observer) (driver.Target, error)) (*harness.Result, *peaks, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pk := &peaks{}
	var stopped atomic.Bool
	cfg := harness.RunConfig{
		Scenario: sc, Grace: 5 * time.Second, ProgressEvery: every, NewTarget: newTarget, Logger: slog.New(&pk.errs),
		Progress: func(p harness.Progress) {
			var h uint64
			if sampleHeap {
				h = liveHeap()
			}
			pk.note(p, h)
			if stopOnViolation && p.Violations > 0 && stopped.CompareAndSwap(false, true) {
				cancel()
			}
		},
	}
	res, err := harness.Run(rctx, cfg)
	if err != nil && res == nil {
		return nil, pk, err
	}
	if err != nil && !(stopOnViolation && stopped.Load()) {
		return res, pk, err
	}
	return res, pk, nil
}

// MediaStep is one step of the media scale search.
type MediaStep struct {
	Consultations int     `json:"consultations"` // asked for
	PeakActive    int64   `json:"peak_active"`   // concurrent calls with media flowing
	Connected     int     `json:"connected"`
	Failed        int     `json:"failed"`
	FramesSent    int64   `json:"frames_sent"`
	FramesAcked   int64   `json:"frames_acked"`
	FramesLive    int64   `json:"frames_received_live"`
	RecordLossPct float64 `json:"record_loss_pct"` // 1 - acked/sent
	LiveLossPct   float64 `json:"live_loss_pct"`   // 1 - received live/sent
	LossPct       float64 `json:"loss_pct"`        // the worse of the two
	SwitchP95ms   float64 `json:"switch_p95_ms"`
	JoinP95ms     float64 `json:"join_p95_ms"`
	Violations    int     `json:"violations"`
	Seconds       float64 `json:"seconds"`
	OK            bool    `json:"ok"`
	Why           string  `json:"why,omitempty"`
	// FirstErrors are the first failed steps the run logged.
	FirstErrors []string `json:"first_errors,omitempty"`
}

// mediaScenario: n consultations arriving over ramp, each a call of callLen
// with both participants switching to video a third of the way in, all
// overlapping; no replays or probes (this step measures live media).
func mediaScenario(n int, ramp, callLen time.Duration) string {
	rate := float64(n) / ramp.Seconds()
	return fmt.Sprintf(`name: bench-media-%d
description: media scale step
seed: 1
media: true
population: {patients: %d, clinicians: %d}
executor: {type: constant-arrival-rate, rate: %g, max_in_flight: %d}
duration: %s
settle: 2s
behaviour: {switch_to_video: 1, replay: 0, abandon: 0, probe_other: 0, call_min: %s, call_max: %s, switch_min: 0.25, switch_max: 0.35, think_min: 0s, think_max: 0s}
`, n, n, n, rate, n, ramp+time.Second, callLen, callLen)
}

// mediaStep runs n consultations embedded (clinic and harness in this
// process, both cores), profiling CPU into prof when non-nil.
func mediaStep(ctx context.Context, n int, ramp, callLen time.Duration, prof *os.File) (MediaStep, error) {
	st := MediaStep{Consultations: n}
	sc, err := parseScenario("bench-media", mediaScenario(n, ramp, callLen))
	if err != nil {
		return st, err
	}
	if prof != nil {
		if err := pprof.StartCPUProfile(prof); err == nil {
			defer pprof.StopCPUProfile()
		}
	}
	t0 := time.Now()
	res, pk, err := runOnce(ctx, sc, 250*time.Millisecond, false, false, nil)
	st.Seconds = round(time.Since(t0).Seconds(), 1)
	if res == nil {
		return st, err
	}
	c := res.Summary.Counts
	st.PeakActive = pk.calls
	st.Connected, st.Failed = c.CallsConnected, c.CallsFailed
	st.FramesSent, st.FramesAcked, st.FramesLive = c.FramesSent, c.FramesAcked, c.FramesReceivedLive
	if c.FramesSent > 0 {
		st.RecordLossPct = round(100*(1-float64(c.FramesAcked)/float64(c.FramesSent)), 3)
		st.LiveLossPct = round(100*(1-float64(c.FramesReceivedLive)/float64(c.FramesSent)), 3)
	}
	st.LossPct = max(st.RecordLossPct, st.LiveLossPct)
	st.SwitchP95ms = ms(res.Metrics.LatencyStats(hmetrics.LatSwitch).P95)
	st.JoinP95ms = ms(res.Metrics.LatencyStats(hmetrics.LatJoin).P95)
	st.Violations = len(res.Violations)
	st.FirstErrors = pk.errs.errs
	switch {
	case err != nil:
		st.Why = err.Error()
	case c.FramesSent == 0:
		st.Why = "no media sent"
	case st.LossPct >= 1:
		st.Why = fmt.Sprintf("loss %.2f%% >= 1%%", st.LossPct)
	case st.SwitchP95ms >= 300:
		// A scale whose switches take longer than the goal is not a scale
		// the platform can launch at.
		st.Why = fmt.Sprintf("switch p95 %.0f ms >= 300 ms", st.SwitchP95ms)
	case float64(st.Failed) > 0.01*float64(n):
		st.Why = fmt.Sprintf("%d of %d calls failed", st.Failed, n)
	case float64(st.PeakActive) < 0.9*float64(n):
		st.Why = fmt.Sprintf("only %d of %d calls were active at once", st.PeakActive, n)
	case st.Violations > 0:
		st.Why = fmt.Sprintf("%d violations against the correct clinic", st.Violations)
	default:
		st.OK = true
	}
	return st, nil
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

// setupRate starts m calls at once (closed executor, m VUs) embedded and
// measures calls connected per second until the last one connected.
func setupRate(ctx context.Context, m int) (float64, error) {
	yaml := fmt.Sprintf(`name: bench-setup
description: setup burst
seed: 2
media: true
population: {patients: %d, clinicians: %d}
executor: {type: closed, vus: %d}
duration: 60s
settle: 1s
behaviour: {switch_to_video: 0, replay: 0, abandon: 0, probe_other: 0, call_min: 3s, call_max: 3s, think_min: 0s, think_max: 0s}
`, m, m, m)
	sc, err := parseScenario("bench-setup", yaml)
	if err != nil {
		return 0, err
	}
	res, pk, err := runOnce(ctx, sc, 50*time.Millisecond, false, false, nil)
	if res == nil {
		return 0, err
	}
	if pk.lastCalls == 0 || pk.lastCallsAt <= 0 {
		return 0, fmt.Errorf("no call connected (%v)", err)
	}
	return float64(pk.lastCalls) / pk.lastCallsAt.Seconds(), nil
}

// UsersRun is a media-free (or mixed) scale run against the clinic process.
type UsersRun struct {
	Users        int      `json:"users"` // asked for
	PeakActive   int64    `json:"peak_active"`
	BytesPerUser float64  `json:"bytes_per_user"` // live-heap growth at the peak / users active then
	Operations   int      `json:"operations"`
	OpErrors     int      `json:"operation_errors"`
	ProbesDenied int      `json:"probes_denied"` // among OpErrors, by design
	CallsFailed  int      `json:"calls_failed"`
	Violations   int      `json:"violations"`
	Seconds      float64  `json:"seconds"`
	FirstErrors  []string `json:"first_errors,omitempty"`
	// Mixed runs only.
	MediaUsers   int     `json:"media_users,omitempty"` // asked for
	MediaCalls   int     `json:"media_calls,omitempty"`
	MediaPeak    int64   `json:"media_peak_active,omitempty"`
	MediaLossPct float64 `json:"media_loss_pct,omitempty"`
}

// usersScenario: n media-free patients arriving over ramp, each thinking
// think..2*think between steps, so that they all overlap.
func usersScenario(name string, n int, ramp, think time.Duration, media bool, callLen time.Duration) string {
	probe := 1
	sw := 0
	if media {
		probe, sw = 0, 1
	}
	return fmt.Sprintf(`name: %s
description: user scale
seed: 3
media: %t
population: {patients: %d, clinicians: %d}
executor: {type: constant-arrival-rate, rate: %g, max_in_flight: %d}
duration: %s
settle: 5s
behaviour: {switch_to_video: %d, replay: 1, abandon: 0, probe_other: %d, call_min: %s, call_max: %s, switch_min: 0.3, switch_max: 0.4, think_min: %s, think_max: %s}
`, name, media, n, max(n/50, 1), float64(n)/ramp.Seconds(), n, ramp+time.Second, sw, probe, callLen, callLen, think, 2*think)
}

// usersRun drives n media-free users against base (the clinic process),
// measuring the harness's live heap per active user.
func usersRun(ctx context.Context, base string, n int, ramp, think time.Duration) (UsersRun, error) {
	u := UsersRun{Users: n}
	sc, err := parseScenario("bench-users", usersScenario("bench-users", n, ramp, think, false, 200*time.Millisecond))
	if err != nil {
		return u, err
	}
	sc.Target = base
	h0 := settledHeap()
	t0 := time.Now()
	res, pk, err := runOnce(ctx, sc, 500*time.Millisecond, true, false, nil)
	u.Seconds = round(time.Since(t0).Seconds(), 1)
	if res == nil {
		return u, err
	}
	fillUsers(&u, res, pk, h0)
	return u, err
}

func fillUsers(u *UsersRun, res *harness.Result, pk *peaks, h0 uint64) {
	c := res.Summary.Counts
	u.PeakActive = pk.users
	if pk.users > 0 && pk.heapAtPeak > h0 {
		u.BytesPerUser = round(float64(pk.heapAtPeak-h0)/float64(pk.users), 0)
	}
	u.Operations, u.OpErrors, u.CallsFailed, u.ProbesDenied = c.Operations, c.OperationErrors, c.CallsFailed, c.ProbesDenied
	u.Violations = len(res.Violations)
	u.FirstErrors = append(u.FirstErrors, pk.errs.errs...)
}

// mixedMediaThink is the think time of the mixed run's media users: short,
// so that their calls start soon after they arrive.
const mixedMediaThink = 500 * time.Millisecond

// mixedCallLen is the call length of the mixed run's media users: a call
// that starts at the beginning of the ramp is still up when the last media
// user joins at its end, so every media call is active at once while the
// media-free users peak (at the end of the ramp; their lifecycles last
// several thinks longer).
func mixedCallLen(ramp time.Duration) time.Duration {
	return ramp + max(ramp/8, 5*time.Second)
}

// mixedRun drives n users of whom 2% carry real media: a media-free run of
// 98% and a media run of 2% at once, against the same clinic process. The
// media users arrive over the same ramp and stay in their calls until after
// it (mixedCallLen), so the 2% are in calls at the peak, not one after the
// other.
func mixedRun(ctx context.Context, base string, n int, ramp, think time.Duration) (UsersRun, error) {
	u := UsersRun{Users: n}
	nm := max(n*2/100, 1)
	u.MediaUsers = nm
	free, err := parseScenario("bench-mixed-free", usersScenario("bench-mixed-free", n-nm, ramp, think, false, 200*time.Millisecond))
	if err != nil {
		return u, err
	}
	med, err := parseScenario("bench-mixed-media", usersScenario("bench-mixed-media", nm, ramp, mixedMediaThink, true, mixedCallLen(ramp)))
	if err != nil {
		return u, err
	}
	free.Target, med.Target = base, base
	h0 := settledHeap()
	t0 := time.Now()
	var wg sync.WaitGroup
	var mres *harness.Result
	var mpk *peaks
	var merr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		mres, mpk, merr = runOnce(ctx, med, 500*time.Millisecond, false, false, nil)
	}()
	fres, fpk, ferr := runOnce(ctx, free, 500*time.Millisecond, true, false, nil)
	wg.Wait()
	u.Seconds = round(time.Since(t0).Seconds(), 1)
	if fres == nil {
		return u, ferr
	}
	fillUsers(&u, fres, fpk, h0)
	if mres == nil {
		return u, fmt.Errorf("media part: %w", merr)
	}
	u.PeakActive += mpk.users
	c := mres.Summary.Counts
	u.MediaCalls, u.MediaPeak = c.CallsConnected, mpk.calls
	if c.FramesSent > 0 {
		u.MediaLossPct = round(100*(1-float64(c.FramesAcked)/float64(c.FramesSent)), 3)
	}
	u.Operations += c.Operations
	u.OpErrors += c.OperationErrors
	u.ProbesDenied += c.ProbesDenied
	u.CallsFailed += c.CallsFailed
	u.Violations += len(mres.Violations)
	return u, errorsJoin(ferr, merr)
}

func errorsJoin(a, b error) error {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return fmt.Errorf("%w; %w", a, b)
}

// OracleRun is one in-process API run with or without the observer path.
type OracleRun struct {
	Checks     bool    `json:"checks"`
	Ops        int     `json:"ops"`
	OpsPerSec  float64 `json:"ops_per_s"`
	CPUusPerOp float64 `json:"cpu_us_per_op"`
	// ObserverPct (checks on only) is the share of the run's CPU spent in
	// the run's observer (metrics, latency samples, the op log that serves
	// repro traces and the oracle's evidence): what "off" leaves out, timed
	// in the same run.
	ObserverPct  float64 `json:"observer_cpu_pct,omitempty"`
	ObserverNsOp float64 `json:"observer_ns_per_op,omitempty"`
}

// apiRun runs the media-free closed loop in-process against base. With
// checks off, the driver's Observer only counts requests: the per-request
// metrics, latency samples and the oracle's per-user operation log are
// skipped (the oracle's list, replay and probe checks still run: RunConfig
// has no switch for them). With checks on, the run's observer is timed.
// Both build the HTTP target the same way the runner does.
func apiRun(ctx context.Context, base string, vus int, d time.Duration, checks bool, prof *os.File) (OracleRun, error) {
	o := OracleRun{Checks: checks}
	sc, err := parseScenario("bench-api", apiScenario(vus, 1_000_000, d))
	if err != nil {
		return o, err
	}
	sc.Target = base
	var ht *driver.HTTPTarget
	var counted, spent atomic.Int64
	newTarget := func(obs driver.Observer) (driver.Target, error) {
		observe := func(driver.Observation) { counted.Add(1) }
		if checks {
			observe = func(ob driver.Observation) {
				t := time.Now()
				obs(ob)
				spent.Add(int64(time.Since(t)))
			}
		}
		h, err := driver.NewHTTP(base, driver.HTTPOptions{Timeout: 15 * time.Second, Observer: observe})
		ht = h
		return h, err
	}
	if prof != nil {
		if err := pprof.StartCPUProfile(prof); err == nil {
			defer pprof.StopCPUProfile()
		}
	}
	c0, t0 := selfCPU(), time.Now()
	res, _, err := runOnce(ctx, sc, time.Second, false, false, newTarget)
	wall, cpu := time.Since(t0), selfCPU()-c0
	if ht != nil {
		ht.Close()
	}
	if res == nil {
		return o, err
	}
	// Without the run's observer the run counts no operations; the counting
	// observer does.
	ops := res.Summary.Counts.Operations
	if !checks {
		ops = int(counted.Load())
	}
	o.Ops = ops
	if ops > 0 {
		o.OpsPerSec = round(float64(ops)/wall.Seconds(), 0)
		o.CPUusPerOp = round(float64(cpu.Microseconds())/float64(ops), 2)
	}
	if checks && ops > 0 && cpu > 0 {
		o.ObserverNsOp = round(float64(spent.Load())/float64(ops), 0)
		o.ObserverPct = round(100*float64(spent.Load())/float64(cpu), 2)
	}
	return o, err
}

// Detection is the time to the first switch-reuse violation per seed.
type Detection struct {
	Seeds    []uint64  `json:"seeds"`
	Seconds  []float64 `json:"seconds"` // +Inf (JSON null) = not found within the bound
	Found    int       `json:"found"`
	BoundS   float64   `json:"bound_s"`
	Rate     float64   `json:"arrivals_per_s"`
	BugSpec  string    `json:"bug"`
	Switches []int     `json:"switches"`
}

// detectOnce runs switch-reuse at p of switches, embedded, and stops at the
// first violation.
func detectOnce(ctx context.Context, seed uint64, rate float64, bound time.Duration, bug string) (float64, int, error) {
	n := int(rate * bound.Seconds())
	yaml := fmt.Sprintf(`name: bench-detect
description: detection of switch-reuse
bugs: [%s]
seed: %d
media: true
population: {patients: %d, clinicians: %d}
executor: {type: constant-arrival-rate, rate: %g, max_in_flight: %d}
duration: %s
settle: 3s
behaviour: {switch_to_video: 1, replay: 1, abandon: 0, probe_other: 0, call_min: 1s, call_max: 2s, switch_min: 0.2, switch_max: 0.4, think_min: 0s, think_max: 0s}
expect: replay-list-ownership
`, bug, seed, n, max(n/4, 1), rate, n, bound)
	sc, err := parseScenario("bench-detect", yaml)
	if err != nil {
		return math.Inf(1), 0, err
	}
	res, _, err := runOnce(ctx, sc, 100*time.Millisecond, false, true, nil)
	if res == nil {
		return math.Inf(1), 0, err
	}
	if res.FirstViolation < 0 {
		return math.Inf(1), res.Summary.Counts.Switches, err
	}
	return res.FirstViolation.Seconds(), res.Summary.Counts.Switches, nil
}
