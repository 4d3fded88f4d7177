package oracle

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/telechaos/telechaos/models"
)

// The recording-durability rule, per (owner, kind) of an ended consultation
// (summed over segments, so a call rejoined after a restart is one track):
//
//   - Against the acknowledgement: the frames delivered to each participant
//     who looked must reach the frames the target acknowledged in its answer
//     to end, within Options.DurabilityTolerance. This catches a target that
//     promises more than it serves.
//   - Against what was sent: the frames delivered must reach the frames the
//     owner's client actually sent (TrackExpect.Sent) minus TrackExpect.Allowed,
//     the loss the harness can explain: a small baseline for frames the
//     network path may cost without any fault, plus what the fault windows
//     that reached the call explain (chaos.AllowedMissing). This is what
//     catches a target that loses media on a crash: after the restart it
//     recounts from its files, so its acknowledgement shrinks with the loss
//     and the first check alone cannot see it.
//
// A consultation whose end was never acknowledged promises nothing (the call
// may still be judged for ownership); one whose end's answer was lost but
// whose end the target confirms has Acked -1 and is judged against Sent only.

// TrackExpect is what one participant's media (Owner, Kind) must amount to in
// the recording, summed over segments.
type TrackExpect struct {
	Owner, Kind string
	// Acked is the frames the target acknowledged at end; -1: no
	// acknowledgement to compare with.
	Acked int
	// Sent is the frames the owner's client sent (every segment); -1: unknown,
	// only Acked is checked.
	Sent int
	// Allowed is how many of Sent may be missing without a violation.
	Allowed int
	// Why explains Allowed in evidence ("baseline 4 + clinic-crash 120").
	Why string
}

// TrackLoss is the measured loss of one track, for reports: the least any
// participant who looked found.
type TrackLoss struct {
	Consultation string `json:"consultation"`
	Recording    string `json:"recording"`
	Owner        string `json:"owner"`
	Kind         string `json:"kind"`
	Sent         int    `json:"sent"`  // -1 unknown
	Acked        int    `json:"acked"` // -1 unknown
	Got          int    `json:"got"`
	Allowed      int    `json:"allowed"`
	Why          string `json:"why,omitempty"`
}

// expectation is the recording-durability state of one ended consultation.
type expectation struct {
	recording string
	c         models.Consultation
	known     bool // the ledger knows the consultation
	tracks    map[[2]string]TrackExpect
	hasAck    bool
	endedAt   time.Time
	seen      map[string]*delivery   // participant -> what they found
	failed    map[string]lookFailure // participant -> why a look failed (first)
}

// delivery is what one participant found, merged over its Delivered calls: a
// track counts as delivered if any look found enough of it.
type delivery struct {
	listed bool
	tagged map[[2]string]int // nil until a look reports frames
}

// lookFailure is why a participant's look at a recording could not finish.
type lookFailure struct{ reason, detail string }

func (o *Oracle) exp(consultationID string) *expectation {
	e := o.exps[consultationID]
	if e == nil {
		e = &expectation{seen: map[string]*delivery{}}
		o.exps[consultationID] = e
	}
	return e
}

// ExpectRecording registers the durability expectation of an acknowledged end:
// recordingID must appear in both participants' lists within the settle time and
// hold, per (owner, kind), the frames the target acknowledged (summed over
// segments). It is ExpectTracks with nothing known about what was sent.
func (o *Oracle) ExpectRecording(consultationID, recordingID string, acked []AckedTrack, endedAt time.Time) {
	m := map[[2]string]int{}
	var order [][2]string
	for _, t := range acked {
		k := [2]string{t.Owner, t.Kind}
		if _, ok := m[k]; !ok {
			order = append(order, k)
		}
		m[k] += t.Frames
	}
	te := make([]TrackExpect, 0, len(order))
	for _, k := range order {
		te = append(te, TrackExpect{Owner: k[0], Kind: k[1], Acked: m[k], Sent: -1})
	}
	o.ExpectTracks(consultationID, recordingID, te, endedAt)
}

// ExpectTracks registers the durability expectation of an ended consultation
// (see the rule above): recordingID must be listed for both participants
// within the settle time and each track must hold what tracks says. Repeated
// (owner, kind) entries add up. It also binds the recording to the
// consultation in the ledger (a no-op if the harness did already). Only the
// first call per consultation counts.
func (o *Oracle) ExpectTracks(consultationID, recordingID string, tracks []TrackExpect, endedAt time.Time) {
	c, known := o.l.Consultation(consultationID)
	if known && recordingID != "" {
		// A conflict is the list checks' business: they judge by the first binding.
		_ = o.l.BindRecording(consultationID, recordingID)
	}
	o.emu.Lock()
	defer o.emu.Unlock()
	e := o.exp(consultationID)
	if e.hasAck {
		return
	}
	e.recording, e.c, e.known, e.hasAck, e.endedAt = recordingID, c, known, true, endedAt
	e.tracks = map[[2]string]TrackExpect{}
	for _, t := range tracks {
		k := [2]string{t.Owner, t.Kind}
		prev, ok := e.tracks[k]
		if !ok {
			e.tracks[k] = t
			continue
		}
		prev.Acked = addKnown(prev.Acked, t.Acked)
		prev.Sent = addKnown(prev.Sent, t.Sent)
		prev.Allowed += t.Allowed
		if t.Why != "" {
			prev.Why = strings.TrimPrefix(prev.Why+"; "+t.Why, "; ")
		}
		e.tracks[k] = prev
	}
}

// addKnown adds counts where -1 means unknown (unknown + known = known).
func addKnown(a, b int) int {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return a + b
}

// Delivered reports what viewer found when it looked for the recording of
// consultationID: whether it was listed, and per (sender id, kind) how many
// frames carrying the consultation's tag its fetched tracks held (see
// FrameStats.BySender). Call it once the viewer is done looking (listed=false
// and nil tagged if it never saw the recording listed within the settle time);
// several calls merge (a track counts if any look found it). A participant that
// never calls Delivered is not judged (Stats.DurabilityUnchecked).
func (o *Oracle) Delivered(viewer, consultationID string, listed bool, tagged map[[2]string]int, at time.Time) {
	o.emu.Lock()
	defer o.emu.Unlock()
	e := o.exp(consultationID)
	d := e.seen[viewer]
	if d == nil {
		d = &delivery{}
		e.seen[viewer] = d
	}
	d.listed = d.listed || listed
	for k, n := range tagged {
		if d.tagged == nil {
			d.tagged = map[[2]string]int{}
		}
		d.tagged[k] = max(d.tagged[k], n)
	}
}

// LookFailed reports that viewer looked for the recording of consultationID
// and could not finish (no readable list came back, its metadata or a track
// could not be fetched or read). Unless another look of the viewer's
// succeeds (Delivered), the pair is counted as not judged at Finish, with
// reason and detail: never as a violation, since nothing was seen.
func (o *Oracle) LookFailed(viewer, consultationID, reason, detail string) {
	o.emu.Lock()
	defer o.emu.Unlock()
	e := o.exp(consultationID)
	if e.failed == nil {
		e.failed = map[string]lookFailure{}
	}
	if _, ok := e.failed[viewer]; !ok {
		e.failed[viewer] = lookFailure{reason, clip(detail, 300)}
	}
}

// Finish ends the settle period: every expectation is judged for each
// participant who reported a look with Delivered. Unsatisfied (never listed, or
// a track short of its acknowledged frames beyond the tolerance) is a
// recording-durability violation with the measured loss per track. Participants
// who never reported a look are counted as unchecked. Later calls do nothing.
func (o *Oracle) Finish(at time.Time) {
	type finding struct {
		e      *expectation
		viewer string
		detail string
	}
	var found []finding
	var failed []lookFailure
	o.emu.Lock()
	if o.finished {
		o.emu.Unlock()
		return
	}
	o.finished = true
	ids := make([]string, 0, len(o.exps))
	for id := range o.exps {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic report order
	for _, id := range ids {
		e := o.exps[id]
		if !e.hasAck {
			continue // looked for, but no end was acknowledged: nothing promised
		}
		if !e.known {
			o.durUnchecked += 2
			continue
		}
		for _, p := range participants(e.c) {
			d := e.seen[p]
			if d == nil {
				if f, ok := e.failed[p]; ok {
					failed = append(failed, f)
				} else {
					o.durUnchecked++
				}
				continue
			}
			o.durChecked++
			if detail, ok := o.judge(id, e, p, d); !ok {
				found = append(found, finding{e, p, detail})
			}
		}
	}
	checked := o.durChecked
	o.emu.Unlock()
	o.Judged(RecordingDurability, int(checked))
	for _, f := range failed {
		o.NotJudged(RecordingDurability, f.reason, f.detail)
	}
	for _, f := range found {
		o.report(RecordingDurability, f.viewer, "consultation:"+f.e.c.ID, nil, func() Violation {
			return Violation{Owner: f.viewer, Owners: participants(f.e.c), Recording: f.e.recording, Consultation: f.e.c.ID, At: at, Detail: f.detail}
		})
	}
}

// judge says whether d satisfies e for viewer, and if not, why.
func (o *Oracle) judge(cid string, e *expectation, viewer string, d *delivery) (string, bool) {
	if !d.listed {
		return fmt.Sprintf("recording %s of consultation %s (ended %s) was never listed for %s within the settle time",
			e.recording, cid, e.endedAt.UTC().Format(time.RFC3339), viewer), false
	}
	var short []string
	for _, k := range sortedTrackKeys(e.tracks) {
		t := e.tracks[k]
		got := d.tagged[k]
		o.noteLoss(cid, e.recording, t, got)
		if want := t.Acked; want > 0 && got < want &&
			float64(want-got) > o.opts.DurabilityTolerance*float64(want)+1e-9 {
			short = append(short, fmt.Sprintf("%s %s %d/%d frames (%.1f%% lost) of those acknowledged (tolerance %.1f%%)",
				k[0], k[1], got, want, 100*float64(want-got)/float64(want), 100*o.opts.DurabilityTolerance))
			continue
		}
		if sent := t.Sent; sent > 0 && sent-got > t.Allowed {
			why := ""
			if t.Why != "" {
				why = ": " + t.Why
			}
			ack := "unknown"
			if t.Acked >= 0 {
				ack = fmt.Sprint(t.Acked)
			}
			short = append(short, fmt.Sprintf("%s %s %d/%d frames of those sent (%d lost, %.1f%%; allowed %d%s; acknowledged %s)",
				k[0], k[1], got, sent, sent-got, 100*float64(sent-got)/float64(sent), t.Allowed, why, ack))
		}
	}
	if len(short) == 0 {
		return "", true
	}
	return fmt.Sprintf("recording %s of consultation %s, fetched by %s, misses frames: %s",
		e.recording, cid, viewer, strings.Join(short, ", ")), false
}

func sortedTrackKeys(m map[[2]string]TrackExpect) [][2]string {
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	return keys
}

// noteLoss keeps, per track, the least any participant found; o.emu is held.
func (o *Oracle) noteLoss(cid, rid string, t TrackExpect, got int) {
	k := [3]string{cid, t.Owner, t.Kind}
	if i, ok := o.lossIdx[k]; ok {
		o.losses[i].Got = min(o.losses[i].Got, got)
		return
	}
	if o.lossIdx == nil {
		o.lossIdx = map[[3]string]int{}
	}
	o.lossIdx[k] = len(o.losses)
	o.losses = append(o.losses, TrackLoss{Consultation: cid, Recording: rid, Owner: t.Owner, Kind: t.Kind,
		Sent: t.Sent, Acked: t.Acked, Got: got, Allowed: t.Allowed, Why: t.Why})
}

// Losses returns the measured loss of every judged track (after Finish), in
// the order judged: what reports show as "measured loss per track".
func (o *Oracle) Losses() []TrackLoss {
	o.emu.Lock()
	defer o.emu.Unlock()
	return append([]TrackLoss(nil), o.losses...)
}
