package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"telechaos/harness/chaos"
	"telechaos/harness/client"
	"telechaos/harness/driver"
	"telechaos/harness/metrics"
	"telechaos/models"
)

// What an operation is (the requests, the frame format and pacing, the
// oracle's checks) lives in harness/client, shared with trace replay and the
// properties; this file is the load policy around it: plans, think times,
// retries, client faults, metrics and counters.

// connectTimeout bounds ICE and DTLS after a join (the run's hard deadline
// allows for two).
const connectTimeout = client.ConnectTimeout

// planSeed derives patient i's PRNG from the run seed: the seed and the scenario
// fix every decision, whatever the order in which patients run.
func planSeed(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x7e1ec4a05^uint64(i)))
}

// newClient is the op executor of one patient's lifecycle, with the run's
// policy as its hooks.
func (r *run) newClient() *client.Client {
	return client.New(r.target, r.media, r.ledger, r.or, client.Options{Hooks: vuHooks{r}, Metrics: vuMetrics{r.met, &r.cnt}})
}

// patient runs the i-th patient's whole lifecycle. It never returns an error:
// failures are counted, and what was checked before them stays checked.
func (r *run) patient(ctx context.Context, i int) {
	rng := planSeed(r.seed, i)
	plan := r.beh.Draw(rng)
	probePick := rng.Uint64()
	var crng *rand.Rand // client faults draw here, never from the plan's stream
	if r.chaos != nil {
		crng = chaos.ClientSeed(r.seed, i)
	}
	errored := false
	defer func() {
		if errored && r.chaos != nil {
			r.chaos.Count.UsersErrored.Add(1)
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
	cl := r.newClient()
	ps, err := cl.Register(ctx, models.Patient)
	if err != nil {
		fail("register patient", err)
		return
	}
	defer r.or.ForgetUser(ps.ID)
	r.think(ctx, plan.Think)

	doc := r.clinicianFor(i)
	cons, err := cl.Book(ctx, ps, doc.ID)
	if err != nil {
		fail("book", err)
		return
	}
	r.cnt.consultations.Add(1)
	r.think(ctx, plan.Think)

	var c *callOutcome
	if r.media != nil {
		c, err = r.mediaCall(ctx, cl, plan, ps, doc, cons, crng)
	} else {
		c, err = r.apiCall(ctx, cl, plan, ps, cons)
	}
	if err != nil {
		fail("call", err)
	}
	if c != nil && c.ended {
		r.settleRecording(cons, c.call)
	}
	// Even when interrupted, look once (no polling) at a recording that
	// ended: the checks that can still finish do.
	if plan.Replay {
		rid := ""
		if c != nil && c.ended {
			rid, _ = c.call.Recording()
		}
		// Each round lists and fetches again (replay storms); the oracle
		// merges what the rounds delivered.
		for round := range max(plan.Replays, 1) {
			for _, viewer := range []driver.Session{ps, doc} {
				if round > 0 && r.interrupted() {
					break
				}
				settle := r.settle
				if round > 0 {
					settle = 0
				}
				if !cl.Look(ctx, viewer, cons, rid, settle) {
					errored = true
				}
			}
		}
	}
	if plan.ProbeOther && !r.interrupted() {
		r.probe(ctx, cl, ps, probePick)
	}
}

// callOutcome is what a call left behind.
type callOutcome struct {
	call      *client.Call
	ended     bool
	endTried  bool
	abandoned bool
}

// settleRecording tells the oracle what the acknowledged recording must
// hold, then offers it to other users' probes.
func (r *run) settleRecording(cons models.Consultation, call *client.Call) {
	rid, _ := call.Recording()
	tracks := call.Tracks()
	ids := make([]string, 0, len(tracks))
	for _, t := range tracks {
		ids = append(ids, t.ID)
		r.cnt.framesAcked.Add(int64(t.Frames))
	}
	call.Expect(r.allowanceOf(call))
	r.pool.add(probeTarget{recording: rid, consultation: cons.ID, patient: cons.Patient, clinician: cons.Clinician, tracks: ids})
}

// allowanceOf is the loss the faults that reached call explain, per track,
// widened by what the live path lost (pathAllowance).
func (r *run) allowanceOf(call *client.Call) client.Allowance {
	start, end := call.StartedAt(), call.EndedAt()
	return func(t client.Track) (int, string) {
		allowed, why := r.chaos.Allowance(t.Sent, t.SentDown, start, end)
		k := [2]string{t.Owner, string(t.Kind)}
		return pathAllowance(t.Sent, map[[2]string]int{k: t.PeerLive}, k, allowed, why)
	}
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
func (r *run) apiCall(ctx context.Context, cl *client.Client, plan models.Plan, ps driver.Session, cons models.Consultation) (*callOutcome, error) {
	out := &callOutcome{call: cl.NewCall(cons)}
	if plan.Abandon {
		out.abandoned = true
		r.cnt.callsAbandoned.Add(1)
		return out, nil
	}
	if err := r.sleep(ctx, min(plan.CallLength, 200*time.Millisecond)); err != nil {
		return out, err
	}
	return out, r.end(ctx, ps, out)
}

// end ends the call as s (see client.Call.End).
func (r *run) end(ctx context.Context, s driver.Session, out *callOutcome) error {
	out.endTried = true
	if _, err := out.call.End(ctx, s); err != nil {
		return err
	}
	out.ended = true
	return nil
}

// mediaCall joins both participants with real WebRTC peers, paces watermarked
// frames from one ticker, switches to video when the plan says so and ends (or
// abandons) the call. Under chaos it also acts out the client faults drawn
// from crng and has both participants rejoin with new peers when the clinic
// restarts.
func (r *run) mediaCall(ctx context.Context, cl *client.Client, plan models.Plan, ps, cs driver.Session, cons models.Consultation, crng *rand.Rand) (_ *callOutcome, err error) {
	call := cl.NewCall(cons)
	out := &callOutcome{call: call}
	parts := []*client.Participant{call.Participant(ps), call.Participant(cs)}
	defer func() {
		// A call that failed (a join refused, media that never connected) is
		// still ended, best effort, so the target does not keep it open and its
		// recording is judged like any other.
		if err != nil && !out.endTried && ctx.Err() == nil {
			ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if endErr := r.end(ectx, ps, out); endErr != nil {
				r.noteErr("end after failure", endErr)
			}
		}
	}()
	defer call.ClosePeers()
	var switchWG sync.WaitGroup
	defer switchWG.Wait() // before the peers close (deferred after: runs first)
	switched := false
	// switch-during-ice: the re-offer goes out right after join's answer,
	// before the connection is up.
	duringICE := func() {
		if plan.SwitchVideo && r.chaos.Decide(chaos.SwitchDuringICE, crng) {
			switched = true
			call.Switch(ctx, parts, false)
		}
	}
	if err := call.Connect(ctx, parts, duringICE); err != nil {
		call.LiveNotConnected(ctx, err)
		return out, err
	}
	defer call.JudgeLive(ctx)
	r.cnt.callsConnected.Add(1)
	r.event(EventConnected, ps.ID, cons.ID, "")
	r.met.CallsActive.Inc()
	r.cnt.callsActive.Add(1)
	defer func() {
		r.met.CallsActive.Dec()
		r.cnt.callsActive.Add(-1)
	}()

	start := time.Now()
	tick := time.NewTicker(client.AudioInterval)
	defer tick.Stop()
	var sent int64
	defer func() {
		if out.ended {
			r.cnt.framesSentEnded.Add(sent)
		}
	}()
	restartC := r.chaos.RestartSignal()
	restarted := "" // the clinic fault the call survived
	// reconnect: the patient's app drops its connection once, somewhere in
	// the middle of the call, and joins again with a new one.
	reconnectAt := time.Duration(-1)
	if r.chaos != nil {
		at := plan.CallLength * time.Duration(25+crng.IntN(50)) / 100
		if r.chaos.Decide(chaos.Reconnect, crng) {
			reconnectAt = at
		}
	}
	// rejoin replaces the peers of who and skips the frames due meanwhile
	// (a real app does not send what it could not capture while away).
	rejoin := func(who []*client.Participant) error {
		switchWG.Wait()
		if r.chaos != nil {
			r.chaos.Count.Rejoins.Add(1)
		}
		if err := call.Rejoin(ctx, who); err != nil {
			if r.chaos != nil {
				r.chaos.Count.RejoinFailed.Add(1)
			}
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
			n = int(time.Since(start) / client.AudioInterval)
			continue
		}
		if plan.SwitchVideo && !switched && el >= plan.SwitchAt {
			switched = true
			double := r.chaos.Decide(chaos.DoubleSwitch, crng)
			switchWG.Add(1)
			go func() {
				defer switchWG.Done()
				call.Switch(ctx, parts, double)
			}()
		}
		for due := client.StepsDue(el, n); n < due; n++ {
			sent += int64(call.SendStep(parts, n))
		}
		select {
		case <-tick.C:
		case <-restartC:
			// The clinic restarted: these peers talk to nobody. Both join
			// again with new PeerConnections, as real apps do.
			restarted = r.chaos.LastRestart()
			if err := rejoin(parts); err != nil {
				return out, err
			}
			r.chaos.HitAfter(chaos.PathRejoin, restarted)
			restartC = r.chaos.RestartSignal()
			n = int(time.Since(start) / client.AudioInterval)
		case <-ctx.Done():
			return out, ctx.Err()
		case <-r.stopping:
			// Interrupted: end the call now so its recording can still be checked.
			plan.Abandon = false
			break loop
		}
	}
	switchWG.Wait()
	if plan.Abandon || (!r.interrupted() && r.chaos.Decide(chaos.Abandon, crng)) {
		out.abandoned = true
		r.cnt.callsAbandoned.Add(1)
		r.chaos.Hit(chaos.PathAbandon)
		return out, nil
	}
	// The frames in flight reach the target before the end, and before a
	// racing switch goes out with it.
	if err := call.Drain(ctx); err != nil {
		return out, err
	}
	// switch-racing-end: the switch and the end go out together.
	if plan.SwitchVideo && !switched && r.chaos.Decide(chaos.SwitchRacingEnd, crng) {
		switched = true
		switchWG.Add(1)
		go func() {
			defer switchWG.Done()
			call.Switch(ctx, parts, false)
		}()
	}
	if err := r.end(ctx, ps, out); err != nil {
		return out, err
	}
	if restarted != "" {
		r.chaos.HitAfter(chaos.PathRecovery, restarted)
	}
	// retry: the app sends end again (it never saw the answer); the target
	// must say it has ended, and nothing else may change.
	if r.chaos.Decide(chaos.Retry, crng) {
		r.chaos.Hit(chaos.PathRetry)
		if err := call.EndAgain(ctx, ps); err != nil {
			r.noteErr("retried end", err)
		}
	}
	return out, nil
}

// probe has s probe a recording harvested from another user's consultation
// (see client.Client.Probe).
func (r *run) probe(ctx context.Context, cl *client.Client, s driver.Session, pick uint64) {
	pt, ok := r.pool.pick(pick, s.ID)
	if !ok {
		r.cnt.probesSkipped.Add(1)
		return
	}
	r.cnt.probes.Add(1)
	// An unanswered probe is counted as not judged by the client; the run
	// has nothing more to do with it.
	_ = cl.Probe(ctx, s, client.ProbeTarget{Recording: pt.recording, Consultation: pt.consultation, Tracks: pt.tracks}, pick)
}

// vuHooks are the load path's policy around the client's operations: the
// chaos retry and reconnect policy, coverage hit points, scheduler events,
// milestones and counters.
type vuHooks struct{ r *run }

func (h vuHooks) Retry(ctx context.Context, fn func() error) error { return h.r.chaos.Retry(ctx, fn) }

// Reconnect: under chaos a connect failure a fault explains (the clinic
// restarting under the join, ICE cut) is retried twice, once the clinic is up.
func (h vuHooks) Reconnect(ctx context.Context, attempt int, err error) bool {
	r := h.r
	if r.chaos == nil || attempt >= 2 || ctx.Err() != nil || r.interrupted() {
		return false
	}
	r.noteErr("connect (retrying)", err)
	r.chaos.Count.Retries.Add(1)
	r.chaos.WaitUp(ctx, 15*time.Second)
	return true
}

// StoppedByUs: an interrupt or the grace period ending may cause a failure;
// such failures are not counted against the target.
func (h vuHooks) StoppedByUs(ctx context.Context) bool { return h.r.interrupted() || ctx.Err() != nil }

func (h vuHooks) TargetDown() bool { return h.r.chaos.TargetDown() }

func (h vuHooks) NoteErr(_, step string, err error) { h.r.noteErr(step, err) }

func (h vuHooks) Event(e client.Event) {
	r := h.r
	switch e.Kind {
	case client.EventJoining:
		r.chaos.Event(chaos.EventJoin)
	case client.EventJoined:
		r.chaos.Hit(chaos.PathJoin)
		if e.Segment > 1 {
			r.chaos.Hit(chaos.PathRejoin)
		}
	case client.EventSwitching:
		r.event(EventSwitching, e.User, e.Consultation, "")
		r.chaos.Event(chaos.EventSwitch)
	case client.EventSwitched:
		r.cnt.switches.Add(1)
		r.chaos.Hit(chaos.PathSwitch)
		r.event(EventSwitched, e.User, e.Consultation, "")
	case client.EventEnding:
		r.event(EventEnding, e.User, e.Consultation, "")
		r.chaos.Event(chaos.EventEnd)
	case client.EventEndAckLost:
		if r.chaos != nil {
			r.chaos.Count.EndAckLost.Add(1)
		}
	case client.EventEnded:
		r.cnt.callsEnded.Add(1)
		r.chaos.Hit(chaos.PathEnd)
		r.event(EventEnded, e.User, e.Consultation, e.Recording)
	case client.EventListed:
		r.cnt.replaysListed.Add(1)
	case client.EventReplayFetched:
		r.cnt.replaysFetched.Add(1)
		r.event(EventFetching, e.User, e.Consultation, e.Recording)
		r.chaos.Event(chaos.EventFetch)
	case client.EventTrackFetched:
		r.cnt.tracksFetched.Add(1)
	case client.EventFetched:
		r.chaos.Hit(chaos.PathFetch)
	case client.EventProbe:
		// Probe requests and their (expected) denials stay out of the
		// error rate.
		r.cnt.probeRequests.Add(1)
		if e.Err != nil {
			r.cnt.probeDenied.Add(1)
		}
	case client.EventUnreadable:
		// The driver saw a good answer, the content was not one: a failed
		// request (error_rate).
		r.cnt.opErrors.Add(1)
	}
}

// vuMetrics feed the client's media figures to the run's metrics and
// counters.
type vuMetrics struct {
	met *metrics.Metrics
	cnt *counters
}

func (m vuMetrics) Sent(k models.Kind) {
	m.met.Sent(k)
	m.cnt.framesSent.Add(1)
}

func (m vuMetrics) Received(k models.Kind) {
	m.met.Received(k)
	m.cnt.framesReceived.Add(1)
}

func (m vuMetrics) FramesChecked(n int) { m.met.FramesChecked.Add(float64(n)) }

func (m vuMetrics) Latency(op string, d time.Duration) {
	switch op {
	case client.LatencyJoin:
		m.met.Latency(metrics.LatJoin, d)
	case client.LatencySwitch:
		m.met.Latency(metrics.LatSwitch, d)
	}
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
