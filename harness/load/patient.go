package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/client"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/models"
)

// What an operation is (the requests, the frame format and pacing, the
// oracle's checks) lives in harness/client, shared with trace replay and the
// properties; this file is the load policy around it: plans, think times,
// retries, client faults, metrics and counters.

// planSeed derives patient i's PRNG from the run seed: the seed and the scenario
// fix every decision, whatever the order in which patients run.
func planSeed(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x7e1ec4a05^uint64(i)))
}

// newClient is the op executor of one patient's lifecycle, with the run's
// policy as its hooks.
func (u *Users) newClient() *client.Client {
	return client.New(u.Target, u.Media, u.Ledger, u.Oracle, client.Options{Hooks: vuHooks{u}, Metrics: vuMetrics{u.Metrics, &u.Count}})
}

// Patient runs the i-th patient's whole lifecycle. It never returns an error:
// failures are counted, and what was checked before them stays checked.
func (u *Users) Patient(ctx context.Context, i int) {
	rng := planSeed(u.Seed, i)
	plan := u.Behaviour.Draw(rng)
	probePick := rng.Uint64()
	var crng *rand.Rand // client faults draw here, never from the plan's stream
	if u.Chaos != nil {
		crng = chaos.ClientSeed(u.Seed, i)
	}
	errored := false
	defer func() {
		if errored && u.Chaos != nil {
			u.Chaos.Count.UsersErrored.Add(1)
		}
	}()

	u.Metrics.UsersActive.Inc()
	u.Count.UsersActive.Add(1)
	defer func() {
		u.Metrics.UsersActive.Dec()
		u.Count.UsersActive.Add(-1)
	}()
	u.Count.Patients.Add(1)

	fail := func(step string, err error) {
		u.Count.CallsFailed.Add(1)
		u.NoteErr(step, err)
		errored = true
	}
	cl := u.newClient()
	ps, err := cl.Register(ctx, models.Patient)
	if err != nil {
		fail("register patient", err)
		return
	}
	defer u.Oracle.ForgetUser(ps.ID)
	u.think(ctx, plan.Think)

	doc := u.clinicianFor(i)
	cons, err := cl.Book(ctx, ps, doc.ID)
	if err != nil {
		fail("book", err)
		return
	}
	u.Count.Consultations.Add(1)
	u.live.add(cons)
	liveDone := func() { u.live.remove(cons.ID) }
	defer liveDone()
	u.think(ctx, plan.Think)

	var c *callOutcome
	if u.Media != nil {
		c, err = u.mediaCall(ctx, cl, plan, ps, doc, cons, crng)
	} else {
		c, err = u.apiCall(ctx, cl, plan, ps, cons)
	}
	if err != nil {
		fail("call", err)
	}
	liveDone()
	if c != nil && c.ended {
		u.settleRecording(cons, c.call)
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
				if round > 0 && u.Interrupted() {
					break
				}
				settle := u.Settle
				if round > 0 {
					settle = 0
				}
				if !cl.Look(ctx, viewer, cons, rid, settle) {
					errored = true
				}
			}
		}
	}
	if plan.ProbeOther && !u.Interrupted() {
		// The patient and its clinician probe other users' consultations:
		// the plain probes, then a bounded round of the matrix each.
		own := ""
		if c != nil && c.ended {
			own, _ = c.call.Recording()
		}
		for k, s := range []driver.Session{ps, doc} {
			if k > 0 && u.Interrupted() {
				break
			}
			pick := probePick ^ uint64(k)*0x9e3779b97f4a7c15
			u.probe(ctx, cl, s, pick)
			u.matrix(ctx, cl, s, own, pick)
		}
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
func (u *Users) settleRecording(cons models.Consultation, call *client.Call) {
	rid, _ := call.Recording()
	tracks := call.Tracks()
	ids := make([]string, 0, len(tracks))
	for _, t := range tracks {
		ids = append(ids, t.ID)
		u.Count.FramesAcked.Add(int64(t.Frames))
	}
	call.Expect(u.allowanceOf(call))
	u.probes().add(probeTarget{recording: rid, consultation: cons.ID, patient: cons.Patient, clinician: cons.Clinician, tracks: ids})
}

// allowanceOf is the loss the faults that reached call explain, per track,
// widened by what the live path lost (pathAllowance).
func (u *Users) allowanceOf(call *client.Call) client.Allowance {
	start, end := call.StartedAt(), call.EndedAt()
	return func(t client.Track) (int, string) {
		allowed, why := u.Chaos.Allowance(t.Sent, t.SentDown, start, end)
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
func (u *Users) apiCall(ctx context.Context, cl *client.Client, plan models.Plan, ps driver.Session, cons models.Consultation) (*callOutcome, error) {
	out := &callOutcome{call: cl.NewCall(cons)}
	if plan.Abandon {
		out.abandoned = true
		u.Count.CallsAbandoned.Add(1)
		return out, nil
	}
	if err := u.sleep(ctx, min(plan.CallLength, 200*time.Millisecond)); err != nil {
		return out, err
	}
	return out, u.end(ctx, ps, out)
}

// end ends the call as s (see client.Call.End).
func (u *Users) end(ctx context.Context, s driver.Session, out *callOutcome) error {
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
func (u *Users) mediaCall(ctx context.Context, cl *client.Client, plan models.Plan, ps, cs driver.Session, cons models.Consultation, crng *rand.Rand) (_ *callOutcome, err error) {
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
			if endErr := u.end(ectx, ps, out); endErr != nil {
				u.NoteErr("end after failure", endErr)
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
		if plan.SwitchVideo && u.Chaos.Decide(chaos.SwitchDuringICE, crng) {
			switched = true
			call.Switch(ctx, parts, false)
		}
	}
	if err := call.Connect(ctx, parts, duringICE); err != nil {
		call.LiveNotConnected(ctx, err)
		return out, err
	}
	defer call.JudgeLive(ctx)
	u.Count.CallsConnected.Add(1)
	u.event(EventConnected, ps.ID, cons.ID, "")
	u.Metrics.CallsActive.Inc()
	u.Count.CallsActive.Add(1)
	defer func() {
		u.Metrics.CallsActive.Dec()
		u.Count.CallsActive.Add(-1)
	}()

	start := time.Now()
	tick := time.NewTicker(client.AudioInterval)
	defer tick.Stop()
	var sent int64
	defer func() {
		if out.ended {
			u.Count.FramesSentEnded.Add(sent)
		}
	}()
	restartC := u.Chaos.RestartSignal()
	restarted := "" // the clinic fault the call survived
	// reconnect: the patient's app drops its connection once, somewhere in
	// the middle of the call, and joins again with a new one.
	reconnectAt := time.Duration(-1)
	if u.Chaos != nil {
		at := plan.CallLength * time.Duration(25+crng.IntN(50)) / 100
		if u.Chaos.Decide(chaos.Reconnect, crng) {
			reconnectAt = at
		}
	}
	// rejoin replaces the peers of who and skips the frames due meanwhile
	// (a real app does not send what it could not capture while away).
	rejoin := func(who []*client.Participant) error {
		switchWG.Wait()
		if u.Chaos != nil {
			u.Chaos.Count.Rejoins.Add(1)
		}
		if err := call.Rejoin(ctx, who); err != nil {
			if u.Chaos != nil {
				u.Chaos.Count.RejoinFailed.Add(1)
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
			double := u.Chaos.Decide(chaos.DoubleSwitch, crng)
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
			restarted = u.Chaos.LastRestart()
			if err := rejoin(parts); err != nil {
				return out, err
			}
			u.Chaos.HitAfter(chaos.PathRejoin, restarted)
			restartC = u.Chaos.RestartSignal()
			n = int(time.Since(start) / client.AudioInterval)
		case <-ctx.Done():
			return out, ctx.Err()
		case <-u.Stopping:
			// Interrupted: end the call now so its recording can still be checked.
			plan.Abandon = false
			break loop
		}
	}
	switchWG.Wait()
	if plan.Abandon || (!u.Interrupted() && u.Chaos.Decide(chaos.Abandon, crng)) {
		out.abandoned = true
		u.Count.CallsAbandoned.Add(1)
		u.Chaos.Hit(chaos.PathAbandon)
		return out, nil
	}
	// The frames in flight reach the target before the end, and before a
	// racing switch goes out with it.
	if err := call.Drain(ctx); err != nil {
		return out, err
	}
	// switch-racing-end: the switch and the end go out together.
	if plan.SwitchVideo && !switched && u.Chaos.Decide(chaos.SwitchRacingEnd, crng) {
		switched = true
		switchWG.Add(1)
		go func() {
			defer switchWG.Done()
			call.Switch(ctx, parts, false)
		}()
	}
	if err := u.end(ctx, ps, out); err != nil {
		return out, err
	}
	if restarted != "" {
		u.Chaos.HitAfter(chaos.PathRecovery, restarted)
	}
	// retry: the app sends end again (it never saw the answer); the target
	// must say it has ended, and nothing else may change.
	if u.Chaos.Decide(chaos.Retry, crng) {
		u.Chaos.Hit(chaos.PathRetry)
		if err := call.EndAgain(ctx, ps); err != nil {
			u.NoteErr("retried end", err)
		}
	}
	return out, nil
}

// probe has s probe a recording harvested from another user's consultation
// (see client.Client.Probe).
func (u *Users) probe(ctx context.Context, cl *client.Client, s driver.Session, pick uint64) {
	pt, ok := u.probes().pick(pick, s.ID)
	if !ok {
		u.Count.ProbesSkipped.Add(1)
		return
	}
	u.Count.Probes.Add(1)
	// An unanswered probe is counted as not judged by the client; the run
	// has nothing more to do with it.
	_ = cl.Probe(ctx, s, client.ProbeTarget{Recording: pt.recording, Consultation: pt.consultation, Tracks: pt.tracks}, pick)
}

// vuHooks are the load path's policy around the client's operations: the
// chaos retry and reconnect policy, coverage hit points, scheduler events,
// milestones and counters.
type vuHooks struct{ u *Users }

func (h vuHooks) Retry(ctx context.Context, fn func() error) error { return h.u.Chaos.Retry(ctx, fn) }

// Reconnect: under chaos a connect failure a fault explains (the clinic
// restarting under the join, ICE cut) is retried twice, once the clinic is up.
func (h vuHooks) Reconnect(ctx context.Context, attempt int, err error) bool {
	u := h.u
	if u.Chaos == nil || attempt >= 2 || ctx.Err() != nil || u.Interrupted() {
		return false
	}
	u.NoteErr("connect (retrying)", err)
	u.Chaos.Count.Retries.Add(1)
	u.Chaos.WaitUp(ctx, 15*time.Second)
	return true
}

// StoppedByUs: an interrupt or the grace period ending may cause a failure;
// such failures are not counted against the target.
func (h vuHooks) StoppedByUs(ctx context.Context) bool { return h.u.Interrupted() || ctx.Err() != nil }

func (h vuHooks) TargetDown() bool { return h.u.Chaos.TargetDown() }

func (h vuHooks) NoteErr(_, step string, err error) { h.u.NoteErr(step, err) }

func (h vuHooks) Event(e client.Event) {
	u := h.u
	switch e.Kind {
	case client.EventJoining:
		u.Chaos.Event(chaos.EventJoin)
	case client.EventJoined:
		u.Chaos.Hit(chaos.PathJoin)
		if e.Segment > 1 {
			u.Chaos.Hit(chaos.PathRejoin)
		}
	case client.EventSwitching:
		u.event(EventSwitching, e.User, e.Consultation, "")
		u.Chaos.Event(chaos.EventSwitch)
	case client.EventSwitched:
		u.Count.Switches.Add(1)
		u.Chaos.Hit(chaos.PathSwitch)
		u.event(EventSwitched, e.User, e.Consultation, "")
	case client.EventEnding:
		u.event(EventEnding, e.User, e.Consultation, "")
		u.Chaos.Event(chaos.EventEnd)
	case client.EventEndAckLost:
		if u.Chaos != nil {
			u.Chaos.Count.EndAckLost.Add(1)
		}
	case client.EventEnded:
		u.Count.CallsEnded.Add(1)
		u.Chaos.Hit(chaos.PathEnd)
		u.event(EventEnded, e.User, e.Consultation, e.Recording)
	case client.EventListed:
		u.Count.ReplaysListed.Add(1)
	case client.EventReplayFetched:
		u.Count.ReplaysFetched.Add(1)
		u.event(EventFetching, e.User, e.Consultation, e.Recording)
		u.Chaos.Event(chaos.EventFetch)
	case client.EventTrackFetched:
		u.Count.TracksFetched.Add(1)
	case client.EventFetched:
		u.Chaos.Hit(chaos.PathFetch)
	case client.EventProbe:
		// Probe requests and their (expected) denials stay out of the
		// error rate.
		u.Count.ProbeRequests.Add(1)
		if e.Err != nil {
			u.Count.ProbeDenied.Add(1)
		}
	case client.EventUnreadable:
		// The driver saw a good answer, the content was not one: a failed
		// request (error_rate).
		u.Count.OpErrors.Add(1)
	}
}

// vuMetrics feed the client's media figures to the run's metrics and
// counters.
type vuMetrics struct {
	met *metrics.Metrics
	cnt *Counters
}

func (m vuMetrics) Sent(k models.Kind) {
	m.met.Sent(k)
	m.cnt.FramesSent.Add(1)
}

func (m vuMetrics) Received(k models.Kind) {
	m.met.Received(k)
	m.cnt.FramesReceived.Add(1)
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
