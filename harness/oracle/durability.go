package oracle

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"telechaos/models"
)

// expectation is the recording-durability state of one ended consultation.
type expectation struct {
	recording string
	c         models.Consultation
	known     bool              // the ledger knows the consultation
	acked     map[[2]string]int // (owner, kind) -> frames acknowledged, summed over segments
	hasAck    bool
	endedAt   time.Time
	seen      map[string]*delivery // participant -> what they found
}

// delivery is what one participant found, merged over its Delivered calls: a
// track counts as delivered if any look found enough of it.
type delivery struct {
	listed bool
	tagged map[[2]string]int
}

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
// segments). It also binds the recording to the consultation in the ledger (a
// no-op if the harness did already). Only the first call per consultation counts.
func (o *Oracle) ExpectRecording(consultationID, recordingID string, acked []AckedTrack, endedAt time.Time) {
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
	e.acked = map[[2]string]int{}
	for _, t := range acked {
		e.acked[[2]string{t.Owner, t.Kind}] += t.Frames
	}
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
		d = &delivery{tagged: map[[2]string]int{}}
		e.seen[viewer] = d
	}
	d.listed = d.listed || listed
	for k, n := range tagged {
		d.tagged[k] = max(d.tagged[k], n)
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
				o.durUnchecked++
				continue
			}
			o.durChecked++
			if detail, ok := o.judge(id, e, p, d); !ok {
				found = append(found, finding{e, p, detail})
			}
		}
	}
	o.emu.Unlock()
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
	keys := make([][2]string, 0, len(e.acked))
	for k := range e.acked {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	var short []string
	for _, k := range keys {
		want := e.acked[k]
		got := d.tagged[k]
		missing := want - got
		if missing <= 0 {
			continue
		}
		if float64(missing) <= o.opts.DurabilityTolerance*float64(want)+1e-9 {
			continue
		}
		short = append(short, fmt.Sprintf("%s %s %d/%d frames (%.1f%% lost)", k[0], k[1], got, want, 100*float64(missing)/float64(want)))
	}
	if len(short) == 0 {
		return "", true
	}
	return fmt.Sprintf("recording %s of consultation %s, fetched by %s, misses frames the target acknowledged (tolerance %.1f%%): %s",
		e.recording, cid, viewer, 100*o.opts.DurabilityTolerance, strings.Join(short, ", ")), false
}
