package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// Call is one consultation's call as the client sees it: its participants
// (each across rejoins), what they sent, and the target's acknowledgement of
// its end. Safe for concurrent use.
type Call struct {
	cl   *Client
	Cons models.Consultation
	ctag uint64

	// pending: frames were sent since the last drain (or peer close).
	pending atomic.Bool

	mu         sync.Mutex
	parts      []*Participant
	joined     bool // a join request went out
	startedAt  time.Time
	ended      bool
	endedAt    time.Time
	recording  string
	tracks     []driver.TrackInfo
	ackLost    bool
	liveJudged bool
}

// NewCall starts the client's side of cons' call; nobody has joined yet.
func (c *Client) NewCall(cons models.Consultation) *Call {
	return &Call{cl: c, Cons: cons, ctag: models.TagOf(cons.ID)}
}

// Participant is one user in a call, the same across rejoins (a rejoin
// replaces the peer, the frame sequence and the counts go on).
type Participant struct {
	S    driver.Session
	call *Call
	tag  uint64
	peer atomic.Pointer[driver.Peer]

	joinStart atomic.Int64 // unix nanos of the first join request
	gotFirst  atomic.Bool
	connected atomic.Bool  // media connected at least once
	live      atomic.Int64 // live frames received and judged, every segment
	// fromPeerA and fromPeerV count the live frames received from the other
	// participant, per kind: what the live path delivered of its media.
	fromPeerA, fromPeerV atomic.Int64
	video                atomic.Bool // switched: its peer sends video too
	segment              atomic.Int64

	mu           sync.Mutex // sends
	seqA, seqV   uint32
	sentA, sentV int // frames the client sent, every segment
	downA, downV int // of those, sent while the target was down
}

// Participant returns s's participant in the call, adding it on first use.
func (c *Call) Participant(s driver.Session) *Participant {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.parts {
		if p.S.ID == s.ID {
			return p
		}
	}
	p := &Participant{S: s, call: c, tag: models.TagOf(s.ID)}
	c.parts = append(c.parts, p)
	return p
}

// Lookup returns the participant of user id, or nil.
func (c *Call) Lookup(id string) *Participant {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.parts {
		if p.S.ID == id {
			return p
		}
	}
	return nil
}

func (c *Call) participants() []*Participant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Participant(nil), c.parts...)
}

// Joined says whether a join request of the call went out.
func (c *Call) Joined() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joined
}

// Pending says whether frames were sent since the last drain.
func (c *Call) Pending() bool { return c.pending.Load() }

// StartedAt is when the call's media first connected (zero: never).
func (c *Call) StartedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startedAt
}

// Peer returns p's current peer (nil: not joined, or closed).
func (p *Participant) Peer() *driver.Peer { return p.peer.Load() }

// Video says whether p switched to video on its current peer.
func (p *Participant) Video() bool { return p.video.Load() }

// Segment is the recording segment the target gave p's last join.
func (p *Participant) Segment() int { return int(p.segment.Load()) }

// closePeer closes p's peer, if any.
func (p *Participant) closePeer() {
	if peer := p.peer.Swap(nil); peer != nil {
		peer.Close()
	}
	p.video.Store(false)
}

// onFrame judges one frame p received live (live-media-isolation).
func (p *Participant) onFrame(kind models.Kind, payload []byte, at time.Time) {
	cl := p.call.cl
	if p.gotFirst.CompareAndSwap(false, true) {
		if st := p.joinStart.Load(); st != 0 {
			cl.met.Latency(LatencyJoin, at.Sub(time.Unix(0, st)))
		}
	}
	cl.met.Received(kind)
	judged, fromPeer := cl.or.CheckLive(p.S.ID, p.call.Cons.ID, payload, at)
	if judged {
		p.live.Add(1)
	}
	if fromPeer {
		if kind == models.Video {
			p.fromPeerV.Add(1)
		} else {
			p.fromPeerA.Add(1)
		}
	}
}

// Offer is a prepared request's local half: the peer it is for and its SDP.
type Offer struct {
	peer *driver.Peer
	sdp  string
}

// PrepareJoin makes p a new peer whose received frames go to the oracle and
// its audio offer. The new peer replaces p's previous one at once (a
// rejoin), so ClosePeers finds it whatever happens next.
func (p *Participant) PrepareJoin(ctx context.Context) (Offer, error) {
	cl := p.call.cl
	if cl.media == nil {
		return Offer{}, ErrNoMedia
	}
	peer, err := cl.media.NewPeer(p.onFrame)
	if err != nil {
		return Offer{}, fmt.Errorf("new peer for %s: %w", p.S.ID, err)
	}
	if prev := p.peer.Swap(peer); prev != nil {
		prev.Close()
	}
	p.video.Store(false)
	sdp, err := peer.OfferAudio(ctx)
	if err != nil {
		return Offer{}, fmt.Errorf("audio offer for %s: %w", p.S.ID, err)
	}
	return Offer{peer: peer, sdp: sdp}, nil
}

// FireJoin sends the join (under the retry policy) and accepts its answer.
func (p *Participant) FireJoin(ctx context.Context, o Offer) error {
	c := p.call
	cl := c.cl
	cid := c.Cons.ID
	c.mu.Lock()
	c.joined = true
	c.mu.Unlock()
	p.joinStart.CompareAndSwap(0, time.Now().UnixNano())
	cl.hooks.Event(Event{Kind: EventJoining, User: p.S.ID, Consultation: cid})
	var answer string
	var seg int
	err := cl.hooks.Retry(ctx, func() error {
		var err error
		answer, seg, err = cl.target.Join(ctx, p.S, cid, o.sdp)
		return err
	})
	if err != nil {
		return fmt.Errorf("join %s as %s: %w", cid, p.S.ID, err)
	}
	if err := o.peer.Accept(answer); err != nil {
		return fmt.Errorf("accept join answer for %s: %w", p.S.ID, err)
	}
	p.segment.Store(int64(seg))
	cl.hooks.Event(Event{Kind: EventJoined, User: p.S.ID, Consultation: cid, Segment: seg})
	return nil
}

// Join is PrepareJoin then FireJoin.
func (p *Participant) Join(ctx context.Context) error {
	o, err := p.PrepareJoin(ctx)
	if err != nil {
		return err
	}
	return p.FireJoin(ctx, o)
}

// WaitConnected waits (at most ConnectTimeout) until p's media is connected.
func (p *Participant) WaitConnected(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	if err := p.waitConnected(cctx); err != nil {
		return err
	}
	p.call.started()
	return nil
}

func (p *Participant) waitConnected(ctx context.Context) error {
	peer := p.peer.Load()
	if peer == nil {
		return fmt.Errorf("connect %s to %s: %w", p.S.ID, p.call.Cons.ID, ErrNoPeer)
	}
	if err := peer.WaitConnected(ctx); err != nil {
		return fmt.Errorf("connect %s to %s: %w", p.S.ID, p.call.Cons.ID, err)
	}
	p.connected.Store(true)
	return nil
}

// started marks the call's media as started (the first time only).
func (c *Call) started() {
	c.mu.Lock()
	if c.startedAt.IsZero() {
		c.startedAt = time.Now()
	}
	c.mu.Unlock()
}

// Connect joins every participant of ps at once (as two people would) and
// waits until their media is connected; afterJoin (may be nil) runs between
// the answers and the wait. A failure is joined again with new peers while
// Hooks.Reconnect says so (a fault explains it).
func (c *Call) Connect(ctx context.Context, ps []*Participant, afterJoin func()) error {
	for attempt := 0; ; attempt++ {
		err := joinAll(ctx, ps)
		if err == nil {
			if afterJoin != nil {
				afterJoin()
				afterJoin = nil
			}
			// One deadline for all: two people connect at the same time.
			cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
			for _, p := range ps {
				if err = p.waitConnected(cctx); err != nil {
					break
				}
			}
			cancel()
		}
		if err == nil {
			c.started()
			return nil
		}
		for _, p := range ps {
			p.closePeer()
		}
		if !c.cl.hooks.Reconnect(ctx, attempt, err) {
			return err
		}
	}
}

func joinAll(ctx context.Context, ps []*Participant) error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Join(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Rejoin drops the peers of ps and connects them again with new ones (a new
// segment of the recording); those that had switched switch again.
func (c *Call) Rejoin(ctx context.Context, ps []*Participant) error {
	video := make([]bool, len(ps))
	for i, p := range ps {
		video[i] = p.Video()
		p.closePeer()
	}
	if err := c.Connect(ctx, ps, nil); err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	var again []*Participant
	for i, p := range ps {
		if video[i] {
			again = append(again, p)
		}
	}
	if len(again) > 0 {
		c.Switch(ctx, again, false)
	}
	return nil
}

// PrepareSwitch makes p's video re-offer.
func (p *Participant) PrepareSwitch(ctx context.Context) (Offer, error) {
	peer := p.peer.Load()
	if peer == nil {
		return Offer{}, fmt.Errorf("switch %s as %s: %w", p.call.Cons.ID, p.S.ID, ErrNoPeer)
	}
	sdp, err := peer.OfferVideo(ctx)
	if err != nil {
		return Offer{}, fmt.Errorf("video offer for %s: %w", p.S.ID, err)
	}
	return Offer{peer: peer, sdp: sdp}, nil
}

// FireSwitch sends the re-offer and accepts its answer; p then sends video.
// double sends the re-offer twice (a double tap: the second answer is
// discarded, as the app has moved on; its failure is only noted).
func (p *Participant) FireSwitch(ctx context.Context, o Offer, double bool) error {
	cl := p.call.cl
	cid := p.call.Cons.ID
	answer, err := cl.target.SwitchVideo(ctx, p.S, cid, o.sdp)
	if err != nil {
		return fmt.Errorf("switch %s as %s: %w", cid, p.S.ID, err)
	}
	if double {
		if _, derr := cl.target.SwitchVideo(ctx, p.S, cid, o.sdp); derr != nil {
			cl.hooks.NoteErr(p.S.ID, "double switch", fmt.Errorf("second switch %s as %s: %w", cid, p.S.ID, derr))
		}
	}
	if err := o.peer.Accept(answer); err != nil {
		return fmt.Errorf("accept switch answer for %s: %w", p.S.ID, err)
	}
	p.video.Store(true)
	return nil
}

// Switch switches the participants of ps to video, one after the other (the
// reference harness switches both so that each sees the other's video);
// double makes the first a double tap. A failed switch is noted, not
// returned: the call goes on in audio. It reports whether all switched.
func (c *Call) Switch(ctx context.Context, ps []*Participant, double bool) bool {
	if len(ps) == 0 {
		return true
	}
	h := c.cl.hooks
	h.Event(Event{Kind: EventSwitching, User: ps[0].S.ID, Consultation: c.Cons.ID})
	ok := true
	for i, p := range ps {
		st := time.Now()
		o, err := p.PrepareSwitch(ctx)
		if err == nil {
			err = p.FireSwitch(ctx, o, double && i == 0)
		}
		if err != nil {
			ok = false
			h.NoteErr(p.S.ID, "switch", err)
			continue
		}
		c.cl.met.Latency(LatencySwitch, time.Since(st))
	}
	if ok {
		h.Event(Event{Kind: EventSwitched, User: ps[0].S.ID, Consultation: c.Cons.ID})
	}
	return ok
}

// Send sends one watermarked frame of kind on p's peer (see SendBurst for
// waiting on a track not bound yet).
func (p *Participant) Send(kind models.Kind) error { return p.send(kind, time.Time{}) }

// send sends one frame, retrying a transport not ready yet until deadline.
func (p *Participant) send(kind models.Kind, deadline time.Time) error {
	peer := p.peer.Load()
	if peer == nil {
		return ErrNoPeer
	}
	c := p.call
	p.mu.Lock()
	defer p.mu.Unlock()
	var frame []byte
	write := peer.SendAudio
	if kind == models.Video {
		p.seqV++
		frame = models.VideoFrame(models.Tag{Consultation: c.ctag, Sender: p.tag, Seq: p.seqV}, VideoFrameSize)
		write = peer.SendVideo
	} else {
		p.seqA++
		frame = models.AudioFrame(models.Tag{Consultation: c.ctag, Sender: p.tag, Seq: p.seqA}, AudioFrameSize)
	}
	for {
		err := write(frame)
		if err == nil {
			break
		}
		if !errors.Is(err, driver.ErrNotReady) || !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
	down := c.cl.hooks.TargetDown()
	if kind == models.Video {
		p.sentV++
		if down {
			p.downV++
		}
	} else {
		p.sentA++
		if down {
			p.downA++
		}
	}
	c.pending.Store(true)
	c.cl.met.Sent(kind)
	return nil
}

// SendBurst sends n frames of kind at once (a trace's send op), waiting a
// little (NotReadyWait) for a just-negotiated track, then SettleTime for
// them to reach the target's recorder.
func (p *Participant) SendBurst(kind models.Kind, n int) error {
	deadline := time.Now().Add(NotReadyWait)
	for range n {
		if err := p.send(kind, deadline); err != nil {
			return err
		}
	}
	time.Sleep(SettleTime)
	return nil
}

// StepsDue returns how many 20 ms media steps are due el into a call of
// which n were sent: the clock, not the ticks received, paces (a loaded
// machine delays ticks), and catching up sends at most MaxBurst at once.
func StepsDue(el time.Duration, n int) int {
	return min(int(el/AudioInterval)+1, n+MaxBurst)
}

// SendStep sends media step n of every participant of ps: an audio frame,
// and a video frame on the steps that keep video at VideoPerSecond for those
// that switched. It returns the frames sent; a frame the peer refused is
// simply not sent (a real app does not queue stale media).
func (c *Call) SendStep(ps []*Participant, n int) int {
	video := (n+1)*VideoPerSecond/AudioPerSecond != n*VideoPerSecond/AudioPerSecond
	sent := 0
	for _, p := range ps {
		if p.Send(models.Audio) == nil {
			sent++
		}
		if video && p.Video() && p.Send(models.Video) == nil {
			sent++
		}
	}
	return sent
}

// ClosePeers closes every participant's peer (the target's side of the call
// is gone: an end, a crash). Frames in flight on them are no longer pending.
func (c *Call) ClosePeers() {
	ps := c.participants()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.closePeer() }()
	}
	wg.Wait()
	c.pending.Store(false)
}

// JudgeLive counts, for live-media-isolation, each participant whose media
// ever connected as judged if it received a live frame the oracle could
// judge, else as not judged: a target that forwards nothing (or nothing
// readable) has not shown that it forwards only the right frames. Only the
// first call counts.
func (c *Call) JudgeLive(ctx context.Context) {
	c.mu.Lock()
	done := c.liveJudged
	c.liveJudged = true
	c.mu.Unlock()
	if done {
		return
	}
	for _, p := range c.participants() {
		if !p.connected.Load() {
			continue
		}
		if p.live.Load() > 0 {
			c.cl.or.Judged(oracle.LiveMediaIsolation, 1)
			continue
		}
		c.cl.notJudged(ctx, oracle.LiveMediaIsolation, fmt.Errorf("%w: %s received no watermarked live frame during connected call %s", ErrNoLiveMedia, p.S.ID, c.Cons.ID))
	}
}

// LiveNotConnected counts live-media-isolation as not judged for every
// participant of a call whose media never connected (err says why).
func (c *Call) LiveNotConnected(ctx context.Context, err error) {
	c.mu.Lock()
	c.liveJudged = true
	c.mu.Unlock()
	for range c.participants() {
		c.cl.notJudged(ctx, oracle.LiveMediaIsolation, fmt.Errorf("%w: %w", ErrNotConnected, err))
	}
}
