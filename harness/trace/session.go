package trace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"telechaos/harness/chaos"
	"telechaos/harness/driver"
	"telechaos/harness/oracle"
	"telechaos/models"
)

// Frame sizes: one frame per RTP packet. Audio stays <= 254 bytes: pion's Ogg
// writer corrupts a final page holding a larger packet.
const (
	AudioFrameSize = 60
	VideoFrameSize = 200
)

// Session tunables.
const (
	connectTimeout = 15 * time.Second
	notReadyWait   = 3 * time.Second // how long a send waits for a just-negotiated track
	// drain lets frames in flight reach the target before an end, so what the
	// target acknowledges (and records) does not depend on scheduling luck.
	drain = 80 * time.Millisecond
	// settle: after a send op, frames reach the target and its recorder
	// (tracks open on their first packet) before the next op, so that one
	// sequence of ops does the same thing every time (rapid only shrinks
	// reproducible failures, and a trace must replay).
	settle = 40 * time.Millisecond
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
// drives one op by op. Safe for concurrent use by ops on different symbols.
type Session struct {
	target driver.Target
	media  *driver.MediaFactory
	ledger *models.Ledger
	or     *oracle.Oracle

	mu       sync.Mutex
	roles    map[string]models.Role
	users    map[string]*driver.Session
	consults map[string]*consState
	lists    map[string][]driver.ReplaySummary // user symbol -> last list
	closed   bool
	ctl      TargetControl // nil: target ops fail with ErrNeedsEmbedded

	// down counts target ops in progress: frames sent meanwhile go into the
	// void and are allowed as lost (see end).
	down atomic.Int32
}

type consState struct {
	c          models.Consultation
	pSym, cSym string

	mu        sync.Mutex
	peers     map[string]*peerState // user symbol -> current peer
	sent      bool                  // frames sent since the last end
	ended     bool
	endedAt   time.Time
	recording string
	tracks    []driver.TrackInfo

	joined bool // a join op has fired
	// frames counts what each participant's client sent (real user id,
	// kind), every segment; down those sent while a target op was in
	// progress.
	frames, down map[[2]string]int
	// reached names the target ops that reached the call (after its first
	// join, before its end): its end is judged against frames.
	reached []Kind
	cut     Kind // the target op that cut the peers ("" once rejoined)
}

type peerState struct {
	peer       *driver.Peer
	mu         sync.Mutex
	seqA, seqV uint32
}

// NewSession starts a session. media may be nil when no op needs WebRTC.
func NewSession(target driver.Target, media *driver.MediaFactory, ledger *models.Ledger, or *oracle.Oracle) *Session {
	return &Session{
		target: target, media: media, ledger: ledger, or: or,
		roles: map[string]models.Role{}, users: map[string]*driver.Session{}, consults: map[string]*consState{},
		lists: map[string][]driver.ReplaySummary{},
	}
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
	return c.c.ID, true
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
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recording, c.ended
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
		pairs = append(pairs, c.c.ID, sym)
		c.mu.Lock()
		if c.recording != "" {
			pairs = append(pairs, c.recording, "rec("+sym+")")
		}
		for _, t := range c.tracks {
			pairs = append(pairs, t.ID, "track("+sym+"/"+t.Owner+"/"+t.Kind+")")
		}
		c.mu.Unlock()
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// LastList returns what the last list op of a user symbol got.
func (s *Session) LastList(sym string) []driver.ReplaySummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lists[sym])
}

// Close closes every peer. Idempotent.
func (s *Session) Close() {
	s.mu.Lock()
	s.closed = true
	cs := make([]*consState, 0, len(s.consults))
	for _, c := range s.consults {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.closePeers()
	}
}

func (c *consState) closePeers() {
	c.mu.Lock()
	ps := c.peers
	c.peers = map[string]*peerState{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.peer.Close() }()
	}
	wg.Wait()
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
	u, err := s.target.Register(ctx, role)
	if err != nil {
		return fmt.Errorf("register %s: %w", sym, err)
	}
	s.ledger.AddUser(u.ID, role)
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
	b, err := s.target.Book(ctx, *p, cl.ID)
	if err != nil {
		return fmt.Errorf("book: %w", err)
	}
	c := models.Consultation{ID: b.ConsultationID, AppointmentID: b.AppointmentID, Patient: p.ID, Clinician: cl.ID}
	if err := s.ledger.AddConsultation(c); err != nil {
		return fmt.Errorf("book: %w", err)
	}
	s.or.NoteOp(p.ID, "book "+c.ID+" with "+cl.ID)
	s.mu.Lock()
	s.consults[op.Consult] = &consState{c: c, pSym: op.User, cSym: op.With, peers: map[string]*peerState{},
		frames: map[[2]string]int{}, down: map[[2]string]int{}}
	s.mu.Unlock()
	return nil
}

func (s *Session) prepareJoin(ctx context.Context, u driver.Session, c *consState, op Op) (func(context.Context) error, error) {
	if s.media == nil {
		return nil, errors.New("join: no media factory")
	}
	cid := c.c.ID
	peer, err := s.media.NewPeer(func(_ models.Kind, payload []byte, at time.Time) {
		s.or.CheckLive(u.ID, cid, payload, at)
	})
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	offer, err := peer.OfferAudio(ctx)
	if err != nil {
		peer.Close()
		return nil, fmt.Errorf("join: %w", err)
	}
	ps := &peerState{peer: peer}
	// The new peer replaces the user's previous one at once (a rejoin), so
	// Close finds it whatever happens next.
	c.mu.Lock()
	prev := c.peers[op.User]
	c.peers[op.User] = ps
	c.cut = ""
	c.mu.Unlock()
	if prev != nil {
		prev.peer.Close()
	}
	return func(ctx context.Context) error {
		c.mu.Lock()
		c.joined = true
		c.mu.Unlock()
		s.or.NoteOp(u.ID, "join "+cid)
		answer, _, err := s.target.Join(ctx, u, cid, offer)
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		if err := peer.Accept(answer); err != nil {
			return fmt.Errorf("join: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		if err := peer.WaitConnected(cctx); err != nil {
			return fmt.Errorf("join: %w", err)
		}
		return nil
	}, nil
}

func (c *consState) peer(sym string) (*peerState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[sym]
	if p == nil && c.cut != "" {
		return nil, fmt.Errorf("%w: %s's peer in %s was cut by %s (join again)", ErrUnbound, sym, c.c.ID, c.cut)
	}
	if p == nil {
		return nil, fmt.Errorf("%w: %s has not joined %s", ErrUnbound, sym, c.c.ID)
	}
	return p, nil
}

func (s *Session) prepareSwitch(ctx context.Context, u driver.Session, c *consState, op Op) (func(context.Context) error, error) {
	p, err := c.peer(op.User)
	if err != nil {
		return nil, fmt.Errorf("switch: %w", err)
	}
	offer, err := p.peer.OfferVideo(ctx)
	if err != nil {
		return nil, fmt.Errorf("switch: %w", err)
	}
	return func(ctx context.Context) error {
		s.or.NoteOp(u.ID, "switch "+c.c.ID)
		answer, err := s.target.SwitchVideo(ctx, u, c.c.ID, offer)
		if err != nil {
			return fmt.Errorf("switch: %w", err)
		}
		if err := p.peer.Accept(answer); err != nil {
			return fmt.Errorf("switch: %w", err)
		}
		return nil
	}, nil
}

// send sends n watermarked frames, one per RTP packet. A just-negotiated
// track may not be bound yet: the send waits a little for it.
func (s *Session) send(u driver.Session, c *consState, op Op) error {
	p, err := c.peer(op.User)
	if err != nil {
		return fmt.Errorf("%s: %w", op.Op, err)
	}
	ctag, stag := models.TagOf(c.c.ID), models.TagOf(u.ID)
	p.mu.Lock()
	defer p.mu.Unlock()
	c.mu.Lock()
	c.sent = true
	c.mu.Unlock()
	s.or.NoteOp(u.ID, fmt.Sprintf("%s %d frames in %s", op.Op, op.N, c.c.ID))
	deadline := time.Now().Add(notReadyWait)
	kind := models.Video
	if op.Op == OpSendAudio {
		kind = models.Audio
	}
	k := [2]string{u.ID, string(kind)}
	for range op.N {
		var frame []byte
		var write func([]byte) error
		if op.Op == OpSendAudio {
			p.seqA++
			frame = models.AudioFrame(models.Tag{Consultation: ctag, Sender: stag, Seq: p.seqA}, AudioFrameSize)
			write = p.peer.SendAudio
		} else {
			p.seqV++
			frame = models.VideoFrame(models.Tag{Consultation: ctag, Sender: stag, Seq: p.seqV}, VideoFrameSize)
			write = p.peer.SendVideo
		}
		for {
			err := write(frame)
			if err == nil {
				down := s.down.Load() > 0
				c.mu.Lock()
				c.frames[k]++
				if down {
					c.down[k]++
				}
				c.mu.Unlock()
				break
			}
			if !errors.Is(err, driver.ErrNotReady) || time.Now().After(deadline) {
				return fmt.Errorf("%s: %w", op.Op, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	time.Sleep(settle)
	return nil
}

func (s *Session) end(ctx context.Context, u driver.Session, c *consState) error {
	c.mu.Lock()
	sent := c.sent
	c.sent = false
	c.mu.Unlock()
	if sent {
		t := time.NewTimer(drain)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("end: %w", ctx.Err())
		}
	}
	s.or.NoteOp(u.ID, "end "+c.c.ID)
	res, err := s.target.End(ctx, u, c.c.ID)
	if err != nil {
		return fmt.Errorf("end: %w", err)
	}
	if res.RecordingID == "" {
		return fmt.Errorf("end: %w: no recording id", driver.ErrGarbage)
	}
	now := time.Now()
	if err := s.ledger.BindRecording(c.c.ID, res.RecordingID); err != nil {
		// One recording id for two consultations: the list checks judge it.
		s.or.NoteOp(u.ID, "bind: "+err.Error())
	}
	c.mu.Lock()
	if c.joined && s.down.Load() > 0 && !slices.Contains(c.reached, Kind("target down")) {
		c.reached = append(c.reached, "target down") // a target op raced the end
	}
	reached := len(c.reached) > 0
	c.mu.Unlock()
	if reached {
		s.or.ExpectTracks(c.c.ID, res.RecordingID, c.trackExpects(res.Tracks), now)
	} else {
		acked := make([]oracle.AckedTrack, 0, len(res.Tracks))
		for _, t := range res.Tracks {
			acked = append(acked, oracle.AckedTrack{Owner: t.Owner, Kind: t.Kind, Segment: t.Segment, Frames: t.Frames})
		}
		s.or.ExpectRecording(c.c.ID, res.RecordingID, acked, now)
	}
	c.mu.Lock()
	if !c.ended {
		c.ended, c.endedAt, c.recording, c.tracks = true, now, res.RecordingID, res.Tracks
	}
	c.mu.Unlock()
	// The target closed its side; ours go too.
	c.closePeers()
	return nil
}

// targetOp crashes (crash_target) or gracefully restarts (restart_target) the
// target. The calls in progress (joined, not ended) are reached: their peers
// are cut while the target is down, so the next join of each rejoins with a
// new PeerConnection, and their ends are judged against the frames sent.
func (s *Session) targetOp(ctx context.Context, k Kind) error {
	s.mu.Lock()
	ctl := s.ctl
	cs := make([]*consState, 0, len(s.consults))
	for _, c := range s.consults {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	if ctl == nil {
		return fmt.Errorf("%s %w", k, ErrNeedsEmbedded)
	}
	s.down.Add(1)
	defer s.down.Add(-1)
	var hit []*consState
	sent := false
	for _, c := range cs {
		c.mu.Lock()
		if c.joined && !c.ended {
			hit = append(hit, c)
			if !slices.Contains(c.reached, k) {
				c.reached = append(c.reached, k)
			}
			sent = sent || c.sent
		}
		c.mu.Unlock()
	}
	if sent {
		// As before an end: the frames in flight reach the target first, so
		// what the op costs a correct target does not depend on scheduling.
		if err := sleepCtx(ctx, drain); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	for _, c := range hit {
		s.or.NoteOp(c.c.Patient, string(k)+" during "+c.c.ID)
		s.or.NoteOp(c.c.Clinician, string(k)+" during "+c.c.ID)
	}
	stopErr := ctl.Stop(ctx, k == OpCrashTarget)
	// The target's side of the calls is gone: ours go too (after the stop,
	// so that nothing the clients do lets the target finalise first).
	for _, c := range hit {
		c.mu.Lock()
		c.cut = k
		c.mu.Unlock()
		c.closePeers()
	}
	if err := ctl.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w", k, errors.Join(stopErr, err))
	}
	if stopErr != nil {
		return fmt.Errorf("%s: %w", k, stopErr)
	}
	return nil
}

// trackExpects states what each participant's media must amount to in the
// recording of a call a target op reached, as a run does for calls a clinic
// fault reached: what the target acknowledged (acked, its answer to end) and
// what the client sent, less the baseline and the frames sent while a target
// op was in progress.
func (c *consState) trackExpects(acked []driver.TrackInfo) []oracle.TrackExpect {
	ack := map[[2]string]int{}
	for _, t := range acked {
		ack[[2]string{t.Owner, t.Kind}] += t.Frames
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, len(c.reached))
	for i, k := range c.reached {
		names[i] = string(k)
	}
	slices.Sort(names)
	var out []oracle.TrackExpect
	for _, owner := range []string{c.c.Patient, c.c.Clinician} {
		for _, kind := range []models.Kind{models.Audio, models.Video} {
			k := [2]string{owner, string(kind)}
			sent, a, down := c.frames[k], ack[k], c.down[k]
			if sent == 0 && a <= 0 {
				continue
			}
			base := chaos.BaselineAllowed(sent)
			why := fmt.Sprintf("baseline %d + faults %d (%s)", base, down, strings.Join(names, ", "))
			if down > 0 {
				why += fmt.Sprintf(", %d of them sent while the target was down", down)
			}
			out = append(out, oracle.TrackExpect{Owner: owner, Kind: string(kind), Acked: a, Sent: sent, Allowed: min(base+down, sent), Why: why})
		}
	}
	return out
}

func (s *Session) list(ctx context.Context, op Op) error {
	s.mu.Lock()
	u := s.users[op.User]
	cs := make([]*consState, 0, len(s.consults))
	for _, c := range s.consults {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	if u == nil {
		return fmt.Errorf("list: %w: user %s (not registered)", ErrUnbound, op.User)
	}
	start := time.Now()
	items, err := s.target.ListReplays(ctx, *u)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	s.or.NoteOp(u.ID, fmt.Sprintf("list: %d replays", len(items)))
	s.mu.Lock()
	s.lists[op.User] = items
	s.mu.Unlock()
	li := make([]oracle.ListItem, len(items))
	listed := map[string]bool{}
	for k, it := range items {
		li[k] = oracle.ListItem{RecordingID: it.ID, ConsultationID: it.ConsultationID, Participants: it.Participants}
		listed[it.ID] = true
	}
	s.or.CheckList(u.ID, li, time.Now())
	// The contract: after an end the recording is listed for both
	// participants. A list that began after an acknowledged end and misses it
	// is reported to the durability check.
	for _, c := range cs {
		c.mu.Lock()
		ended, endedAt, rid := c.ended, c.endedAt, c.recording
		c.mu.Unlock()
		if ended && endedAt.Before(start) && c.c.Has(u.ID) && !listed[rid] {
			s.or.Delivered(u.ID, c.c.ID, false, nil, time.Now())
		}
	}
	return nil
}

// replay fetches the recording's metadata and, with media, every track: the
// content checks and, for a participant, the durability evidence.
func (s *Session) replay(ctx context.Context, u driver.Session, c *consState, media bool) error {
	c.mu.Lock()
	rid, ended := c.recording, c.ended
	c.mu.Unlock()
	if !ended {
		return fmt.Errorf("replay: %w: consultation %s has no acknowledged end", ErrUnbound, c.c.ID)
	}
	rep, err := s.target.GetReplay(ctx, u, rid)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	s.or.NoteOp(u.ID, "replay "+rid)
	meta := oracle.ReplayMeta{ID: rep.ID, ConsultationID: rep.ConsultationID, Participants: rep.Participants}
	for _, t := range rep.Tracks {
		meta.Tracks = append(meta.Tracks, oracle.TrackMeta{ID: t.ID, Owner: t.Owner, Kind: t.Kind, Segment: t.Segment, Frames: t.Frames})
	}
	s.or.CheckReplay(u.ID, meta, time.Now())
	if !media {
		return nil
	}
	ctag := models.TagOf(c.c.ID)
	senders := map[uint64]string{models.TagOf(c.c.Patient): c.c.Patient, models.TagOf(c.c.Clinician): c.c.Clinician}
	tagged := map[[2]string]int{}
	var errs []error
	for _, t := range rep.Tracks {
		b, err := s.target.FetchMedia(ctx, u, rid, t.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("fetch track %s: %w", t.ID, err))
			continue
		}
		frames, err := ReadTrack(t, b)
		if err != nil {
			errs = append(errs, fmt.Errorf("track %s of %s: %w: %w", t.ID, rid, driver.ErrGarbage, err))
			continue
		}
		s.or.CheckFrames(u.ID, rid, t.ID, frames, time.Now())
		for _, f := range frames {
			tag, _, err := models.FindTag(f)
			if err != nil || tag.Consultation != ctag {
				continue
			}
			if who, ok := senders[tag.Sender]; ok {
				tagged[[2]string{who, string(tag.Kind)}]++
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if c.c.Has(u.ID) {
		s.or.Delivered(u.ID, c.c.ID, true, tagged, time.Now())
	}
	return nil
}

// ReadTrack splits a track's bytes into frames by its container.
func ReadTrack(t driver.TrackInfo, b []byte) ([][]byte, error) {
	switch {
	case t.Format == "ogg" || (t.Format == "" && t.Kind == string(models.Audio)):
		return driver.ReadOgg(b)
	case t.Format == "ivf" || (t.Format == "" && t.Kind == string(models.Video)):
		return driver.ReadIVF(b)
	}
	return nil, fmt.Errorf("unknown track format %q", t.Format)
}

// probe fetches a recording (once ended), its consultation and a track, by the
// real ids of somebody else's consultation: each must be denied.
func (s *Session) probe(ctx context.Context, u driver.Session, c *consState) error {
	c.mu.Lock()
	rid, ended := c.recording, c.ended
	tracks := slices.Clone(c.tracks)
	c.mu.Unlock()
	s.or.NoteOp(u.ID, "probe "+c.c.ID)
	judge := func(rid string, err error, n int) error {
		if err == nil {
			s.or.CheckProbe(u.ID, rid, c.c.ID, 200, n, time.Now())
			return nil
		}
		if code := driver.StatusCode(err); code != 0 {
			s.or.CheckProbe(u.ID, rid, c.c.ID, code, 0, time.Now())
			return nil
		}
		if errors.Is(err, driver.ErrGarbage) {
			s.or.CheckProbe(u.ID, rid, c.c.ID, 200, 1, time.Now())
			return nil
		}
		return fmt.Errorf("probe: %w", err) // no answer says nothing about access control
	}
	var errs []error
	ci, err := s.target.Consultation(ctx, u, c.c.ID)
	n := 0
	if err == nil {
		b, _ := json.Marshal(ci)
		n = len(b)
	}
	errs = append(errs, judge("", err, n))
	if ended {
		rep, err := s.target.GetReplay(ctx, u, rid)
		n := 0
		if err == nil {
			b, _ := json.Marshal(rep)
			n = len(b)
		}
		errs = append(errs, judge(rid, err, n))
		if len(tracks) > 0 {
			b, err := s.target.FetchMedia(ctx, u, rid, tracks[0].ID)
			errs = append(errs, judge(rid, err, len(b)))
		}
	}
	return errors.Join(errs...)
}
