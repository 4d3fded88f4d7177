package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// List lists s's replays (under the retry policy) and judges the list
// (replay-list-ownership). A list that never came back readable is counted
// as not judged.
func (c *Client) List(ctx context.Context, s driver.Session) ([]driver.ReplaySummary, error) {
	var items []driver.ReplaySummary
	err := c.hooks.Retry(ctx, func() error {
		var err error
		items, err = c.target.ListReplays(ctx, s)
		return err
	})
	if err != nil {
		c.hooks.NoteErr(s.ID, "list", err)
		c.notJudged(ctx, oracle.ReplayListOwnership, err)
		return nil, err
	}
	c.hooks.Event(Event{Kind: EventListed, User: s.ID})
	li := make([]oracle.ListItem, len(items))
	for k, it := range items {
		li[k] = oracle.ListItem{RecordingID: it.ID, ConsultationID: it.ConsultationID, Participants: it.Participants}
	}
	c.or.CheckList(s.ID, li, time.Now())
	return items, nil
}

// Unlisted reports to the durability check a list viewer got, made
// after since, that misses the recording of the call's acknowledged end
// (ended before since): after an end the recording is listed for both
// participants.
func (c *Call) Unlisted(viewer string, items []driver.ReplaySummary, since time.Time) {
	rid, ended := c.Recording()
	if !ended || !c.EndedAt().Before(since) || !c.Cons.Has(viewer) {
		return
	}
	for _, it := range items {
		if it.ID == rid {
			return
		}
	}
	c.cl.or.Delivered(viewer, c.Cons.ID, false, nil, time.Now())
}

// maxOpenOffered bounds how many recordings that are not theirs a user opens
// from one list: enough to see a leak's content, bounded for a flooded list.
const maxOpenOffered = 2

// OpenOffered plays, as a real patient would, recordings s is offered that
// the ledger says are not theirs (the 2020 patient could play other
// patients' replays): their metadata and frames go to the oracle, which
// judges what the user was shown. On a correct target nothing is offered
// that is not the user's, so this costs nothing there.
func (c *Client) OpenOffered(ctx context.Context, s driver.Session, items []driver.ReplaySummary) {
	opened := 0
	for _, it := range items {
		if opened >= maxOpenOffered || ctx.Err() != nil {
			return
		}
		if allowed, known := c.ledger.MayView(s.ID, it.ID); allowed || !known {
			continue
		}
		opened++
		rep, err := c.target.GetReplay(ctx, s, it.ID)
		if err != nil {
			continue // denied now: the list was the leak, already judged
		}
		c.checkReplay(s.ID, rep)
		for _, t := range rep.Tracks {
			// A failure here leaves the list's leak, already judged.
			_ = c.fetchTrack(ctx, s, it.ID, t, false, func(frames [][]byte) {
				st := c.or.CheckFrames(s.ID, it.ID, t.ID, frames, time.Now())
				c.met.FramesChecked(st.Frames)
			})
		}
	}
}

func (c *Client) checkReplay(viewer string, rep driver.Replay) {
	meta := oracle.ReplayMeta{ID: rep.ID, ConsultationID: rep.ConsultationID, Participants: rep.Participants}
	for _, t := range rep.Tracks {
		meta.Tracks = append(meta.Tracks, oracle.TrackMeta{ID: t.ID, Owner: t.Owner, Kind: t.Kind, Segment: t.Segment, Frames: t.Frames})
	}
	c.or.CheckReplay(viewer, meta, time.Now())
}

// Replay fetches recording rid of cons as s (under the retry policy) and
// judges its metadata; with media it fetches and judges every track too
// (replay-content-ownership) and, for a participant whose look completed,
// reports what was delivered (recording-durability). A participant's fetch
// that fails is counted as not judged and as a failed look; a track whose
// bytes break is judged up to the break. The error names every failure.
func (c *Client) Replay(ctx context.Context, s driver.Session, cons models.Consultation, rid string, media bool) error {
	mine := cons.Has(s.ID) // a non-participant's denial is the right answer, not a failed look
	var rep driver.Replay
	err := c.hooks.Retry(ctx, func() error {
		var err error
		rep, err = c.target.GetReplay(ctx, s, rid)
		return err
	})
	if err != nil {
		c.hooks.NoteErr(s.ID, "replay", err)
		if mine {
			c.notJudged(ctx, oracle.ReplayContentOwnership, err)
			c.lookFailed(ctx, s.ID, cons, "replay metadata unreadable", err)
		}
		return err
	}
	c.checkReplay(s.ID, rep)
	if !media {
		return nil
	}
	c.hooks.Event(Event{Kind: EventReplayFetched, User: s.ID, Consultation: cons.ID, Recording: rid})
	ctag := models.TagOf(cons.ID)
	var senders map[uint64]string
	var tagged map[[2]string]int // nil: no frames (no tracks) to report
	if len(rep.Tracks) > 0 {
		senders = map[uint64]string{models.TagOf(cons.Patient): cons.Patient, models.TagOf(cons.Clinician): cons.Clinician}
		tagged = map[[2]string]int{}
	}
	var errs []error
	for _, t := range rep.Tracks {
		err := c.fetchTrack(ctx, s, rid, t, true, func(frames [][]byte) {
			c.hooks.Event(Event{Kind: EventTrackFetched, User: s.ID, Consultation: cons.ID, Recording: rid})
			st := c.or.CheckFrames(s.ID, rid, t.ID, frames, time.Now())
			c.met.FramesChecked(st.Frames)
			for _, f := range frames {
				tag, _, err := models.FindTag(f)
				if err != nil || tag.Consultation != ctag {
					continue
				}
				if who, ok := senders[tag.Sender]; ok {
					tagged[[2]string{who, string(tag.Kind)}]++
				}
			}
		})
		if err != nil {
			errs = append(errs, err)
			c.hooks.NoteErr(s.ID, "media", err)
			if mine {
				c.notJudged(ctx, oracle.ReplayContentOwnership, err)
				c.lookFailed(ctx, s.ID, cons, "track "+t.ID+" unreadable", err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	c.hooks.Event(Event{Kind: EventFetched, User: s.ID, Consultation: cons.ID, Recording: rid})
	if mine {
		c.or.Delivered(s.ID, cons.ID, true, tagged, time.Now())
	}
	return nil
}

// Look is one participant's look at cons' recording rid after the call (rid
// "": the end was not acknowledged, only the list is judged): list, judge
// and play what is offered that is not theirs, poll until the recording is
// listed or settle runs out (0: one list, no polling), then fetch it with
// every track and report what was delivered. A look without a readable
// list reports nothing delivered and nothing missing. It returns false if a
// step failed (the look is then incomplete).
func (c *Client) Look(ctx context.Context, s driver.Session, cons models.Consultation, rid string, settle time.Duration) bool {
	deadline := time.Now().Add(settle)
	wait := 100 * time.Millisecond
	listed := false
	readable := false                  // some list of this look came back readable
	var listErr error                  // the first list failure of this look
	var offered []driver.ReplaySummary // the last list the target answered
	for {
		items, err := c.List(ctx, s)
		if err == nil {
			readable = true
			offered = items
			for _, it := range items {
				if rid != "" && it.ID == rid {
					listed = true
				}
			}
		} else if listErr == nil {
			listErr = err
		}
		if rid == "" || listed || c.hooks.StoppedByUs(ctx) || time.Now().Add(wait).After(deadline) {
			break
		}
		if sleepCtx(ctx, wait) != nil {
			break
		}
		wait = min(wait*2, time.Second)
	}
	c.OpenOffered(ctx, s, offered)
	if rid == "" {
		return true
	}
	if !listed {
		switch {
		case c.hooks.StoppedByUs(ctx):
		case readable:
			// Lists came back and none offered the recording: that is what
			// the durability check judges.
			c.or.Delivered(s.ID, cons.ID, false, nil, time.Now())
		default:
			// No readable list ever came back: nothing was seen, so nothing
			// can be judged missing. Say so instead of calling it a loss.
			c.lookFailed(ctx, s.ID, cons, "no readable replay list", listErr)
			return false
		}
		return true
	}
	return c.Replay(ctx, s, cons, rid, true) == nil
}

// fetchTrack fetches track t of replay rid as s (under the retry policy
// when retry) and hands its frames to check. A 2xx answer whose bytes are
// not the container t names is a failed request (EventUnreadable) and an
// error wrapping ErrUnreadableTrack; the frames read before the bad bytes
// are judged with CheckPartialFrames: a target cannot hide a foreign frame
// by breaking the bytes after it.
func (c *Client) fetchTrack(ctx context.Context, s driver.Session, rid string, t driver.TrackInfo, retry bool, check func(frames [][]byte)) error {
	var b []byte
	fetch := func() error {
		var err error
		b, err = c.target.FetchMedia(ctx, s, rid, t.ID)
		return err
	}
	var err error
	if retry {
		err = c.hooks.Retry(ctx, fetch)
	} else {
		err = fetch()
	}
	if err != nil {
		return fmt.Errorf("track %s of %s: %w", t.ID, rid, err)
	}
	frames, err := ReadTrack(t, b)
	if err != nil {
		c.hooks.Event(Event{Kind: EventUnreadable, User: s.ID, Recording: rid})
		if len(frames) > 0 {
			st := c.or.CheckPartialFrames(s.ID, rid, t.ID, frames, time.Now())
			c.met.FramesChecked(st.Frames)
		}
		return fmt.Errorf("track %s of %s: %w: %w: %w", t.ID, rid, ErrUnreadableTrack, driver.ErrGarbage, err)
	}
	check(frames)
	return nil
}

// ReadTrack splits a track's bytes into frames by its container. The
// parsers accept a recording cut short (a crash mid-write), but a body
// without even the container's header is not a recording at all: an empty
// 200 says nothing about what was recorded, so it is unreadable, not a loss.
func ReadTrack(t driver.TrackInfo, b []byte) ([][]byte, error) {
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
	case t.Format == "webm" || t.Format == "mka" || t.Format == "mkv" || t.Format == "matroska":
		if len(b) < 4 || string(b[:4]) != "\x1a\x45\xdf\xa3" {
			return nil, fmt.Errorf("%s: %d bytes, no EBML header", t.Format, len(b))
		}
		return driver.ReadWebM(b)
	}
	return nil, fmt.Errorf("unknown track format %q", t.Format)
}
