package trace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/models"
)

// opTimeout bounds one op (a join waits up to connectTimeout for ICE+DTLS).
const opTimeout = 30 * time.Second

// Execute replays tr against target: users without a register op are
// registered first, then every op starts once its dependencies (its "after"
// list and the ops defining its symbols) have completed, the ops of a
// concurrent_group together. Every observation is judged by or against
// ledger, as in a run; Execute ends with or.Finish and returns or's
// violations. err is an *ExecError listing the ops that failed (violations
// found meanwhile are returned too); media may be nil for traces without
// join.
// Target ops fail (ErrNeedsEmbedded): RunOnce gives its session the opened
// target's Control.
func Execute(ctx context.Context, tr *Trace, target driver.Target, media *driver.MediaFactory, ledger *models.Ledger, or *oracle.Oracle) ([]oracle.Violation, error) {
	return execute(ctx, tr, NewSession(target, media, ledger, or), or)
}

func execute(ctx context.Context, tr *Trace, s *Session, or *oracle.Oracle) ([]oracle.Violation, error) {
	defer s.Close()
	errs := s.Run(ctx, tr)
	s.Close() // peers go before Finish: nothing arrives late
	or.Finish(time.Now())
	var err error
	if len(errs) > 0 {
		err = &ExecError{Ops: errs}
	}
	return or.Violations(), err
}

// Run runs every op of tr in this session (see Execute) and returns the
// failed ops in op order.
func (s *Session) Run(ctx context.Context, tr *Trace) []*OpError {
	for _, u := range tr.Users {
		s.Declare(u)
	}
	var mu sync.Mutex
	var failed []*OpError
	fail := func(e *OpError) {
		mu.Lock()
		failed = append(failed, e)
		mu.Unlock()
	}
	explicit := map[string]int{} // user -> its register op
	booked := map[string]int{}
	for i, op := range tr.Ops {
		switch op.Op {
		case OpRegister:
			explicit[op.User] = i
		case OpBook:
			booked[op.Consult] = i
		}
	}
	for _, u := range tr.Users {
		if _, ok := explicit[u.Name]; ok {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		err := s.register(octx, u.Name)
		cancel()
		if err != nil {
			fail(&OpError{Index: -1, Op: Op{Op: OpRegister, User: u.Name}, Err: err})
		}
	}

	done := make([]chan struct{}, len(tr.Ops))
	for i := range done {
		done[i] = make(chan struct{})
	}
	barriers := map[int]*sync.WaitGroup{}
	for _, op := range tr.Ops {
		if op.Group != nil {
			if barriers[*op.Group] == nil {
				barriers[*op.Group] = &sync.WaitGroup{}
			}
			barriers[*op.Group].Add(1)
		}
	}
	// At most MaxConcurrentOps ops talk to the target (or hold a new
	// PeerConnection) at once, whatever the trace's width: one goroutine and
	// one connection per op exhausted the file descriptors of a large trace
	// and blamed the target. A concurrent group takes its members' slots
	// together, once every member's dependencies are done (slots are never
	// held while waiting on dependencies, so this cannot deadlock).
	slots := newOpSlots(MaxConcurrentOps)
	groups := map[int]*groupSlots{}
	for g, b := range barriers {
		groups[g] = &groupSlots{slots: slots, ready: b}
	}
	for _, op := range tr.Ops {
		if op.Group != nil {
			groups[*op.Group].n++
		}
	}
	var wg sync.WaitGroup
	for i, op := range tr.Ops {
		deps := append([]int(nil), op.After...)
		for _, sym := range []string{op.User, op.With} {
			if j, ok := explicit[sym]; ok && sym != "" && j != i {
				deps = append(deps, j)
			}
		}
		if j, ok := booked[op.Consult]; ok && op.Op != OpBook {
			deps = append(deps, j)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, d := range deps {
				if d >= 0 && d < len(done) && d != i {
					select {
					case <-done[d]:
					case <-ctx.Done():
					}
				}
			}
			var g *groupSlots
			if op.Group != nil {
				// Arrive and wait for the group: every member arrives once its
				// own dependencies are done (or ctx ends), so this cannot hang;
				// then the group takes its slots, all at once.
				g = groups[*op.Group]
				g.ready.Done()
				g.ready.Wait()
				if !g.acquire(ctx) {
					fail(&OpError{Index: i, Op: op, Err: ctx.Err()})
					return
				}
				defer g.release()
			} else {
				if !slots.acquire(ctx, 1) {
					fail(&OpError{Index: i, Op: op, Err: ctx.Err()})
					return
				}
				defer slots.release(1)
			}
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			fire, err := s.Prepare(octx, op)
			if g != nil {
				// The group's ops hit the target together, after every
				// member's local work (a PeerConnection and its offer).
				g.prepared.Done()
				g.prepared.Wait()
			}
			if err == nil {
				err = fire(octx)
			}
			if err != nil {
				fail(&OpError{Index: i, Op: op, Err: err})
			}
		}()
	}
	wg.Wait()
	sortOpErrors(failed)
	return failed
}

func sortOpErrors(errs []*OpError) {
	slices.SortStableFunc(errs, func(a, b *OpError) int { return cmp.Compare(a.Index, b.Index) })
}

// MaxConcurrentOps bounds the ops of one execution in progress at once (see
// Session.Run); a larger concurrent group runs with this many slots.
const MaxConcurrentOps = 64

// opSlots is a counting semaphore whose acquisitions may take several slots
// at once and give up when ctx ends.
type opSlots struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int
}

func newOpSlots(n int) *opSlots {
	s := &opSlots{free: n}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *opSlots) acquire(ctx context.Context, n int) bool {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.free < n {
		if ctx.Err() != nil {
			return false
		}
		s.cond.Wait()
	}
	s.free -= n
	return true
}

func (s *opSlots) release(n int) {
	s.mu.Lock()
	s.free += n
	s.cond.Broadcast()
	s.mu.Unlock()
}

// groupSlots takes a concurrent group's slots once for all its members (at
// most MaxConcurrentOps) and gives them back when the last member is done.
type groupSlots struct {
	slots    *opSlots
	ready    *sync.WaitGroup // members whose dependencies are done
	prepared sync.WaitGroup  // members whose local work is done
	n        int             // members

	once    sync.Once
	ok      bool
	mu      sync.Mutex
	running int
}

func (g *groupSlots) weight() int { return min(g.n, MaxConcurrentOps) }

// acquire returns once the group holds its slots (false: ctx ended first).
func (g *groupSlots) acquire(ctx context.Context) bool {
	g.once.Do(func() {
		g.prepared.Add(g.n)
		g.ok = g.slots.acquire(ctx, g.weight())
		g.running = g.n
	})
	if !g.ok {
		g.prepared.Done() // keep the members that did get in from waiting for this one
	}
	return g.ok
}

func (g *groupSlots) release() {
	g.mu.Lock()
	g.running--
	last := g.running == 0
	g.mu.Unlock()
	if last {
		g.slots.release(g.weight())
	}
}

// Options configure RunOnce, Repro and Minimise.
type Options struct {
	// Target overrides the trace's target: a reference the target
	// registry opens ("embedded", a base URL, a registered scheme).
	Target string
	// Media is the WebRTC client factory; nil: one is made (and shared by the
	// executions of one call).
	Media *driver.MediaFactory
	// DataDir is where embedded clinics get their temporary data directories
	// (default the system's); each is removed after its execution.
	DataDir string
	// ClinicLogger receives the embedded clinic's logs; default discard.
	ClinicLogger *slog.Logger
}

// Outcome is one execution of a trace.
type Outcome struct {
	Violations []oracle.Violation
	// Reproduced: a violation of the trace's Expect invariant (see Matches).
	Reproduced bool
	// OpErrors are the ops that failed; an unreachable target is an error of
	// RunOnce itself.
	OpErrors *ExecError
	Stats    oracle.Stats // what the oracle judged
	Duration time.Duration
}

// Matches reports whether vs hold a violation of the invariant expect ("" or
// "any": any violation).
func Matches(expect string, vs []oracle.Violation) bool {
	for _, v := range vs {
		if expect == "" || expect == "any" || v.Invariant == expect {
			return true
		}
	}
	return false
}

// ErrTarget: the target could not be started or reached.
var ErrTarget = errors.New("target unavailable")

// CheckTarget reports whether tr can run against targetRef ("": the trace's
// own) before anything runs: the reference names a registered target
// scheme (an error wrapping target.ErrBadRef if not) and, if tr has target
// ops (crash_target, restart_target), a target the harness can stop and
// start (the embedded clinic, or a registered driver with a Control; an
// http(s) URL cannot): the error then wraps ErrNeedsEmbedded and names the
// first such op.
func CheckTarget(tr *Trace, targetRef string) error {
	if targetRef == "" {
		targetRef = tr.Target
	}
	ok, err := target.Controllable(targetRef)
	if err != nil {
		return err
	}
	if i := firstTargetOp(tr); i >= 0 && !ok {
		return fmt.Errorf("op %d: %s %w: replay the trace with --target %s, not %s", i, tr.Ops[i].Op, ErrNeedsEmbedded, TargetEmbedded, targetRef)
	}
	return nil
}

func firstTargetOp(tr *Trace) int {
	for i, op := range tr.Ops {
		if op.Op.Target() {
			return i
		}
	}
	return -1
}

// newMedia is the media factory for a target whose media host is host:
// ICE checks go only to that host and its network
// (driver.DefaultAllowedRemote); "" (no host known): loopback, the
// driver's default.
func newMedia(ctx context.Context, host string) (*driver.MediaFactory, error) {
	var mo driver.MediaOptions
	if host != "" {
		allowed, err := driver.DefaultAllowedRemote(ctx, host)
		if err != nil {
			return nil, err
		}
		mo.AllowedRemote = allowed
		// A target on another host: gather on the address that routes to
		// it, as a run does (loopback stays loopback).
		if a, err := driver.RouteLocalIP(ctx, host); err == nil && !a.IsLoopback() {
			mo.GatherIPs = []netip.Addr{a}
		}
	}
	return driver.NewMediaFactory(mo)
}

// RunOnce executes tr once with a fresh ledger and oracle against the
// target opts.Target (default the trace's own) opened through the target
// registry (package harness/target): "embedded" is a fresh embedded clinic
// with the trace's bugs and bug seed on a temporary data directory removed
// after, a URL the running system with new users, another scheme whatever
// its registered driver opens. The trace's target ops stop and start the
// target through its Control; a trace with target ops and a target without
// one is refused before anything runs (CheckTarget).
func RunOnce(ctx context.Context, tr *Trace, opts Options) (Outcome, error) {
	out, _, err := runOnce(ctx, tr, opts)
	return out, err
}

// runOnce is RunOnce; it also returns the media factory it used (made here
// when opts.Media is nil and the trace joins calls), for Repro to share.
func runOnce(ctx context.Context, tr *Trace, opts Options) (Outcome, *driver.MediaFactory, error) {
	targetRef := opts.Target
	if targetRef == "" {
		targetRef = tr.Target
	}
	if err := CheckTarget(tr, targetRef); err != nil {
		return Outcome{}, nil, err
	}
	start := time.Now()
	op, err := target.Open(ctx, targetRef, target.Options{
		HTTP: driver.HTTPOptions{Timeout: 15 * time.Second},
		Bugs: tr.Bugs, BugSeed: tr.BugSeed, TempDir: opts.DataDir, Logger: opts.ClinicLogger,
		// The trace's client keeps its base URL across target ops.
		KeepAddr: true,
	})
	if errors.Is(err, target.ErrBadRef) {
		return Outcome{}, nil, err
	}
	if err != nil {
		return Outcome{}, nil, fmt.Errorf("%w: %w", ErrTarget, err)
	}
	defer op.Close()
	if i := firstTargetOp(tr); i >= 0 && op.Control == nil {
		return Outcome{}, nil, fmt.Errorf("op %d: %s %w: target %s cannot be stopped by telechaos", i, tr.Ops[i].Op, ErrNeedsEmbedded, targetRef)
	}
	media := opts.Media
	if media == nil && needsMedia(tr) {
		m, err := newMedia(ctx, op.MediaHost)
		if err != nil {
			return Outcome{}, nil, fmt.Errorf("%w: media: %w", ErrTarget, err)
		}
		media = m
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = op.Target.Health(hctx)
	cancel()
	if err != nil {
		where := op.URL
		if where == "" {
			where = targetRef
		}
		return Outcome{}, media, fmt.Errorf("%w: %s: %w", ErrTarget, where, err)
	}
	ledger := models.NewLedger()
	or := oracle.New(ledger, oracle.Options{})
	s := NewSession(op.Target, media, ledger, or)
	if op.Control != nil {
		s.SetTargetControl(&sessionControl{ctl: op.Control, target: op.Target, url: op.URL})
	}
	vs, err := execute(ctx, tr, s, or)
	out := Outcome{Violations: vs, Reproduced: Matches(tr.Expect, vs), Stats: or.Stats(), Duration: time.Since(start)}
	var ee *ExecError
	if errors.As(err, &ee) {
		out.OpErrors = ee
	}
	if !out.Reproduced && errors.Is(err, driver.ErrUnreachable) {
		return out, media, fmt.Errorf("%w: %w", ErrTarget, err)
	}
	return out, media, nil
}

// sessionControl is the TargetControl a session's target ops use: the
// opened target's Control, with the client's side of a restart (dead
// keep-alive connections dropped, the target answering again before the
// next op).
type sessionControl struct {
	ctl    target.Control
	target driver.Target
	url    string // the base URL the driver uses ("": not HTTP)
}

// restartTimeout bounds a start after a target op, until the target answers.
const restartTimeout = 15 * time.Second

func (e *sessionControl) Stop(ctx context.Context, crash bool) error {
	err := e.ctl.Stop(ctx, crash)
	// Keep-alive connections to the old server are dead: drop them, so the
	// next request dials the new one.
	e.closeIdle()
	return err
}

func (e *sessionControl) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	url, err := e.ctl.Start(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTarget, err)
	}
	if e.url != "" && url != "" && strings.TrimRight(url, "/") != strings.TrimRight(e.url, "/") {
		// The driver cannot follow: its opener must keep the address
		// (target.Options.KeepAddr).
		return fmt.Errorf("%w: the target came back at %s, not at %s", ErrTarget, url, e.url)
	}
	e.closeIdle()
	for {
		herr := e.target.Health(ctx)
		if herr == nil {
			return nil
		}
		if serr := sleepCtx(ctx, 50*time.Millisecond); serr != nil {
			return fmt.Errorf("%w: restarted target not healthy: %w", ErrTarget, herr)
		}
	}
}

// closeIdle drops the HTTP driver's idle connections (HTTPTarget.Close only
// does that; the target stays usable).
func (e *sessionControl) closeIdle() {
	if h, ok := e.target.(*driver.HTTPTarget); ok {
		h.Close()
	}
}

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

func needsMedia(tr *Trace) bool {
	for _, op := range tr.Ops {
		if op.Op == OpJoin {
			return true
		}
	}
	return false
}
