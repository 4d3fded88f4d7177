package oracle

import (
	"testing"
	"time"
)

// A look that could not finish is never a violation: nothing was seen. It is
// counted as not judged, with its reason, unless another look succeeded.
func TestLookFailedIsNotJudgedNotAViolation(t *testing.T) {
	o := New(world(t), Options{})
	o.ExpectRecording("cA", "rA", []AckedTrack{{Owner: "pA", Kind: "audio", Frames: 100}}, t0)
	o.LookFailed("pA", "cA", "no readable replay list", "list: target answered garbage")
	o.LookFailed("c1", "cA", "no readable replay list", "list: status 302")
	o.Delivered("c1", "cA", true, map[[2]string]int{{"pA", "audio"}: 100}, t0) // c1's second look worked
	o.Finish(t0.Add(time.Second))
	if vs := o.Violations(); len(vs) != 0 {
		t.Fatalf("violations %+v, want none", vs)
	}
	j := o.Stats().Judgement[RecordingDurability]
	if j.Judged != 1 || j.NotJudged != 1 || j.Reasons["no readable replay list"] != 1 {
		t.Fatalf("judgement %+v, want 1 judged (c1), 1 not judged (pA) with its reason", j)
	}
	if j.Examples["no readable replay list"] == "" {
		t.Errorf("no example kept for the reason")
	}
	if got := j.Share(); got != 0.5 {
		t.Errorf("share %v, want 0.5", got)
	}
}

// A participant who never looked is neither judged nor held against the
// share: not every plan replays.
func TestNeverLookedIsOutsideTheShare(t *testing.T) {
	o := New(world(t), Options{})
	o.ExpectRecording("cA", "rA", nil, t0)
	o.Delivered("pA", "cA", true, nil, t0)
	o.Finish(t0)
	st := o.Stats()
	if j := st.Judgement[RecordingDurability]; j.Judged != 1 || j.NotJudged != 0 {
		t.Fatalf("judgement %+v", j)
	}
	if st.DurabilityUnchecked != 1 {
		t.Fatalf("unchecked %d, want 1 (c1 never looked)", st.DurabilityUnchecked)
	}
}

func TestChecksCountWhatTheyJudged(t *testing.T) {
	o := New(world(t), Options{})
	o.CheckList("pA", []ListItem{{RecordingID: "rA", ConsultationID: "cA"}}, t0)
	o.CheckList("pA", nil, t0)
	o.CheckFrames("pA", "rA", "t1", [][]byte{audio("cA", "pA", 1)}, t0)
	o.CheckFrames("pA", "rUnknown", "t2", [][]byte{audio("cA", "pA", 1)}, t0) // unattributable: not counted
	o.NotJudged(ReplayContentOwnership, "unreadable track", "ogg: bad page")
	st := o.Stats()
	if j := st.Judgement[ReplayListOwnership]; j.Judged != 2 {
		t.Errorf("lists judged %d, want 2", j.Judged)
	}
	if j := st.Judgement[ReplayContentOwnership]; j.Judged != 1 || j.NotJudged != 1 {
		t.Errorf("content %+v, want 1 judged, 1 not", j)
	}
}

// A hostile target cannot grow the oracle through its error texts.
func TestNotJudgedReasonsAreBounded(t *testing.T) {
	o := New(world(t), Options{})
	for i := range 10 * maxReasons {
		o.NotJudged(ReplayListOwnership, string(rune('a'+i%26))+string(rune('a'+i/26)), string(make([]byte, 10000)))
	}
	j := o.Stats().Judgement[ReplayListOwnership]
	if len(j.Reasons) > maxReasons+1 || j.NotJudged != int64(10*maxReasons) {
		t.Fatalf("%d reasons, %d not judged", len(j.Reasons), j.NotJudged)
	}
	for _, ex := range j.Examples {
		if len(ex) > 310 {
			t.Fatalf("example of %d bytes kept", len(ex))
		}
	}
}

// Frames read before a track's bytes went bad are judged for foreign frames
// (a leak cannot hide behind junk after it), but the track is not counted as
// judged: the rest of it was never seen.
func TestPartialFramesFindLeaksButAreNotJudged(t *testing.T) {
	o := New(world(t), Options{})
	o.CheckList("pA", []ListItem{{RecordingID: "rA", ConsultationID: "cA"}}, t0)
	st := o.CheckPartialFrames("pA", "rA", "t1", [][]byte{audio("cA", "pA", 1), audio("cB", "pB", 2)}, t0)
	if st.Foreign != 1 {
		t.Fatalf("foreign %d, want 1", st.Foreign)
	}
	if vs := o.Violations(); len(vs) != 1 || vs[0].Invariant != ReplayContentOwnership {
		t.Fatalf("violations %+v, want one content-ownership", vs)
	}
	if j := o.Stats().Judgement[ReplayContentOwnership]; j.Judged != 0 {
		t.Errorf("a partial track counted as judged: %+v", j)
	}
}
