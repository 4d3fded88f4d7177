package trace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"telechaos/clinic"
	"telechaos/harness/driver"
	"telechaos/harness/embedded"
	"telechaos/harness/oracle"
	"telechaos/models"
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
// Target ops fail (ErrNeedsEmbedded): RunOnce gives its session the embedded
// clinic's TargetControl.
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
	// Target overrides the trace's target: "embedded" or a base URL.
	Target string
	// Media is the WebRTC client factory; nil: one is made (and shared by the
	// executions of one call).
	Media *driver.MediaFactory
	// DataDir is where embedded clinics get their temporary data directories
	// (default os.TempDir()); each is removed after its execution.
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
// own): its target ops (crash_target, restart_target) need the embedded
// target. The error wraps ErrNeedsEmbedded and names the first such op.
func CheckTarget(tr *Trace, targetRef string) error {
	if targetRef == "" {
		targetRef = tr.Target
	}
	if targetRef == TargetEmbedded {
		return nil
	}
	for i, op := range tr.Ops {
		if op.Op.Target() {
			return fmt.Errorf("op %d: %s %w: replay the trace with --target %s, not %s", i, op.Op, ErrNeedsEmbedded, TargetEmbedded, targetRef)
		}
	}
	return nil
}

// newMedia is the media factory for replaying tr against targetRef ("": the
// trace's own): ICE checks go only to the target's host and its network
// (driver.DefaultAllowedRemote); the embedded clinic is on loopback, the
// driver's default.
func newMedia(ctx context.Context, tr *Trace, targetRef string) (*driver.MediaFactory, error) {
	if targetRef == "" {
		targetRef = tr.Target
	}
	var mo driver.MediaOptions
	if targetRef != TargetEmbedded {
		u, err := neturl.Parse(targetRef)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("target %q is not a URL with a host", targetRef)
		}
		allowed, err := driver.DefaultAllowedRemote(ctx, u.Hostname())
		if err != nil {
			return nil, err
		}
		mo.AllowedRemote = allowed
	}
	return driver.NewMediaFactory(mo)
}

// RunOnce executes tr once with a fresh ledger and oracle, against a fresh
// embedded clinic (the trace's bugs and bug seed, a temporary data directory
// removed after; its target ops crash and restart it) or, for a URL target,
// against that target with new users. A trace with target ops and a URL
// target is refused before anything runs (CheckTarget).
func RunOnce(ctx context.Context, tr *Trace, opts Options) (Outcome, error) {
	targetRef := opts.Target
	if targetRef == "" {
		targetRef = tr.Target
	}
	if err := CheckTarget(tr, targetRef); err != nil {
		return Outcome{}, err
	}
	media := opts.Media
	if media == nil && needsMedia(tr) {
		m, err := newMedia(ctx, tr, targetRef)
		if err != nil {
			return Outcome{}, fmt.Errorf("%w: media: %w", ErrTarget, err)
		}
		media = m
	}
	start := time.Now()
	url := targetRef
	var ec *embedded.Clinic
	if targetRef == TargetEmbedded {
		c, dir, err := startRestartable(ctx, tr.Bugs, tr.BugSeed, opts)
		if err != nil {
			return Outcome{}, err
		}
		defer func() {
			c.Close()
			os.RemoveAll(dir)
		}()
		ec, url = c, c.URL()
	}
	target, err := driver.NewHTTP(url, driver.HTTPOptions{Timeout: 15 * time.Second})
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %w", ErrTarget, err)
	}
	defer target.Close()
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = target.Health(hctx)
	cancel()
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %s: %w", ErrTarget, url, err)
	}
	ledger := models.NewLedger()
	or := oracle.New(ledger, oracle.Options{})
	s := NewSession(target, media, ledger, or)
	if ec != nil {
		s.SetTargetControl(&embeddedControl{clinic: ec, target: target})
	}
	vs, err := execute(ctx, tr, s, or)
	out := Outcome{Violations: vs, Reproduced: Matches(tr.Expect, vs), Stats: or.Stats(), Duration: time.Since(start)}
	var ee *ExecError
	if errors.As(err, &ee) {
		out.OpErrors = ee
	}
	if !out.Reproduced && errors.Is(err, driver.ErrUnreachable) {
		return out, fmt.Errorf("%w: %w", ErrTarget, err)
	}
	return out, nil
}

// StartClinic starts an embedded reference clinic with bugs in a new
// temporary directory under opts.DataDir. The caller closes the server and
// removes dir.
func StartClinic(ctx context.Context, bugs []string, seed uint64, opts Options) (srv *clinic.Server, dir string, err error) {
	srv, _, dir, err = startClinic(ctx, bugs, seed, opts)
	return srv, dir, err
}

func startClinic(ctx context.Context, bugs []string, seed uint64, opts Options) (*clinic.Server, clinic.Config, string, error) {
	dir, err := os.MkdirTemp(opts.DataDir, "telechaos-trace-*")
	if err != nil {
		return nil, clinic.Config{}, "", fmt.Errorf("%w: data directory: %w", ErrTarget, err)
	}
	cfg := clinic.Config{Addr: "127.0.0.1:0", DataDir: dir, Bugs: bugs, Seed: seed, Logger: opts.ClinicLogger}
	srv, err := clinic.Start(ctx, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, clinic.Config{}, "", fmt.Errorf("%w: start embedded clinic: %w", ErrTarget, err)
	}
	return srv, cfg, dir, nil
}

// startRestartable starts an embedded clinic (see StartClinic) that target
// ops can crash and start again on the same data directory and the same HTTP
// address (the port the first start got), so the driver's base URL holds.
func startRestartable(ctx context.Context, bugs []string, seed uint64, opts Options) (*embedded.Clinic, string, error) {
	srv, cfg, dir, err := startClinic(ctx, bugs, seed, opts)
	if err != nil {
		return nil, "", err
	}
	cfg.Addr = strings.TrimPrefix(srv.URL(), "http://")
	return embedded.Adopt(srv, cfg), dir, nil
}

// embeddedControl is the TargetControl of an embedded clinic.
type embeddedControl struct {
	clinic *embedded.Clinic
	target *driver.HTTPTarget
}

// restartTimeout bounds a start after a target op, until /healthz answers.
const restartTimeout = 15 * time.Second

func (e *embeddedControl) Stop(ctx context.Context, crash bool) error {
	err := e.clinic.Stop(ctx, crash)
	// Keep-alive connections to the old server are dead: drop them, so the
	// next request dials the new one (HTTPTarget.Close only closes idle
	// connections; the target stays usable).
	e.target.Close()
	return err
}

func (e *embeddedControl) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	var err error
	// The address was just released: a start that loses a race for the
	// port tries again.
	for attempt := 0; ; attempt++ {
		if _, err = e.clinic.Start(ctx); err == nil || attempt == 4 {
			break
		}
		if serr := sleepCtx(ctx, 100*time.Millisecond); serr != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTarget, err)
	}
	e.target.Close()
	for {
		herr := e.target.Health(ctx)
		if herr == nil {
			return nil
		}
		if serr := sleepCtx(ctx, 50*time.Millisecond); serr != nil {
			return fmt.Errorf("%w: restarted clinic not healthy: %w", ErrTarget, herr)
		}
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
