package trace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/client"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// Frame sizes: one frame per RTP packet, the client's (harness/client), so a
// trace sends what a run's virtual users send.
const (
	AudioFrameSize = client.AudioFrameSize
	VideoFrameSize = client.VideoFrameSize
)

// ErrUnbound: an op names a symbol whose defining op did not succeed.
var ErrUnbound = errors.New("symbol not bound")

// ErrNeedsEmbedded: a target op (crash_target, restart_target) in a session
// that cannot crash or restart its target (a URL target).
var ErrNeedsEmbedded = errors.New("needs the embedded target (a URL target cannot be crashed or restarted by telechaos)")

// TargetControl stops and starts the target for the target ops: Stop crashes
// it (crash: nothing finalised, connections cut) or closes it gracefully;
// Start brings it back on the same data and address and returns once it
// answers. RunOnce gives the embedded clinic's to its session.
type TargetControl interface {
	Stop(ctx context.Context, crash bool) error
	Start(ctx context.Context) error
}

// OpError is one failed op.
type OpError struct {
	Index int // op index in the trace (-1 for an implicit registration)
	Op    Op
	Err   error
}

func (e *OpError) Error() string { return fmt.Sprintf("op %d (%s): %v", e.Index, e.Op, e.Err) }
func (e *OpError) Unwrap() error { return e.Err }

// Refused reports whether the target answered a 4xx: for generated schedules
// a refusal (a switch racing an end, a second end) can be the right answer.
func (e *OpError) Refused() bool {
	c := driver.StatusCode(e.Err)
	return c >= 400 && c < 500
}

// ExecError collects the failed ops of an execution. errors.Is sees through it
// (driver.ErrUnreachable, context errors).
type ExecError struct{ Ops []*OpError }

func (e *ExecError) Error() string {
	if len(e.Ops) == 1 {
		return e.Ops[0].Error()
	}
	return fmt.Sprintf("%d ops failed, first: %v", len(e.Ops), e.Ops[0])
}

func (e *ExecError) Unwrap() []error {
	out := make([]error, len(e.Ops))
	for i, o := range e.Ops {
		out[i] = o
	}
	return out
}

// Session binds a trace's symbols to real ids and runs ops one at a time or
// concurrently. Execute drives one over a whole trace; the sequential property
// drives one op by op. What each op does (its requests, frames and checks) is
// harness/client's, the same client a run's virtual users use; the session
// binds symbols and schedules. Safe for concurrent use by ops on different
// symbols.
type Session struct {
	target driver.Target
	cl     *client.Client
	or     *oracle.Oracle

	mu       sync.Mutex
	roles    map[string]models.Role
	users    map[string]*driver.Session
	consults map[string]*consState
	lists    map[string][]driver.ReplaySummary // user symbol -> last list
	ctl      TargetControl                     // nil: target ops fail with ErrNeedsEmbedded

	// down counts target ops in progress: frames sent meanwhile go into the
	// void and are allowed as lost (see end).
	down atomic.Int32
}

type consState struct {
	call       *client.Call
	pSym, cSym string

	mu sync.Mutex
	// reached names the target ops that reached the call (after its first
	// join, before its end): its end is judged against the frames sent.
	reached []Kind
	cut     Kind // the target op that cut the peers ("" once rejoined)
}

// sessionHooks are a trace's side of the client: every request once (a
// trace replays what happened, it does not retry), frames sent during a
// target op counted as sent while the target was down, notes as evidence.
type sessionHooks struct {
	client.NopHooks
	s *Session
}

func (h sessionHooks) TargetDown() bool { return h.s.down.Load() > 0 }

func (h sessionHooks) NoteErr(user, step string, err error) {
	h.s.or.NoteOp(user, step+": "+err.Error())
}

// NewSession starts a session. media may be nil when no op needs WebRTC.
func NewSession(target driver.Target, media *driver.MediaFactory, ledger *models.Ledger, or *oracle.Oracle) *Session {
	s := &Session{
		target: target, or: or,
		roles: map[string]models.Role{}, users: map[string]*driver.Session{}, consults: map[string]*consState{},
		lists: map[string][]driver.ReplaySummary{},
	}
	s.cl = client.New(target, media, ledger, or, client.Options{Hooks: sessionHooks{s: s}})
	return s
}

// SetTargetControl lets the session's target ops crash and restart the
// target (nil: they fail with ErrNeedsEmbedded).
func (s *Session) SetTargetControl(ctl TargetControl) {
	s.mu.Lock()
	s.ctl = ctl
	s.mu.Unlock()
}

// Declare makes a user symbol known (its role); it does not register it.
func (s *Session) Declare(u User) {
	s.mu.Lock()
	s.roles[u.Name] = u.Role
	s.mu.Unlock()
}

// UserID returns the real id bound to a user symbol.
func (s *Session) UserID(sym string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[sym]
	if u == nil {
		return "", false
	}
	return u.ID, true
}

// ConsultationID returns the real id bound to a consultation symbol.
func (s *Session) ConsultationID(sym string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.consults[sym]
	if c == nil {
		return "", false
	}
	return c.call.Cons.ID, true
}

// Recording returns the recording id the target acknowledged for a
// consultation symbol's end.
func (s *Session) Recording(sym string) (string, bool) {
	s.mu.Lock()
	c := s.consults[sym]
	s.mu.Unlock()
	if c == nil {
		return "", false
	}
	return c.call.Recording()
}

// Symbolize replaces the real ids of users, consultations and recordings in
// text with their symbols (a recording as "rec(k1)"), so messages read like
// the trace and do not change from one execution to the next.
func (s *Session) Symbolize(text string) string {
	s.mu.Lock()
	var pairs []string
	for sym, u := range s.users {
		pairs = append(pairs, u.ID, sym)
	}
	cs := make(map[string]*consState, len(s.consults))
	for sym, c := range s.consults {
		cs[sym] = c
	}
	s.mu.Unlock()
	for sym, c := range cs {
		pairs = append(pairs, c.call.Cons.ID, sym)
		if rid, ended := c.call.Recording(); ended && rid != "" {
			pairs = append(pairs, rid, "rec("+sym+")")
		}
		for _, t := range c.call.Tracks() {
			pairs = append(pairs, t.ID, "track("+sym+"/"+t.Owner+"/"+t.Kind+")")
		}
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// LastList returns what the last list op of a user symbol got.
func (s *Session) LastList(sym string) []driver.ReplaySummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lists[sym])
}

// Close judges the live media of the calls not ended yet and closes every
// peer. Idempotent.
func (s *Session) Close() {
	s.mu.Lock()
	cs := s.consStates()
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.call.JudgeLive(context.Background())
			c.call.ClosePeers()
		}()
	}
	wg.Wait()
}

// consStates lists the consultations; s.mu is held.
func (s *Session) consStates() []*consState {
	cs := make([]*consState, 0, len(s.consults))
	for _, c := range s.consults {
		cs = append(cs, c)
	}
	return cs
}

// Do runs one op to completion.
func (s *Session) Do(ctx context.Context, op Op) error {
	fire, err := s.Prepare(ctx, op)
	if err != nil {
		return err
	}
	return fire(ctx)
}

// Prepare does an op's local work (a PeerConnection and its offer for join
// and switch) and returns the part that talks to the target, so that the ops
// of a concurrent group hit the target together.
func (s *Session) Prepare(ctx context.Context, op Op) (fire func(context.Context) error, err error) {
	nop := func(f func(context.Context) error) (func(context.Context) error, error) { return f, nil }
	switch op.Op {
	case OpRegister:
		return nop(func(ctx context.Context) error { return s.register(ctx, op.User) })
	case OpBook:
		return nop(func(ctx context.Context) error { return s.book(ctx, op) })
	case OpList:
		return nop(func(ctx context.Context) error { return s.list(ctx, op) })
	case OpCrashTarget, OpRestartTarget:
		return nop(func(ctx context.Context) error { return s.targetOp(ctx, op.Op) })
	}
	u, c, err := s.bound(op)
	if err != nil {
		return nil, err
	}
	switch op.Op {
	case OpJoin:
		return s.prepareJoin(ctx, u, c, op)
	case OpSwitch:
		return s.prepareSwitch(ctx, u, c, op)
	case OpSendAudio, OpSendVideo:
		return nop(func(context.Context) error { return s.send(u, c, op) })
	case OpEnd:
		return nop(func(ctx context.Context) error { return s.end(ctx, u, c) })
	case OpReplay:
		return nop(func(ctx context.Context) error { return s.replay(ctx, u, c, false) })
	case OpFetch:
		return nop(func(ctx context.Context) error { return s.replay(ctx, u, c, true) })
	case OpProbe:
		return nop(func(ctx context.Context) error { return s.probe(ctx, u, c) })
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownOp, op.Op)
}

// bound resolves an op's user and consultation.
func (s *Session) bound(op Op) (driver.Session, *consState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[op.User]
	if u == nil {
		return driver.Session{}, nil, fmt.Errorf("%w: user %s (not registered)", ErrUnbound, op.User)
	}
	c := s.consults[op.Consult]
	if c == nil {
		return driver.Session{}, nil, fmt.Errorf("%w: consultation %s (not booked)", ErrUnbound, op.Consult)
	}
	return *u, c, nil
}

func (s *Session) register(ctx context.Context, sym string) error {
	s.mu.Lock()
	role, ok := s.roles[sym]
	done := s.users[sym] != nil
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: user %s is not declared", ErrUnknownSymbol, sym)
	}
	if done {
		return nil
	}
	u, err := s.cl.Register(ctx, role)
	if err != nil {
		return fmt.Errorf("register %s: %w", sym, err)
	}
	s.or.NoteOp(u.ID, "register "+string(role))
	s.mu.Lock()
	s.users[sym] = &u
	s.mu.Unlock()
	return nil
}

func (s *Session) book(ctx context.Context, op Op) error {
	s.mu.Lock()
	p, cl := s.users[op.User], s.users[op.With]
	_, dup := s.consults[op.Consult]
	s.mu.Unlock()
	if p == nil || cl == nil {
		return fmt.Errorf("%w: book needs %s and %s registered", ErrUnbound, op.User, op.With)
	}
	if dup {
		return fmt.Errorf("%w: consultation %s booked twice", ErrBadField, op.Consult)
	}
	c, err := s.cl.Book(ctx, *p, cl.ID)
	if err != nil {
		return err
	}
	s.or.NoteOp(p.ID, "book "+c.ID+" with "+cl.ID)
	s.mu.Lock()
	s.consults[op.Consult] = &consState{call: s.cl.NewCall(c), pSym: op.User, cSym: op.With}
	s.mu.Unlock()
	return nil
}

func (s *Session) prepareJoin(ctx context.Context, u driver.Session, c *consState, _ Op) (func(context.Context) error, error) {
	p := c.call.Participant(u)
	o, err := p.PrepareJoin(ctx)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	c.mu.Lock()
	c.cut = ""
	c.mu.Unlock()
	cid := c.call.Cons.ID
	return func(ctx context.Context) error {
		s.or.NoteOp(u.ID, "join "+cid)
		if err := p.FireJoin(ctx, o); err != nil {
			return fmt.Errorf("join: %w", err)
		}
		if err := p.WaitConnected(ctx); err != nil {
			return fmt.Errorf("join: %w", err)
		}
		return nil
	}, nil
}

// joined returns u's participant in c if it has a peer now.
func (c *consState) joined(sym string, u driver.Session) (*client.Participant, error) {
	p := c.call.Lookup(u.ID)
	if p != nil && p.Peer() != nil {
		return p, nil
	}
	c.mu.Lock()
	cut := c.cut
	c.mu.Unlock()
	if cut != "" {
		return nil, fmt.Errorf("%w: %s's peer in %s was cut by %s (join again)", ErrUnbound, sym, c.call.Cons.ID, cut)
	}
	return nil, fmt.Errorf("%w: %s has not joined %s", ErrUnbound, sym, c.call.Cons.ID)
}

func (s *Session) prepareSwitch(ctx context.Context, u driver.Session, c *consState, op Op) (func(context.Context) error, error) {
	p, err := c.joined(op.User, u)
	if err != nil {
		return nil, fmt.Errorf("switch: %w", err)
	}
	o, err := p.PrepareSwitch(ctx)
	if err != nil {
		return nil, fmt.Errorf("switch: %w", err)
	}
	return func(ctx context.Context) error {
		s.or.NoteOp(u.ID, "switch "+c.call.Cons.ID)
		if err := p.FireSwitch(ctx, o, false); err != nil {
			return fmt.Errorf("switch: %w", err)
		}
		return nil
	}, nil
}

// send sends n watermarked frames, one per RTP packet, as one burst (see
// client.Participant.SendBurst).
func (s *Session) send(u driver.Session, c *consState, op Op) error {
	p, err := c.joined(op.User, u)
	if err != nil {
		return fmt.Errorf("%s: %w", op.Op, err)
	}
	s.or.NoteOp(u.ID, fmt.Sprintf("%s %d frames in %s", op.Op, op.N, c.call.Cons.ID))
	kind := models.Video
	if op.Op == OpSendAudio {
		kind = models.Audio
	}
	if err := p.SendBurst(kind, op.N); err != nil {
		return fmt.Errorf("%s: %w", op.Op, err)
	}
	return nil
}

func (s *Session) end(ctx context.Context, u driver.Session, c *consState) error {
	call := c.call
	if err := call.Drain(ctx); err != nil {
		return fmt.Errorf("end: %w", err)
	}
	s.or.NoteOp(u.ID, "end "+call.Cons.ID)
	if _, err := call.End(ctx, u); err != nil {
		return err
	}
	c.mu.Lock()
	if call.Joined() && s.down.Load() > 0 && !slices.Contains(c.reached, Kind("target down")) {
		c.reached = append(c.reached, "target down") // a target op raced the end
	}
	c.mu.Unlock()
	call.Expect(c.allowance())
	// The target closed its side; ours go too.
	call.JudgeLive(ctx)
	call.ClosePeers()
	return nil
}

// targetOp crashes (crash_target) or gracefully restarts (restart_target) the
// target. The calls in progress (joined, not ended) are reached: their peers
// are cut while the target is down, so the next join of each rejoins with a
// new PeerConnection, and their ends are judged against the frames sent.
func (s *Session) targetOp(ctx context.Context, k Kind) error {
	s.mu.Lock()
	ctl := s.ctl
	cs := s.consStates()
	s.mu.Unlock()
	if ctl == nil {
		return fmt.Errorf("%s %w", k, ErrNeedsEmbedded)
	}
	s.down.Add(1)
	defer s.down.Add(-1)
	var hit []*consState
	pending := false
	for _, c := range cs {
		if c.call.Joined() && !c.call.Ended() {
			hit = append(hit, c)
			c.mu.Lock()
			if !slices.Contains(c.reached, k) {
				c.reached = append(c.reached, k)
			}
			c.mu.Unlock()
			pending = pending || c.call.Pending()
		}
	}
	if pending {
		// As before an end: the frames in flight reach the target first, so
		// what the op costs a correct target does not depend on scheduling.
		if err := sleepCtx(ctx, client.DrainTime); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	for _, c := range hit {
		s.or.NoteOp(c.call.Cons.Patient, string(k)+" during "+c.call.Cons.ID)
		s.or.NoteOp(c.call.Cons.Clinician, string(k)+" during "+c.call.Cons.ID)
	}
	stopErr := ctl.Stop(ctx, k == OpCrashTarget)
	// The target's side of the calls is gone: ours go too (after the stop,
	// so that nothing the clients do lets the target finalise first).
	for _, c := range hit {
		c.mu.Lock()
		c.cut = k
		c.mu.Unlock()
		c.call.ClosePeers()
	}
	if err := ctl.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w", k, errors.Join(stopErr, err))
	}
	if stopErr != nil {
		return fmt.Errorf("%s: %w", k, stopErr)
	}
	return nil
}

// allowance is the loss the target ops that reached the call explain, as a
// run allows for the clinic faults that reached its calls: the baseline and
// the frames sent while a target op was in progress. nil (judged against the
// acknowledgement only) when none reached it.
func (c *consState) allowance() client.Allowance {
	c.mu.Lock()
	names := make([]string, len(c.reached))
	for i, k := range c.reached {
		names[i] = string(k)
	}
	c.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return func(t client.Track) (int, string) {
		base := chaos.BaselineAllowed(t.Sent)
		why := fmt.Sprintf("baseline %d + faults %d (%s)", base, t.SentDown, strings.Join(names, ", "))
		if t.SentDown > 0 {
			why += fmt.Sprintf(", %d of them sent while the target was down", t.SentDown)
		}
		return min(base+t.SentDown, t.Sent), why
	}
}

func (s *Session) list(ctx context.Context, op Op) error {
	s.mu.Lock()
	u := s.users[op.User]
	cs := s.consStates()
	s.mu.Unlock()
	if u == nil {
		return fmt.Errorf("list: %w: user %s (not registered)", ErrUnbound, op.User)
	}
	start := time.Now()
	items, err := s.cl.List(ctx, *u)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	s.or.NoteOp(u.ID, fmt.Sprintf("list: %d replays", len(items)))
	s.mu.Lock()
	s.lists[op.User] = items
	s.mu.Unlock()
	s.cl.OpenOffered(ctx, *u, items)
	// The contract: after an end the recording is listed for both
	// participants. A list that began after an acknowledged end and misses it
	// is reported to the durability check.
	for _, c := range cs {
		c.call.Unlisted(u.ID, items, start)
	}
	return nil
}

// replay fetches the recording's metadata and, with media, every track: the
// content checks and, for a participant, the durability evidence.
func (s *Session) replay(ctx context.Context, u driver.Session, c *consState, media bool) error {
	rid, ended := c.call.Recording()
	if !ended {
		return fmt.Errorf("replay: %w: consultation %s has no acknowledged end", ErrUnbound, c.call.Cons.ID)
	}
	s.or.NoteOp(u.ID, "replay "+rid)
	if err := s.cl.Replay(ctx, u, c.call.Cons, rid, media); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// ReadTrack splits a track's bytes into frames by its container (see
// client.ReadTrack).
func ReadTrack(t driver.TrackInfo, b []byte) ([][]byte, error) { return client.ReadTrack(t, b) }

// probe fetches a recording (once ended), its consultation and a track, by the
// real ids of somebody else's consultation: each must be denied.
func (s *Session) probe(ctx context.Context, u driver.Session, c *consState) error {
	pt := client.ProbeTarget{Consultation: c.call.Cons.ID}
	if rid, ended := c.call.Recording(); ended {
		pt.Recording = rid
		for _, t := range c.call.Tracks() {
			pt.Tracks = append(pt.Tracks, t.ID)
		}
	}
	s.or.NoteOp(u.ID, "probe "+c.call.Cons.ID)
	return s.cl.Probe(ctx, u, pt, 0)
}
