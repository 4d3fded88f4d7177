package oracle

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/telechaos/telechaos/models"
)

// CheckList judges a replay list offered to viewer (replay-list-ownership):
// every item must be a recording of a consultation the viewer took part in.
//
// An item is attributed by the ledger's recording binding (made from
// acknowledged ends), else by the item's consultation id if the ledger knows
// that consultation; in the latter case, if the viewer took part in it, the
// oracle binds the recording on first sight (an end whose answer was lost is not
// a finding). An item the ledger cannot attribute at all is a violation with
// Owner "": no call the harness made can have produced it for this viewer.
func (o *Oracle) CheckList(viewer string, items []ListItem, at time.Time) {
	o.lists.Add(1)
	o.Judged(ReplayListOwnership, 1)
	for _, it := range items {
		o.checkItem(viewer, it.RecordingID, it.ConsultationID, "offers", at)
	}
}

// CheckReplay judges a fetched replay's metadata: the list-ownership rules for
// the recording itself, and every track's owner must be a participant of the
// recording's real consultation (replay-content-ownership, metadata evidence).
func (o *Oracle) CheckReplay(viewer string, r ReplayMeta, at time.Time) {
	o.lists.Add(1)
	c, ok := o.checkItem(viewer, r.ID, r.ConsultationID, "shows", at)
	if !ok {
		return
	}
	for _, t := range r.Tracks {
		if c.Has(t.Owner) {
			continue
		}
		o.report(ReplayContentOwnership, viewer, r.ID, nil, func() Violation {
			owner, owners := t.Owner, []string{t.Owner}
			if _, known := o.l.Role(t.Owner); !known {
				owner, owners = "", nil
			}
			if t.Owner == viewer || owner == "" {
				// The viewer's own (or nobody's) track in someone else's
				// recording: what the viewer was shown is that recording,
				// owned by its consultation's participants.
				owner, owners = c.Patient, append([]string{c.Patient, c.Clinician}, owners...)
			}
			return Violation{
				Owner: owner, Owners: owners, Recording: r.ID, Consultation: c.ID, Track: t.ID, At: at,
				Detail: fmt.Sprintf("replay %s of consultation %s, fetched by %s, lists %s track %s (segment %d) owned by %s, who took no part in the consultation",
					r.ID, c.ID, viewer, t.Kind, t.ID, t.Segment, t.Owner),
			}
		})
		return
	}
}

// checkItem applies the list-ownership rules to one (recording, consultation)
// pair offered to viewer, and returns the real consultation of the recording if
// the ledger can attribute it.
func (o *Oracle) checkItem(viewer, rid, cid, verb string, at time.Time) (models.Consultation, bool) {
	subject := rid
	if subject == "" {
		subject = "consultation:" + cid
	}
	for range 2 { // a second round only after losing a first-sight binding race
		if rid != "" {
			if c, ok := o.l.RecordingConsultation(rid); ok {
				if !c.Has(viewer) {
					o.reportList(viewer, subject, rid, c, at, fmt.Sprintf("replay list of %s %s recording %s, which belongs to consultation %s between %s and %s",
						viewer, verb, rid, c.ID, c.Patient, c.Clinician))
					return c, true
				}
				// The recording is the viewer's; the consultation id shown with
				// it must not name somebody else's consultation either.
				if cid != "" && cid != c.ID {
					if other, ok := o.l.Consultation(cid); ok && !other.Has(viewer) {
						o.reportList(viewer, subject, rid, other, at, fmt.Sprintf("replay list of %s %s its recording %s under consultation id %s, which belongs to %s and %s",
							viewer, verb, rid, cid, other.Patient, other.Clinician))
					}
				}
				return c, true
			}
		}
		c, ok := o.l.Consultation(cid)
		if !ok {
			o.report(ReplayListOwnership, viewer, subject, nil, func() Violation {
				return Violation{Recording: rid, Consultation: cid, At: at,
					Detail: fmt.Sprintf("replay list of %s %s recording %q of consultation %q, which no call made by the harness produced", viewer, verb, rid, cid)}
			})
			return models.Consultation{}, false
		}
		if !c.Has(viewer) {
			o.reportList(viewer, subject, rid, c, at, fmt.Sprintf("replay list of %s %s recording %q of consultation %s between %s and %s",
				viewer, verb, rid, c.ID, c.Patient, c.Clinician))
			return c, true
		}
		if rid == "" {
			return c, true
		}
		// First sight of a recording of the viewer's own consultation: bind it,
		// so its frames can be judged (the end answer may have been lost).
		err := o.l.BindRecording(c.ID, rid)
		if err == nil {
			return c, true
		}
		if !errors.Is(err, models.ErrRecordingConflict) {
			return c, true
		}
		// Somebody bound rid to another consultation meanwhile: judge again.
	}
	return models.Consultation{}, false
}

func (o *Oracle) reportList(viewer, subject, rid string, c models.Consultation, at time.Time, detail string) {
	o.report(ReplayListOwnership, viewer, subject, nil, func() Violation {
		return Violation{Owner: ownerFor(c, viewer), Owners: participants(c), Recording: rid, Consultation: c.ID, At: at, Detail: detail}
	})
}

// CheckFrames judges the frames of one fetched track (replay-content-ownership):
// each watermarked frame must carry the tag of the recording's consultation and
// of one of its participants. Untagged frames are counted, never reported. When
// the ledger cannot attribute the recording nothing is judged (CheckList or
// CheckReplay already reports such a recording) and the frames are only counted.
func (o *Oracle) CheckFrames(viewer, recordingID, trackID string, frames [][]byte, at time.Time) FrameStats {
	return o.checkFrames(viewer, recordingID, trackID, frames, at, true)
}

// CheckPartialFrames judges the frames read from a track before its bytes
// stopped being the container (a corrupting target): a foreign frame among
// them is a violation like any other, but the track counts as not judged,
// never as judged, since the rest of it was never seen.
func (o *Oracle) CheckPartialFrames(viewer, recordingID, trackID string, frames [][]byte, at time.Time) FrameStats {
	return o.checkFrames(viewer, recordingID, trackID, frames, at, false)
}

func (o *Oracle) checkFrames(viewer, recordingID, trackID string, frames [][]byte, at time.Time, whole bool) FrameStats {
	st := FrameStats{Frames: len(frames), BySender: map[string]int{}}
	c, known := o.l.RecordingConsultation(recordingID)
	var consTag, pTag, clTag uint64
	if known {
		consTag, pTag, clTag = models.TagOf(c.ID), models.TagOf(c.Patient), models.TagOf(c.Clinician)
	}
	// A viewer who took no part in the recording's consultation is shown
	// frames that belong to someone else, even where they belong to the
	// recording (the 2020 patient could play other patients' replays).
	viewerIn := known && c.Has(viewer)
	var nP, nC, notTheirs int
	var others map[uint64]int // senders of other frames counted in BySender
	var ev []FrameEvidence
	for i, f := range frames {
		t, off, err := models.FindTag(f)
		if err != nil {
			st.Untagged++
			continue
		}
		st.Tagged++
		if known && t.Consultation == consTag && (t.Sender == pTag || t.Sender == clTag) {
			if t.Sender == pTag {
				nP++
			} else {
				nC++
			}
			if viewerIn {
				continue
			}
			notTheirs++
		} else if !known || t.Consultation == consTag {
			if others == nil {
				others = map[uint64]int{}
			}
			others[t.Sender]++
		}
		if !known {
			continue
		}
		st.Foreign++
		if len(ev) < o.opts.MaxFrameEvidence {
			e, _, _ := o.evidence(i, off, t)
			ev = append(ev, e)
		}
	}
	if nP > 0 {
		st.BySender[c.Patient] += nP
	}
	if nC > 0 {
		st.BySender[c.Clinician] += nC
	}
	for tag, n := range others {
		st.BySender[o.resolveUser(tag)] += n
	}

	s := o.shardOf(viewer)
	s.mu.Lock()
	s.frames += int64(len(frames))
	s.untagged += int64(st.Untagged)
	s.mu.Unlock()
	if known && whole {
		o.Judged(ReplayContentOwnership, 1)
	}

	if st.Foreign > 0 {
		o.report(ReplayContentOwnership, viewer, recordingID, ev, func() Violation {
			owner, owners := o.ownersOfFrames(viewer, ev)
			if notTheirs > 0 {
				// The recording itself is someone else's: its participants
				// own what the viewer was shown, first in the list.
				owners = append([]string{c.Patient, c.Clinician}, slices.DeleteFunc(owners, func(u string) bool { return u == c.Patient || u == c.Clinician })...)
				owner = c.Patient
			} else if owner == viewer {
				// An echo of the viewer's own frames in someone else's
				// recording: name another owner when there is one.
				for _, u := range owners {
					if u != viewer {
						owner = u
						break
					}
				}
			}
			f := ev[0]
			detail := fmt.Sprintf("track %s of recording %s (consultation %s between %s and %s), fetched by %s, holds %d of %d frames from outside the consultation, first frame %d from %s of consultation %s",
				trackID, recordingID, c.ID, c.Patient, c.Clinician, viewer, st.Foreign-notTheirs, st.Frames, f.Index, f.Sender, f.Consultation)
			if notTheirs > 0 {
				detail = fmt.Sprintf("track %s of recording %s (consultation %s between %s and %s) showed %s, who took no part, %d frames of that consultation (%d foreign to it), first frame %d from %s",
					trackID, recordingID, c.ID, c.Patient, c.Clinician, viewer, notTheirs, st.Foreign-notTheirs, f.Index, f.Sender)
			}
			return Violation{
				Owner: owner, Owners: owners, Recording: recordingID, Consultation: c.ID, Track: trackID, At: at, Frames: ev,
				Detail: detail,
			}
		})
	}
	return st
}

// CheckLive judges one media frame viewer received live in a call of
// consultationID (live-media-isolation): it must come from the other participant
// of the same call. Untagged frames are counted, not judged; frames of a
// consultation the ledger does not know are not judged. It reports whether
// the frame was judged (its watermark read, its consultation known) and
// whether it came, as it should, from the viewer's peer in that call.
func (o *Oracle) CheckLive(viewer, consultationID string, payload []byte, at time.Time) (judged, fromPeer bool) {
	t, off, err := models.FindTag(payload)
	s := o.shardOf(viewer)
	s.mu.Lock()
	u := s.user(viewer)
	lc := u.live[consultationID]
	if lc == nil {
		c, ok := o.l.Consultation(consultationID)
		if !ok {
			s.mu.Unlock()
			return false, false
		}
		if u.live == nil || len(u.live) >= maxLiveCons {
			u.live = map[string]*liveCons{}
		}
		lc = &liveCons{c: c, consTag: models.TagOf(c.ID)}
		switch viewer {
		case c.Patient:
			lc.allowTag = models.TagOf(c.Clinician)
		case c.Clinician:
			lc.allowTag = models.TagOf(c.Patient)
		default:
			// Not a participant: no sender is allowed (MayReceiveLive agrees).
			lc.consTag, lc.allowTag = 0, 0
		}
		u.live[consultationID] = lc
	}
	index := lc.frames
	lc.frames++
	s.live++
	if err != nil {
		s.untagged++
		s.mu.Unlock()
		return false, false
	}
	okFrame := lc.consTag != 0 && t.Consultation == lc.consTag && t.Sender == lc.allowTag
	c := lc.c
	s.mu.Unlock()
	if okFrame {
		return true, true
	}
	ev, _, _ := o.evidence(index, off, t)
	o.report(LiveMediaIsolation, viewer, "consultation:"+consultationID, []FrameEvidence{ev}, func() Violation {
		owner, owners := o.ownersOfFrames(viewer, []FrameEvidence{ev})
		return Violation{
			Owner: owner, Owners: owners, Consultation: c.ID, At: at, Frames: []FrameEvidence{ev},
			Detail: fmt.Sprintf("during consultation %s (between %s and %s) %s received a live %s frame from %s of consultation %s",
				c.ID, c.Patient, c.Clinician, viewer, t.Kind, ev.Sender, ev.Consultation),
		}
	})
	return true, false
}

// CheckProbe judges an attempt by prober to fetch a recording (or consultation)
// by an id harvested from other users (replay-access-control). nbytes counts the
// bytes of media or replay/consultation metadata in the answer, NOT a JSON error
// body. A prober the ledger shows to be a participant is not probing and is
// ignored; so is a probe whose target the ledger cannot attribute (unverifiable).
// Any 2xx status, or any bytes returned, is a violation naming the real owners;
// a 4xx without bytes is a denial. Status 0 (no answer), a redirect (never
// followed: it may lead to the bytes) and a 5xx are neither: the probe is
// counted as not judged.
func (o *Oracle) CheckProbe(prober, recordingID, consultationID string, status int, nbytes int, at time.Time) {
	var c models.Consultation
	ok := false
	if recordingID != "" {
		c, ok = o.l.RecordingConsultation(recordingID)
	}
	if consultationID != "" {
		if cc, ok2 := o.l.Consultation(consultationID); ok2 {
			if cc.Has(prober) {
				return // the prober's own consultation: not a probe
			}
			if !ok {
				c, ok = cc, true
			}
		}
	}
	if !ok || c.Has(prober) {
		return
	}
	leaked := (status >= 200 && status < 300) || nbytes > 0
	if !leaked && !(status >= 400 && status < 500) {
		reason := "probe unanswered"
		switch {
		case status >= 300 && status < 400:
			reason = "probe redirected (not followed)"
		case status >= 500:
			reason = "probe answered 5xx"
		case status != 0:
			reason = "probe answered 1xx"
		}
		o.NotJudged(ReplayAccessControl, reason, fmt.Sprintf("%s probing consultation %s got status %d", prober, c.ID, status))
		return
	}
	o.probes.Add(1)
	o.Judged(ReplayAccessControl, 1)
	if !leaked {
		return
	}
	subject, what := recordingID, "recording "+recordingID
	if recordingID == "" {
		subject, what = "consultation:"+consultationID, "consultation "+consultationID
	}
	o.report(ReplayAccessControl, prober, subject, nil, func() Violation {
		return Violation{
			Owner: c.Patient, Owners: participants(c), Recording: recordingID, Consultation: c.ID, At: at,
			Detail: fmt.Sprintf("%s, not a participant, fetched %s of consultation %s (between %s and %s) and got status %d with %d bytes",
				prober, what, c.ID, c.Patient, c.Clinician, status, nbytes),
		}
	})
}
