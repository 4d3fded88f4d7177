package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// Drain waits DrainTime if frames were sent since the last drain, so they
// reach the target before what comes next (an end, a crash).
func (c *Call) Drain(ctx context.Context) error {
	if !c.pending.Swap(false) {
		return ctx.Err()
	}
	return sleepCtx(ctx, DrainTime)
}

// End drains the frames in flight and ends the call as by (under the retry
// policy), keeping the target's acknowledgement for Expect. A retried end
// told "already ended" went through the first time and a fault lost its
// answer: the recording is still owed, with nothing acknowledged to compare
// with but the frames sent. The first acknowledged end is the call's.
func (c *Call) End(ctx context.Context, by driver.Session) (driver.EndResult, error) {
	cl := c.cl
	cid := c.Cons.ID
	if err := c.Drain(ctx); err != nil {
		return driver.EndResult{}, fmt.Errorf("end %s: %w", cid, err)
	}
	cl.hooks.Event(Event{Kind: EventEnding, User: by.ID, Consultation: cid})
	var res driver.EndResult
	tries := 0
	err := cl.hooks.Retry(ctx, func() error {
		tries++
		var err error
		res, err = cl.target.End(ctx, by, cid)
		return err
	})
	ackLost := false
	if err != nil && tries > 1 && driver.StatusCode(err) == 409 {
		if ci, cerr := cl.target.Consultation(ctx, by, cid); cerr == nil && ci.RecordingID != "" {
			res, err, ackLost = driver.EndResult{ConsultationID: cid, RecordingID: ci.RecordingID}, nil, true
			cl.hooks.Event(Event{Kind: EventEndAckLost, User: by.ID, Consultation: cid, Recording: ci.RecordingID})
		}
	}
	if err != nil {
		return driver.EndResult{}, fmt.Errorf("end %s: %w", cid, err)
	}
	if res.RecordingID == "" {
		return driver.EndResult{}, fmt.Errorf("end %s: %w: no recording id", cid, driver.ErrGarbage)
	}
	if err := cl.ledger.BindRecording(cid, res.RecordingID); err != nil {
		// The target gave one recording id to two consultations: evidence,
		// but the list and content checks judge it, so only note it.
		cl.hooks.NoteErr(by.ID, "bind recording", err)
	}
	c.mu.Lock()
	if !c.ended {
		c.ended, c.endedAt, c.recording, c.tracks, c.ackLost = true, time.Now(), res.RecordingID, res.Tracks, ackLost
	}
	c.mu.Unlock()
	cl.hooks.Event(Event{Kind: EventEnded, User: by.ID, Consultation: cid, Recording: res.RecordingID})
	return res, nil
}

// EndAgain sends the end once more as by (an app that never saw the answer):
// the target must say the call has ended (409), and nothing else may change.
func (c *Call) EndAgain(ctx context.Context, by driver.Session) error {
	_, err := c.cl.target.End(ctx, by, c.Cons.ID)
	if err == nil || driver.StatusCode(err) != 409 {
		return fmt.Errorf("end %s again: want 409 already ended, got %v", c.Cons.ID, err)
	}
	return nil
}

// Recording returns the recording id of the call's acknowledged end.
func (c *Call) Recording() (id string, ended bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recording, c.ended
}

// Ended says whether an end of the call was acknowledged.
func (c *Call) Ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// EndedAt is when the call's end was acknowledged.
func (c *Call) EndedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endedAt
}

// Tracks are the tracks the target acknowledged at end (none if the answer
// was lost).
func (c *Call) Tracks() []driver.TrackInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.tracks)
}

// Track is what one participant's media (Owner, Kind) amounted to on the
// client's side, for an Allowance.
type Track struct {
	Owner string
	Kind  models.Kind
	// Sent: frames the owner's client sent, every segment; SentDown: of
	// those, sent while Hooks.TargetDown said the target was down.
	Sent, SentDown int
	// PeerLive: the owner's frames the other participant received live.
	PeerLive int
	// Acked: frames the target acknowledged at end (-1: the answer was lost).
	Acked int
}

// Allowance says how many of a track's sent frames may be missing from the
// recording without a violation, and why: the loss the caller's faults
// explain. nil: none reached the call, the recording is judged against the
// target's acknowledgement only.
type Allowance func(Track) (allowed int, why string)

const ackOnly = "no fault reached the call: judged against the acknowledgement only"

// Expect tells the oracle what the recording of the call's acknowledged end
// must hold (recording-durability): a call nobody joined, the tracks the
// target acknowledged; a joined call, per participant and kind, what was
// acknowledged and what was sent less allow's allowance. Call it once the
// call's peers are done (what the peers received live is read now).
func (c *Call) Expect(allow Allowance) {
	c.mu.Lock()
	ended, joined, rid, tracks, ackLost, endedAt := c.ended, c.joined, c.recording, c.tracks, c.ackLost, c.endedAt
	c.mu.Unlock()
	if !ended {
		return
	}
	or := c.cl.or
	if !joined {
		acked := make([]oracle.AckedTrack, 0, len(tracks))
		for _, t := range tracks {
			acked = append(acked, oracle.AckedTrack{Owner: t.Owner, Kind: t.Kind, Segment: t.Segment, Frames: t.Frames})
		}
		or.ExpectRecording(c.Cons.ID, rid, acked, endedAt)
		return
	}
	acked := map[[2]string]int{}
	for _, t := range tracks {
		acked[[2]string{t.Owner, t.Kind}] += t.Frames
	}
	counts := c.counts()
	var out []oracle.TrackExpect
	for _, owner := range []string{c.Cons.Patient, c.Cons.Clinician} {
		for _, kind := range []models.Kind{models.Audio, models.Video} {
			k := [2]string{owner, string(kind)}
			t := counts[k]
			t.Owner, t.Kind, t.Acked = owner, kind, acked[k]
			if ackLost {
				t.Acked = -1
			}
			if t.Sent == 0 && t.Acked <= 0 {
				continue
			}
			allowed, why := t.Sent, ackOnly
			if allow != nil {
				allowed, why = allow(t)
			}
			out = append(out, oracle.TrackExpect{Owner: owner, Kind: string(kind), Acked: t.Acked, Sent: t.Sent, Allowed: allowed, Why: why})
		}
	}
	or.ExpectTracks(c.Cons.ID, rid, out, endedAt)
}

// counts sums, per (owner, kind), what each participant sent and what the
// others received of it live.
func (c *Call) counts() map[[2]string]Track {
	ps := c.participants()
	out := map[[2]string]Track{}
	for _, p := range ps {
		p.mu.Lock()
		a, v := out[[2]string{p.S.ID, string(models.Audio)}], out[[2]string{p.S.ID, string(models.Video)}]
		a.Sent += p.sentA
		a.SentDown += p.downA
		v.Sent += p.sentV
		v.SentDown += p.downV
		p.mu.Unlock()
		for _, q := range ps {
			if q != p {
				a.PeerLive += int(q.fromPeerA.Load())
				v.PeerLive += int(q.fromPeerV.Load())
			}
		}
		out[[2]string{p.S.ID, string(models.Audio)}], out[[2]string{p.S.ID, string(models.Video)}] = a, v
	}
	return out
}
