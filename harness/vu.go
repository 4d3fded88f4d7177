package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"telechaos/harness/chaos"
	"telechaos/harness/driver"
	"telechaos/harness/oracle"
	"telechaos/models"
)

// The smallest bodies that can be a recording: one Ogg page header, the IVF
// file header.
const (
	oggPageHeader = 27
	ivfFileHeader = 32
)

// Media pacing and frame sizes (docs/design.md section 5): Opus-like audio at 50 frames/s,
// VP8-like video at 15 frames/s, both on one 20 ms ticker per call.
const (
	audioInterval  = 20 * time.Millisecond
	videoPerSecond = 15
	audioPerSecond = 50
	audioFrameSize = 60
	videoFrameSize = 800
	connectTimeout = 15 * time.Second
	maxBurst       = 5 // frames per participant sent at once to catch up
	// drain lets frames in flight reach the target before end, so the
	// acknowledged counts are close to what was sent.
	drain = 150 * time.Millisecond
)

// planSeed derives patient i's PRNG from the run seed: the seed and the scenario
// fix every decision, whatever the order in which patients run.
func planSeed(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x7e1ec4a05^uint64(i)))
}

// patient runs the i-th patient's whole lifecycle. It never returns an error:
// failures are counted, and what was checked before them stays checked.
func (r *run) patient(ctx context.Context, i int) {
	rng := planSeed(r.seed, i)
	plan := r.beh.Draw(rng)
	probePick := rng.Uint64()
	var crng *rand.Rand // client faults draw here, never from the plan's stream
	if r.chaos != nil {
		crng = chaosSeed(r.seed, i)
	}
	errored := false
	defer func() {
		if errored && r.chaos != nil {
			r.chaos.cnt.usersErrored.Add(1)
		}
	}()

	r.met.UsersActive.Inc()
	r.cnt.usersActive.Add(1)
	defer func() {
		r.met.UsersActive.Dec()
		r.cnt.usersActive.Add(-1)
	}()
	r.cnt.patients.Add(1)

	fail := func(step string, err error) {
		r.cnt.callsFailed.Add(1)
		r.noteErr(step, err)
		errored = true
	}
	// Registering again after a lost answer leaves at most an unused user;
	// booking is not retried (a second appointment the ledger never saw).
	var ps driver.Session
	err := r.retry(ctx, func() error {
		var err error
		ps, err = r.target.Register(ctx, models.Patient)
		return err
	})
	if err != nil {
		fail("register patient", err)
		return
	}
	r.ledger.AddUser(ps.ID, models.Patient)
	defer r.or.ForgetUser(ps.ID)
	r.think(ctx, plan.Think)

	cl := r.clinicianFor(i)
	bk, err := r.target.Book(ctx, ps, cl.ID)
	if err != nil {
		fail("book", err)
		return
	}
	cons := models.Consultation{ID: bk.ConsultationID, AppointmentID: bk.AppointmentID, Patient: ps.ID, Clinician: cl.ID}
	if err := r.ledger.AddConsultation(cons); err != nil {
		fail("ledger", err)
		return
	}
	r.cnt.consultations.Add(1)
	r.think(ctx, plan.Think)

	var c *callOutcome
	if r.media != nil {
		c, err = r.mediaCall(ctx, plan, ps, cl, cons, crng)
	} else {
		c, err = r.apiCall(ctx, plan, ps, cons)
	}
	if err != nil {
		fail("call", err)
	}
	if c != nil && c.ended {
		r.settleRecording(cons, c)
	}
	// Even when interrupted, look once (no polling) at a recording that
	// ended: the checks that can still finish do.
	if plan.Replay {
		rid := ""
		if c != nil && c.ended {
			rid = c.recordingID
		}
		// Each round lists and fetches again (replay storms); the oracle
		// merges what the rounds delivered.
		for round := range max(plan.Replays, 1) {
			for _, viewer := range []driver.Session{ps, cl} {
				if round > 0 && r.interrupted() {
					break
				}
				if !r.replay(ctx, viewer, cons, rid, round == 0) {
					errored = true
				}
			}
		}
	}
	if plan.ProbeOther && !r.interrupted() {
		r.probe(ctx, ps, probePick)
	}
}

// callOutcome is what a call left behind.
type callOutcome struct {
	ended       bool
	endTried    bool
	abandoned   bool
	recordingID string
	startedAt   time.Time // media connected (media calls)
	endedAt     time.Time
	tracks      []driver.TrackInfo
	// ackLost: the end went through but its answer was lost to a fault (a
	// retry was told the consultation had ended); tracks is empty.
	ackLost bool
	// sent counts the frames each participant's client sent, per kind, over
	// every segment (media calls; nil for media-free calls).
	sent map[[2]string]int
	// sentDown counts those sent while the target was down (targetDown).
	sentDown map[[2]string]int
	// peerLive counts, per (owner, kind), the frames of owner's media the
	// other participant received live: sent minus it is the loss the
	// harness saw on the network path (media calls; nil otherwise).
	peerLive map[[2]string]int
}

// settleRecording binds the acknowledged recording and tells the oracle which
// frames the target acknowledged, then offers it to other users' probes.
func (r *run) settleRecording(cons models.Consultation, c *callOutcome) {
	if err := r.ledger.BindRecording(cons.ID, c.recordingID); err != nil {
		// The target gave one recording id to two consultations: evidence, but
		// the oracle judges content, so only note it.
		r.noteErr("bind recording", err)
	}
	ids := make([]string, 0, len(c.tracks))
	for _, t := range c.tracks {
		ids = append(ids, t.ID)
		r.cnt.framesAcked.Add(int64(t.Frames))
	}
	if c.sent == nil {
		acked := make([]oracle.AckedTrack, 0, len(c.tracks))
		for _, t := range c.tracks {
			acked = append(acked, oracle.AckedTrack{Owner: t.Owner, Kind: t.Kind, Segment: t.Segment, Frames: t.Frames})
		}
		r.or.ExpectRecording(cons.ID, c.recordingID, acked, c.endedAt)
	} else {
		r.or.ExpectTracks(cons.ID, c.recordingID, r.trackExpects(cons, c), c.endedAt)
	}
	r.pool.add(probeTarget{recording: c.recordingID, consultation: cons.ID, patient: cons.Patient, clinician: cons.Clinician, tracks: ids})
}

// trackExpects states what each participant's media must amount to: what the
// target acknowledged and what the client sent, less what the baseline and
// the faults that reached the call explain.
func (r *run) trackExpects(cons models.Consultation, c *callOutcome) []oracle.TrackExpect {
	acked := map[[2]string]int{}
	for _, t := range c.tracks {
		acked[[2]string{t.Owner, t.Kind}] += t.Frames
	}
	var out []oracle.TrackExpect
	for _, owner := range []string{cons.Patient, cons.Clinician} {
		for _, kind := range []models.Kind{models.Audio, models.Video} {
			k := [2]string{owner, string(kind)}
			sent, a := c.sent[k], acked[k]
			if c.ackLost {
				a = -1
			}
			if sent == 0 && a <= 0 {
				continue
			}
			allowed, why := r.allowance(sent, c.sentDown[k], c.startedAt, c.endedAt)
			allowed, why = pathAllowance(sent, c.peerLive, k, allowed, why)
			out = append(out, oracle.TrackExpect{Owner: owner, Kind: string(kind), Acked: a, Sent: sent, Allowed: allowed, Why: why})
		}
	}
	return out
}

// maxPathShare bounds the loss the live path may explain, as a share of
// the frames sent: beyond it the path is not lossy, it is broken, and the
// target's recording is judged by the faults alone.
const maxPathShare = 0.25

// pathAllowance widens a track's allowance to the loss the harness itself
// measured on the network path: frames of owner's media that the other
// participant never received live were lost before or after the target, by
// the machine or the network, and a recording that lacks them has not lost
// what it was given. A loaded machine drops UDP the fault rules cannot
// foresee (3-5% of audio under chaos at full load, measured). What was
// forwarded live yet is missing from the recording stays judged: that is the
// lost-on-crash class. Only tracks judged against what was sent change.
func pathAllowance(sent int, peerLive map[[2]string]int, k [2]string, allowed int, why string) (int, string) {
	live, ok := peerLive[k]
	if !ok || allowed >= sent {
		return allowed, why
	}
	lost := min(sent-live, int(maxPathShare*float64(sent)))
	if lost <= 0 {
		return allowed, why
	}
	if path := chaos.BaselineAllowed(sent) + lost; path > allowed {
		return min(path, sent), fmt.Sprintf("%s; the live path lost %d of %d (the peer received %d)", why, sent-live, sent, live)
	}
	return allowed, why
}

// apiCall is the media-free call: the contract has no join without an SDP offer,
// so the consultation is booked and ended without anyone joining. The target
// still finalises (an empty) recording, which is listed, fetched and probed like
// any other; live isolation and frame-level durability are not exercised.
func (r *run) apiCall(ctx context.Context, plan models.Plan, ps driver.Session, cons models.Consultation) (*callOutcome, error) {
	out := &callOutcome{}
	if plan.Abandon {
		out.abandoned = true
		r.cnt.callsAbandoned.Add(1)
		return out, nil
	}
	if err := r.sleep(ctx, min(plan.CallLength, 200*time.Millisecond)); err != nil {
		return out, err
	}
	return r.end(ctx, ps, cons, out)
}

func (r *run) end(ctx context.Context, s driver.Session, cons models.Consultation, out *callOutcome) (*callOutcome, error) {
	out.endTried = true
	r.event(EventEnding, cons.Patient, cons.ID, "")
	r.chaosEvent(chaos.EventEnd)
	var res driver.EndResult
	tries := 0
	err := r.retry(ctx, func() error {
		tries++
		var err error
		res, err = r.target.End(ctx, s, cons.ID)
		return err
	})
	if err != nil && tries > 1 && driver.StatusCode(err) == 409 {
		// A retried end told "already ended": the first went through and a
		// fault lost its answer. The recording is still owed, with nothing
		// acknowledged to compare with but the frames sent.
		if ci, cerr := r.target.Consultation(ctx, s, cons.ID); cerr == nil && ci.RecordingID != "" {
			res, err = driver.EndResult{ConsultationID: cons.ID, RecordingID: ci.RecordingID}, nil
			out.ackLost = true
			r.chaos.cnt.endAckLost.Add(1)
		}
	}
	if err != nil {
		return out, fmt.Errorf("end %s: %w", cons.ID, err)
	}
	if res.RecordingID == "" {
		return out, fmt.Errorf("end %s: %w: no recording id", cons.ID, driver.ErrGarbage)
	}
	out.ended, out.recordingID, out.tracks, out.endedAt = true, res.RecordingID, res.Tracks, time.Now()
	r.cnt.callsEnded.Add(1)
	r.hit(chaos.PathEnd)
	r.event(EventEnded, cons.Patient, cons.ID, res.RecordingID)
	return out, nil
}

// participant is one side of a media call.
type participant struct {
	s         driver.Session
	peer      *driver.Peer
	tag       uint64
	joinStart atomic.Int64 // unix nanos of the join request
	gotFirst  atomic.Bool
	live      atomic.Int64 // live frames received and judged, every segment
	// fromPeerA and fromPeerV count the live frames received from the other
	// participant, per kind: what the live path delivered of its media.
	fromPeerA, fromPeerV atomic.Int64
	video                atomic.Bool // switched: send video too
	seqA                 uint32
	seqV                 uint32
	sentA                int // frames the client sent, every segment
	sentV                int
	downA                int // of those, sent while the target was down
	downV                int
	segment              int // last segment the target gave
}

// mediaCall joins both participants with real WebRTC peers, paces watermarked
// frames from one ticker, switches to video when the plan says so and ends (or
// abandons) the call. Under chaos it also acts out the client faults drawn
// from crng and has both participants rejoin with new peers when the clinic
// restarts.
func (r *run) mediaCall(ctx context.Context, plan models.Plan, ps, cs driver.Session, cons models.Consultation, crng *rand.Rand) (_ *callOutcome, err error) {
	out := &callOutcome{}
	ctag := models.TagOf(cons.ID)
	parts := [2]*participant{{s: ps, tag: models.TagOf(ps.ID)}, {s: cs, tag: models.TagOf(cs.ID)}}
	// Frames sent are what the recording owes (settleRecording); counted
	// whether the call ends well or fails, since a failed call is still ended.
	defer func() {
		out.sent, out.sentDown, out.peerLive = map[[2]string]int{}, map[[2]string]int{}, map[[2]string]int{}
		for i, p := range parts {
			peer := parts[1-i]
			out.peerLive[[2]string{p.s.ID, string(models.Audio)}] += int(peer.fromPeerA.Load())
			out.peerLive[[2]string{p.s.ID, string(models.Video)}] += int(peer.fromPeerV.Load())
			out.sent[[2]string{p.s.ID, string(models.Audio)}] += p.sentA
			out.sent[[2]string{p.s.ID, string(models.Video)}] += p.sentV
			out.sentDown[[2]string{p.s.ID, string(models.Audio)}] += p.downA
			out.sentDown[[2]string{p.s.ID, string(models.Video)}] += p.downV
		}
	}()
	defer func() {
		// A call that failed (a join refused, media that never connected) is
		// still ended, best effort, so the target does not keep it open and its
		// recording is judged like any other.
		if err != nil && !out.endTried && ctx.Err() == nil {
			ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if _, endErr := r.end(ectx, ps, cons, out); endErr != nil {
				r.noteErr("end after failure", endErr)
			}
		}
	}()
	defer func() {
		for _, p := range parts {
			if p.peer != nil {
				p.peer.Close()
			}
		}
	}()
	var switchWG sync.WaitGroup
	defer switchWG.Wait() // before the peers close (deferred after: runs first)
	switched := false
	// switch-during-ice: the re-offer goes out right after join's answer,
	// before the connection is up.
	duringICE := func() {
		if plan.SwitchVideo && r.decide(chaos.SwitchDuringICE, crng) {
			switched = true
			r.switchVideo(ctx, parts[:], cons.ID, false)
		}
	}
	if err := r.connect(ctx, parts[:], cons.ID, duringICE); err != nil {
		for range parts {
			r.notJudged(ctx, oracle.LiveMediaIsolation, fmt.Errorf("%w: %w", errNotConnected, err))
		}
		return out, err
	}
	defer r.judgeLive(ctx, parts[:], cons.ID)
	r.cnt.callsConnected.Add(1)
	r.event(EventConnected, ps.ID, cons.ID, "")
	r.met.CallsActive.Inc()
	r.cnt.callsActive.Add(1)
	defer func() {
		r.met.CallsActive.Dec()
		r.cnt.callsActive.Add(-1)
	}()

	start := time.Now()
	out.startedAt = start
	tick := time.NewTicker(audioInterval)
	defer tick.Stop()
	var sent int64
	defer func() {
		if out.ended {
			r.cnt.framesSentEnded.Add(sent)
		}
	}()
	restartC := r.restartSignal()
	restarted := "" // the clinic fault the call survived
	// reconnect: the patient's app drops its connection once, somewhere in
	// the middle of the call, and joins again with a new one.
	reconnectAt := time.Duration(-1)
	if r.chaos != nil {
		at := plan.CallLength * time.Duration(25+crng.IntN(50)) / 100
		if r.decide(chaos.Reconnect, crng) {
			reconnectAt = at
		}
	}
	// rejoin replaces the peers of ps and skips the frames due meanwhile
	// (a real app does not send what it could not capture while away).
	rejoin := func(who []*participant) error {
		switchWG.Wait()
		if err := r.rejoin(ctx, who, cons.ID); err != nil {
			return err
		}
		return nil
	}
	n := 0 // frames due so far, per participant, in 20 ms steps
loop:
	for {
		el := time.Since(start)
		if el >= plan.CallLength {
			break
		}
		if reconnectAt >= 0 && el >= reconnectAt {
			reconnectAt = -1
			if err := rejoin(parts[:1]); err != nil {
				return out, err
			}
			n = int(time.Since(start) / audioInterval)
			continue
		}
		if plan.SwitchVideo && !switched && el >= plan.SwitchAt {
			switched = true
			double := r.decide(chaos.DoubleSwitch, crng)
			switchWG.Add(1)
			go func() {
				defer switchWG.Done()
				r.switchVideo(ctx, parts[:], cons.ID, double)
			}()
		}
		// Pace by the clock, not by ticks received: a loaded machine delays
		// ticks, and catching up (a few frames at a time) keeps the rates.
		due := min(int(el/audioInterval)+1, n+maxBurst)
		down := r.targetDown()
		for ; n < due; n++ {
			sendVideo := (n+1)*videoPerSecond/audioPerSecond != n*videoPerSecond/audioPerSecond
			for _, p := range parts {
				p.seqA++
				if p.peer.SendAudio(models.AudioFrame(models.Tag{Consultation: ctag, Sender: p.tag, Seq: p.seqA}, audioFrameSize)) == nil {
					r.met.Sent(models.Audio)
					r.cnt.framesSent.Add(1)
					p.sentA++
					if down {
						p.downA++
					}
					sent++
				}
				if sendVideo && p.video.Load() {
					p.seqV++
					if p.peer.SendVideo(models.VideoFrame(models.Tag{Consultation: ctag, Sender: p.tag, Seq: p.seqV}, videoFrameSize)) == nil {
						r.met.Sent(models.Video)
						r.cnt.framesSent.Add(1)
						p.sentV++
						if down {
							p.downV++
						}
						sent++
					}
				}
			}
		}
		select {
		case <-tick.C:
		case <-restartC:
			// The clinic restarted: these peers talk to nobody. Both join
			// again with new PeerConnections, as real apps do.
			restarted = r.lastRestart()
			if err := rejoin(parts[:]); err != nil {
				return out, err
			}
			r.hitAfter(chaos.PathRejoin, restarted)
			restartC = r.restartSignal()
			n = int(time.Since(start) / audioInterval)
		case <-ctx.Done():
			return out, ctx.Err()
		case <-r.stopping:
			// Interrupted: end the call now so its recording can still be checked.
			plan.Abandon = false
			break loop
		}
	}
	switchWG.Wait()
	if plan.Abandon || (!r.interrupted() && r.decide(chaos.Abandon, crng)) {
		out.abandoned = true
		r.cnt.callsAbandoned.Add(1)
		r.hit(chaos.PathAbandon)
		return out, nil
	}
	if err := r.sleep(ctx, drain); err != nil {
		return out, err
	}
	// switch-racing-end: the switch and the end go out together.
	if plan.SwitchVideo && !switched && r.decide(chaos.SwitchRacingEnd, crng) {
		switched = true
		switchWG.Add(1)
		go func() {
			defer switchWG.Done()
			r.switchVideo(ctx, parts[:], cons.ID, false)
		}()
	}
	if _, err := r.end(ctx, ps, cons, out); err != nil {
		return out, err
	}
	if restarted != "" {
		r.hitAfter(chaos.PathRecovery, restarted)
	}
	// retry: the app sends end again (it never saw the answer); the target
	// must say it has ended, and nothing else may change.
	if r.decide(chaos.Retry, crng) {
		r.hit(chaos.PathRetry)
		if _, err := r.target.End(ctx, ps, cons.ID); err == nil || driver.StatusCode(err) != 409 {
			r.noteErr("retried end", fmt.Errorf("end %s again: want 409 already ended, got %v", cons.ID, err))
		}
	}
	return out, nil
}

// judgeLive counts, for live-media-isolation, each participant of a
// connected call as judged if it received a live frame the oracle could
// judge, else as not judged: a target that forwards nothing (or nothing
// readable) has not shown that it forwards only the right frames.
func (r *run) judgeLive(ctx context.Context, ps []*participant, cid string) {
	for _, p := range ps {
		if p.live.Load() > 0 {
			r.or.Judged(oracle.LiveMediaIsolation, 1)
			continue
		}
		r.notJudged(ctx, oracle.LiveMediaIsolation, fmt.Errorf("%w: %s received no watermarked live frame during connected call %s", errNoLiveMedia, p.s.ID, cid))
	}
}

// connect joins every participant of ps at once (as two people would) and
// waits until their media is connected; afterJoin (may be nil) runs between
// the answers and the wait. Under chaos a failure a fault explains (the
// clinic restarting under the join, ICE cut) is retried with new peers.
func (r *run) connect(ctx context.Context, ps []*participant, cid string, afterJoin func()) error {
	for attempt := 0; ; attempt++ {
		err := r.joinAll(ctx, ps, cid)
		if err == nil {
			if afterJoin != nil {
				afterJoin()
				afterJoin = nil
			}
			cctx, cancel := context.WithTimeout(ctx, connectTimeout)
			for _, p := range ps {
				if werr := p.peer.WaitConnected(cctx); werr != nil {
					err = fmt.Errorf("connect %s to %s: %w", p.s.ID, cid, werr)
					break
				}
			}
			cancel()
		}
		if err == nil {
			return nil
		}
		if r.chaos == nil || attempt >= 2 || ctx.Err() != nil || r.interrupted() {
			return err
		}
		r.noteErr("connect (retrying)", err)
		r.chaos.cnt.retries.Add(1)
		for _, p := range ps {
			if p.peer != nil {
				p.peer.Close()
				p.peer = nil
			}
			p.video.Store(false)
		}
		r.waitUp(ctx, 15*time.Second)
	}
}

// joinAll joins every participant of ps concurrently.
func (r *run) joinAll(ctx context.Context, ps []*participant, cid string) error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.join(ctx, p, cid)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rejoin drops the peers of ps and joins again with new ones (a new segment
// of the recording); participants that had switched switch again.
func (r *run) rejoin(ctx context.Context, ps []*participant, cid string) error {
	video := make([]bool, len(ps))
	for i, p := range ps {
		video[i] = p.video.Load()
		p.video.Store(false)
		if p.peer != nil {
			p.peer.Close()
			p.peer = nil
		}
	}
	if r.chaos != nil {
		r.chaos.cnt.rejoins.Add(1)
	}
	if err := r.connect(ctx, ps, cid, nil); err != nil {
		if r.chaos != nil {
			r.chaos.cnt.rejoinFailed.Add(1)
		}
		return fmt.Errorf("rejoin: %w", err)
	}
	var again []*participant
	for i, p := range ps {
		if video[i] {
			again = append(again, p)
		}
	}
	if len(again) > 0 {
		r.switchVideo(ctx, again, cid, false)
	}
	return nil
}

// join makes p's peer, offers audio and accepts the answer (the request is
// retried under chaos while a fault explains its failure).
func (r *run) join(ctx context.Context, p *participant, cid string) error {
	viewer := p.s.ID
	peer, err := r.media.NewPeer(func(kind models.Kind, payload []byte, at time.Time) {
		if p.gotFirst.CompareAndSwap(false, true) {
			if st := p.joinStart.Load(); st != 0 {
				r.met.Latency(LatJoin, at.Sub(time.Unix(0, st)))
			}
		}
		r.met.Received(kind)
		r.cnt.framesReceived.Add(1)
		judged, fromPeer := r.or.CheckLive(viewer, cid, payload, at)
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
	})
	if err != nil {
		return fmt.Errorf("new peer for %s: %w", viewer, err)
	}
	p.peer = peer
	offer, err := peer.OfferAudio(ctx)
	if err != nil {
		return fmt.Errorf("audio offer for %s: %w", viewer, err)
	}
	p.joinStart.CompareAndSwap(0, time.Now().UnixNano())
	r.chaosEvent(chaos.EventJoin)
	var answer string
	var seg int
	err = r.retry(ctx, func() error {
		var err error
		answer, seg, err = r.target.Join(ctx, p.s, cid, offer)
		return err
	})
	if err != nil {
		return fmt.Errorf("join %s as %s: %w", cid, viewer, err)
	}
	if err := peer.Accept(answer); err != nil {
		return fmt.Errorf("accept join answer for %s: %w", viewer, err)
	}
	p.segment = seg
	r.hit(chaos.PathJoin)
	if seg > 1 {
		r.hit(chaos.PathRejoin)
	}
	return nil
}

// switchVideo re-offers on the participants' peers, one after the other (the
// reference harness switches both so that each sees the other's video).
// double sends the first participant's re-offer twice (a double tap; the
// second answer is discarded, as the app has moved on).
func (r *run) switchVideo(ctx context.Context, parts []*participant, cid string, double bool) {
	r.event(EventSwitching, parts[0].s.ID, cid, "")
	r.chaosEvent(chaos.EventSwitch)
	ok := true
	for i, p := range parts {
		st := time.Now()
		offer, err := p.peer.OfferVideo(ctx)
		if err == nil {
			var answer string
			answer, err = r.target.SwitchVideo(ctx, p.s, cid, offer)
			if err == nil && double && i == 0 {
				if _, derr := r.target.SwitchVideo(ctx, p.s, cid, offer); derr != nil {
					r.noteErr("double switch", fmt.Errorf("second switch %s as %s: %w", cid, p.s.ID, derr))
				}
			}
			if err == nil {
				err = p.peer.Accept(answer)
			}
		}
		if err != nil {
			ok = false
			r.noteErr("switch", fmt.Errorf("switch %s as %s: %w", cid, p.s.ID, err))
			continue
		}
		r.met.Latency(LatSwitch, time.Since(st))
		p.video.Store(true)
	}
	if ok {
		r.cnt.switches.Add(1)
		r.hit(chaos.PathSwitch)
		r.event(EventSwitched, parts[0].s.ID, cid, "")
	}
}

// replay is one participant's look at the recording after the call: list (and
// check) the replays, poll until the recording is listed or the settle time runs
// out, then fetch its metadata and every track and report what was delivered.
// It returns false if a step failed (the look is then incomplete).
func (r *run) replay(ctx context.Context, s driver.Session, cons models.Consultation, rid string, poll bool) bool {
	deadline := time.Now().Add(r.settle)
	if !poll {
		deadline = time.Now()
	}
	wait := 100 * time.Millisecond
	listed := false
	readable := false                  // some list of this look came back readable
	var listErr error                  // the first list failure of this look
	var offered []driver.ReplaySummary // the last list the target answered
	for {
		var items []driver.ReplaySummary
		err := r.retry(ctx, func() error { // under chaos: across an outage
			var err error
			items, err = r.target.ListReplays(ctx, s)
			return err
		})
		if err == nil {
			readable = true
			r.cnt.replaysListed.Add(1)
			li := make([]oracle.ListItem, len(items))
			for k, it := range items {
				li[k] = oracle.ListItem{RecordingID: it.ID, ConsultationID: it.ConsultationID, Participants: it.Participants}
				if rid != "" && it.ID == rid {
					listed = true
				}
			}
			r.or.CheckList(s.ID, li, time.Now())
			offered = items
		} else {
			r.noteErr("list", err)
			r.notJudged(ctx, oracle.ReplayListOwnership, err)
			if listErr == nil {
				listErr = err
			}
		}
		if rid == "" || listed || r.interrupted() || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			break
		}
		if r.sleep(ctx, wait) != nil {
			break
		}
		wait = min(wait*2, time.Second)
	}
	r.openOffered(ctx, s, offered)
	if rid == "" {
		return true
	}
	if !listed {
		switch {
		case r.stoppedByUs(ctx):
		case readable:
			// Lists came back and none offered the recording: that is what
			// the durability check judges.
			r.or.Delivered(s.ID, cons.ID, false, nil, time.Now())
		default:
			// No readable list ever came back: nothing was seen, so nothing
			// can be judged missing. Say so instead of calling it a loss.
			r.lookFailed(ctx, s.ID, cons, "no readable replay list", listErr)
			return false
		}
		return true
	}
	var rep driver.Replay
	err := r.retry(ctx, func() error {
		var err error
		rep, err = r.target.GetReplay(ctx, s, rid)
		return err
	})
	if err != nil {
		r.noteErr("replay", err)
		r.notJudged(ctx, oracle.ReplayContentOwnership, err)
		r.lookFailed(ctx, s.ID, cons, "replay metadata unreadable", err)
		return false
	}
	r.cnt.replaysFetched.Add(1)
	meta := oracle.ReplayMeta{ID: rep.ID, ConsultationID: rep.ConsultationID, Participants: rep.Participants}
	for _, t := range rep.Tracks {
		meta.Tracks = append(meta.Tracks, oracle.TrackMeta{ID: t.ID, Owner: t.Owner, Kind: t.Kind, Segment: t.Segment, Frames: t.Frames})
	}
	r.or.CheckReplay(s.ID, meta, time.Now())
	r.event(EventFetching, s.ID, cons.ID, rid)
	r.chaosEvent(chaos.EventFetch)

	ctag := models.TagOf(cons.ID)
	var senders map[uint64]string
	var tagged map[[2]string]int // nil: no frames (no tracks) to report
	if len(rep.Tracks) > 0 {
		senders = map[uint64]string{models.TagOf(cons.Patient): cons.Patient, models.TagOf(cons.Clinician): cons.Clinician}
		tagged = map[[2]string]int{}
	}
	complete := true
	for _, t := range rep.Tracks {
		err := r.fetchTrack(ctx, s, rid, t, true, func(frames [][]byte) {
			r.cnt.tracksFetched.Add(1)
			st := r.or.CheckFrames(s.ID, rid, t.ID, frames, time.Now())
			r.met.FramesChecked.Add(float64(st.Frames))
			for _, f := range frames {
				tag, _, err := models.FindTag(f)
				if err != nil || tag.Consultation != ctag {
					continue
				}
				if who, ok := senders[tag.Sender]; ok {
					tagged[[2]string{who, string(tag.Kind)}]++
				}
			}
		}, func(frames [][]byte) {
			st := r.or.CheckPartialFrames(s.ID, rid, t.ID, frames, time.Now())
			r.met.FramesChecked.Add(float64(st.Frames))
		})
		if err != nil {
			complete = false
			r.noteErr("media", err)
			r.notJudged(ctx, oracle.ReplayContentOwnership, err)
			r.lookFailed(ctx, s.ID, cons, "track "+t.ID+" unreadable", err)
		}
	}
	if complete {
		r.hit(chaos.PathFetch)
		r.or.Delivered(s.ID, cons.ID, true, tagged, time.Now())
	}
	return complete
}

// fetchTrack fetches track t of replay rid as s (retried under chaos when
// retry) and hands its frames to check. A 2xx answer whose bytes are not the
// container t names is a failed request (error_rate) and an error wrapping
// errUnreadableTrack; the frames read before the bad bytes go to partial.
func (r *run) fetchTrack(ctx context.Context, s driver.Session, rid string, t driver.TrackInfo, retry bool, check, partial func(frames [][]byte)) error {
	var b []byte
	fetch := func() error {
		var err error
		b, err = r.target.FetchMedia(ctx, s, rid, t.ID)
		return err
	}
	var err error
	if retry {
		err = r.retry(ctx, fetch)
	} else {
		err = fetch()
	}
	if err != nil {
		return err
	}
	frames, err := readTrack(t, b)
	if err != nil {
		r.answerUnreadable()
		if len(frames) > 0 && partial != nil {
			// What came before the corruption is still judged: a target
			// cannot hide a foreign frame by breaking the bytes after it.
			partial(frames)
		}
		return fmt.Errorf("track %s of %s: %w: %w: %w", t.ID, rid, errUnreadableTrack, driver.ErrGarbage, err)
	}
	check(frames)
	return nil
}

// readTrack splits a track's bytes into frames by its container. The
// parsers accept a recording cut short (a crash mid-write), but a body
// without even the container's header is not a recording at all: an empty
// 200 says nothing about what was recorded, so it is unreadable, not a loss.
func readTrack(t driver.TrackInfo, b []byte) ([][]byte, error) {
	switch {
	case t.Format == "ogg" || (t.Format == "" && t.Kind == string(models.Audio)):
		if len(b) < oggPageHeader {
			return nil, fmt.Errorf("ogg: %d bytes, not even one page header", len(b))
		}
		return driver.ReadOgg(b)
	case t.Format == "ivf" || (t.Format == "" && t.Kind == string(models.Video)):
		if len(b) < ivfFileHeader {
			return nil, fmt.Errorf("ivf: %d bytes, not even the file header", len(b))
		}
		return driver.ReadIVF(b)
	}
	return nil, fmt.Errorf("unknown track format %q", t.Format)
}

// probe fetches a recording, its consultation and one of its tracks, all
// harvested from another user's consultation: the target must deny each
// (replay-access-control). Only HTTP answers are judged; a
// transport failure says nothing about access control.
func (r *run) probe(ctx context.Context, s driver.Session, pick uint64) {
	pt, ok := r.pool.pick(pick, s.ID)
	if !ok {
		r.cnt.probesSkipped.Add(1)
		return
	}
	r.cnt.probes.Add(1)
	rep, err := r.target.GetReplay(ctx, s, pt.recording)
	r.probeCounted(err)
	n := 0
	if err == nil {
		b, _ := json.Marshal(rep)
		n = len(b)
	}
	r.judgeProbe(ctx, s.ID, pt.recording, pt.consultation, err, n)
	ci, err := r.target.Consultation(ctx, s, pt.consultation)
	r.probeCounted(err)
	n = 0
	if err == nil {
		b, _ := json.Marshal(ci)
		n = len(b)
	}
	r.judgeProbe(ctx, s.ID, "", pt.consultation, err, n)
	if len(pt.tracks) == 0 {
		return
	}
	tid := pt.tracks[int(pick>>32)%len(pt.tracks)]
	b, err := r.target.FetchMedia(ctx, s, pt.recording, tid)
	r.probeCounted(err)
	r.judgeProbe(ctx, s.ID, pt.recording, pt.consultation, err, len(b))
}

// judgeProbe hands one probe's answer to the oracle; a probe cut short by
// the run itself is not judged either way.
func (r *run) judgeProbe(ctx context.Context, prober, rid, cid string, err error, n int) {
	status, answered := answerStatus(err)
	if !answered && r.stoppedByUs(ctx) {
		return
	}
	r.or.CheckProbe(prober, rid, cid, status, n, time.Now())
}

// probeCounted keeps probe requests and their (expected) denials out of the
// error rate.
func (r *run) probeCounted(err error) {
	r.cnt.probeRequests.Add(1)
	if err != nil {
		r.cnt.probeDenied.Add(1)
	}
}

// answerStatus returns the HTTP status behind err (200 for nil) and whether the
// target answered at all.
func answerStatus(err error) (int, bool) {
	if err == nil {
		return 200, true
	}
	if c := driver.StatusCode(err); c != 0 {
		return c, true
	}
	if errors.Is(err, driver.ErrGarbage) {
		return 200, true // a 2xx with a body we could not read: still an answer
	}
	return 0, false
}

// probeTarget is a real recording of someone's completed consultation.
type probeTarget struct {
	recording, consultation string
	patient, clinician      string
	tracks                  []string
}

// probePool is a bounded ring of recently completed recordings that probes draw
// from, so probes use real ids without keeping every recording of a long run.
type probePool struct {
	mu   sync.Mutex
	ring []probeTarget
	next int
	size int
}

func newProbePool(size int) *probePool {
	return &probePool{ring: make([]probeTarget, 0, size), size: size}
}

func (p *probePool) add(t probeTarget) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ring) < p.size {
		p.ring = append(p.ring, t)
		return
	}
	p.ring[p.next] = t
	p.next = (p.next + 1) % p.size
}

// pick chooses a recording user took no part in, or false if there is none.
func (p *probePool) pick(x uint64, user string) (probeTarget, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.ring)
	for k := range n {
		t := p.ring[(int(x%uint64(n))+k)%n]
		if t.patient != user && t.clinician != user {
			return t, true
		}
	}
	return probeTarget{}, false
}

// maxOpenOffered bounds how many recordings that are not theirs a user opens
// from one list: enough to see a leak's content, bounded for a flooded list.
const maxOpenOffered = 2

// openOffered plays, as a real patient would, recordings the user is offered
// that the ledger says are not theirs (the 2020 patient could play other
// patients' replays): their metadata and frames go to the oracle, which judges
// what the user was shown. On a correct target nothing is offered that is not
// the user's, so this costs nothing there.
func (r *run) openOffered(ctx context.Context, s driver.Session, items []driver.ReplaySummary) {
	opened := 0
	for _, it := range items {
		if opened >= maxOpenOffered || ctx.Err() != nil {
			return
		}
		if allowed, known := r.ledger.MayView(s.ID, it.ID); allowed || !known {
			continue
		}
		opened++
		rep, err := r.target.GetReplay(ctx, s, it.ID)
		if err != nil {
			continue // denied now: the list was the leak, already judged
		}
		meta := oracle.ReplayMeta{ID: rep.ID, ConsultationID: rep.ConsultationID, Participants: rep.Participants}
		for _, t := range rep.Tracks {
			meta.Tracks = append(meta.Tracks, oracle.TrackMeta{ID: t.ID, Owner: t.Owner, Kind: t.Kind, Segment: t.Segment, Frames: t.Frames})
		}
		r.or.CheckReplay(s.ID, meta, time.Now())
		for _, t := range rep.Tracks {
			// A failure here leaves the list's leak, already judged.
			_ = r.fetchTrack(ctx, s, it.ID, t, false, func(frames [][]byte) {
				st := r.or.CheckFrames(s.ID, it.ID, t.ID, frames, time.Now())
				r.met.FramesChecked.Add(float64(st.Frames))
			}, func(frames [][]byte) {
				st := r.or.CheckPartialFrames(s.ID, it.ID, t.ID, frames, time.Now())
				r.met.FramesChecked.Add(float64(st.Frames))
			})
		}
	}
}
