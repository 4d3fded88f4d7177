package oracle

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telechaos/telechaos/models"
)

var t0 = time.Date(2020, 6, 9, 10, 0, 0, 0, time.UTC)

// world is a hand-built ledger:
//
//	consultation cA: patient pA, clinician c1, recording rA (bound, acked end)
//	consultation cB: patient pB, clinician c1, recording rB (bound)
//	consultation cC: patient pC, clinician c2, no recording bound (end answer lost)
//	user x: a registered patient with no consultation
func world(t testing.TB) *models.Ledger {
	t.Helper()
	l := models.NewLedger()
	for _, u := range []string{"pA", "pB", "pC", "x"} {
		l.AddUser(u, models.Patient)
	}
	l.AddUser("c1", models.Clinician)
	l.AddUser("c2", models.Clinician)
	for _, c := range []models.Consultation{
		{ID: "cA", Patient: "pA", Clinician: "c1"},
		{ID: "cB", Patient: "pB", Clinician: "c1"},
		{ID: "cC", Patient: "pC", Clinician: "c2"},
	} {
		if err := l.AddConsultation(c); err != nil {
			t.Fatal(err)
		}
	}
	for cid, rid := range map[string]string{"cA": "rA", "cB": "rB"} {
		if err := l.BindRecording(cid, rid); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func tag(cons, sender string, seq uint32) models.Tag {
	return models.Tag{Consultation: models.TagOf(cons), Sender: models.TagOf(sender), Seq: seq}
}

func audio(cons, sender string, seq uint32) []byte {
	return models.AudioFrame(tag(cons, sender, seq), 80)
}

func video(cons, sender string, seq uint32) []byte {
	return models.VideoFrame(tag(cons, sender, seq), 200)
}

func TestInvariantsOrder(t *testing.T) {
	want := []string{"replay-list-ownership", "replay-content-ownership", "replay-access-control", "live-media-isolation", "recording-durability"}
	if !slices.Equal(Invariants, want) {
		t.Errorf("Invariants = %v, want %v", Invariants, want)
	}
}

func TestCheckList(t *testing.T) {
	cases := []struct {
		name      string
		viewer    string
		items     []ListItem
		wantOwner []string // Owner of each expected violation, in order; nil: none
	}{
		{"own recording", "pA", []ListItem{{RecordingID: "rA", ConsultationID: "cA"}}, nil},
		{"shared clinician sees both", "c1", []ListItem{{RecordingID: "rA", ConsultationID: "cA"}, {RecordingID: "rB", ConsultationID: "cB"}}, nil},
		{"empty list", "pA", nil, nil},
		{"another patient's recording", "pA", []ListItem{{RecordingID: "rA", ConsultationID: "cA"}, {RecordingID: "rB", ConsultationID: "cB"}}, []string{"pB"}},
		{"clinician sees another clinician's", "c2", []ListItem{{RecordingID: "rA", ConsultationID: "cA"}}, []string{"pA"}},
		{"ledger binding beats the listed consultation id", "pB", []ListItem{{RecordingID: "rA", ConsultationID: "cB"}}, []string{"pA"}},
		{"own recording under someone else's consultation id", "pA", []ListItem{{RecordingID: "rA", ConsultationID: "cB"}}, []string{"pB"}},
		{"unbound recording of own consultation (end answer lost)", "pC", []ListItem{{RecordingID: "rC", ConsultationID: "cC"}}, nil},
		{"unbound recording of another consultation", "pA", []ListItem{{RecordingID: "rC2", ConsultationID: "cC"}}, []string{"pC"}},
		{"unattributable item", "pA", []ListItem{{RecordingID: "rZ", ConsultationID: "cZ"}}, []string{""}},
		{"item without ids", "pA", []ListItem{{}}, []string{""}},
		{"user with no consultation sees one", "x", []ListItem{{RecordingID: "rA", ConsultationID: "cA"}}, []string{"pA"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := New(world(t), Options{})
			o.CheckList(tc.viewer, tc.items, t0)
			vs := o.Violations()
			var owners []string
			for _, v := range vs {
				owners = append(owners, v.Owner)
				if v.Invariant != ReplayListOwnership || v.Viewer != tc.viewer || v.Detail == "" {
					t.Errorf("violation %+v: wrong invariant, viewer or empty detail", v)
				}
				if v.Owner != "" && !slices.Contains(v.Owners, v.Owner) {
					t.Errorf("Owner %q not in Owners %v", v.Owner, v.Owners)
				}
				if slices.Contains(v.Owners, tc.viewer) {
					t.Errorf("viewer %s named among the owners %v", tc.viewer, v.Owners)
				}
			}
			if !slices.Equal(owners, tc.wantOwner) {
				t.Errorf("violation owners = %q, want %q (%+v)", owners, tc.wantOwner, vs)
			}
			if got := o.Stats().ListsChecked; got != 1 {
				t.Errorf("ListsChecked = %d, want 1", got)
			}
		})
	}
}

// The first sight of an unbound recording of the viewer's own consultation binds
// it, so that its frames can be judged and other viewers are judged by it.
func TestCheckListBindsOnFirstSight(t *testing.T) {
	l := world(t)
	o := New(l, Options{})
	o.CheckList("pC", []ListItem{{RecordingID: "rC", ConsultationID: "cC"}}, t0)
	if c, ok := l.RecordingConsultation("rC"); !ok || c.ID != "cC" {
		t.Fatalf("rC not bound to cC after first sight: %v %v", c, ok)
	}
	// A stranger offered rC under their own consultation id is judged by the binding.
	o.CheckList("pA", []ListItem{{RecordingID: "rC", ConsultationID: "cA"}}, t0)
	vs := o.Violations()
	if len(vs) != 1 || vs[0].Owner != "pC" || vs[0].Recording != "rC" {
		t.Errorf("violations = %+v, want one naming pC for rC", vs)
	}
	// A non-participant's sight does not bind.
	o.CheckList("pA", []ListItem{{RecordingID: "rQ", ConsultationID: "cB"}}, t0)
	if _, ok := l.RecordingConsultation("rQ"); ok {
		t.Error("a non-participant's listing bound rQ")
	}
}

func TestDedupAndOnViolation(t *testing.T) {
	var calls atomic.Int32
	var got Violation
	o := New(world(t), Options{OnViolation: func(v Violation) { calls.Add(1); got = v }})
	for range 3 {
		o.CheckList("pA", []ListItem{{RecordingID: "rB", ConsultationID: "cB"}}, t0)
	}
	o.CheckList("pC", []ListItem{{RecordingID: "rB", ConsultationID: "cB"}}, t0) // another viewer: distinct
	st := o.Stats()
	if st.ByInvariant[ReplayListOwnership] != 4 || st.Distinct != 2 {
		t.Errorf("ByInvariant=%v Distinct=%d, want 4 occurrences and 2 distinct", st.ByInvariant, st.Distinct)
	}
	if calls.Load() != 2 {
		t.Errorf("OnViolation called %d times, want 2", calls.Load())
	}
	if got.Viewer != "pC" || got.Recording != "rB" || got.Consultation != "cB" || !got.At.Equal(t0) {
		t.Errorf("last OnViolation = %+v", got)
	}
}

func TestRecentOps(t *testing.T) {
	o := New(world(t), Options{RecentOps: 3})
	for i := range 5 {
		o.NoteOp("pA", fmt.Sprintf("op%d", i))
	}
	o.NoteOp("pB", "book cB")
	o.CheckList("pA", []ListItem{{RecordingID: "rB", ConsultationID: "cB"}}, t0)
	vs := o.Violations()
	if len(vs) != 1 {
		t.Fatalf("violations = %+v", vs)
	}
	want := []string{"pA: op2", "pA: op3", "pA: op4", "pB: book cB"}
	if !slices.Equal(vs[0].RecentOps, want) {
		t.Errorf("RecentOps = %q, want %q", vs[0].RecentOps, want)
	}
	o.ForgetUser("pA")
	o.ForgetUser("pB")
	for i := range o.shards {
		if n := len(o.shards[i].users); n != 0 {
			t.Errorf("shard %d keeps %d users after ForgetUser", i, n)
		}
	}
}

// A runner that logs requests itself lends that log as History: users with
// no noted ops get their last RecentOps entries from it, users with noted
// ops keep their own ring.
func TestRecentOpsFromHistory(t *testing.T) {
	var asked []string
	o := New(world(t), Options{RecentOps: 2, History: func(user string) []OpNote {
		asked = append(asked, user)
		return []OpNote{{Op: "book", Subject: "cB", Status: 201}, {Op: "list", Subject: user, Status: 200, Bytes: 512, Dur: 3 * time.Millisecond},
			{Op: "replay", Subject: "rB", Status: 0, Err: errors.New("connection reset")}}
	}})
	o.NoteOp("pB", "noted by hand")
	o.CheckList("pA", []ListItem{{RecordingID: "rB", ConsultationID: "cB"}}, t0)
	vs := o.Violations()
	if len(vs) != 1 {
		t.Fatalf("violations = %+v", vs)
	}
	want := []string{"pA: list pA -> 200 512B 3ms", "pA: replay rB -> 0 0B 0s err=connection reset", "pB: noted by hand"}
	if !slices.Equal(vs[0].RecentOps, want) {
		t.Errorf("RecentOps = %q, want %q", vs[0].RecentOps, want)
	}
	if !slices.Equal(asked, []string{"pA"}) {
		t.Errorf("History asked for %q, want only pA (pB has noted ops)", asked)
	}
}

func TestCheckReplay(t *testing.T) {
	tracks := func(owners ...string) []TrackMeta {
		var ts []TrackMeta
		for i, ow := range owners {
			ts = append(ts, TrackMeta{ID: fmt.Sprintf("t%d", i), Owner: ow, Kind: "audio", Frames: 10})
		}
		return ts
	}
	cases := []struct {
		name   string
		viewer string
		r      ReplayMeta
		want   []string // invariants, in order
	}{
		{"own replay", "pA", ReplayMeta{ID: "rA", ConsultationID: "cA", Participants: []string{"pA", "c1"}, Tracks: tracks("pA", "c1")}, nil},
		{"own replay, end answer lost", "pC", ReplayMeta{ID: "rC", ConsultationID: "cC", Tracks: tracks("pC", "c2")}, nil},
		{"track of a stranger", "pA", ReplayMeta{ID: "rA", ConsultationID: "cA", Tracks: tracks("pA", "pB", "x")}, []string{ReplayContentOwnership}},
		{"someone else's replay", "pB", ReplayMeta{ID: "rA", ConsultationID: "cA", Tracks: tracks("pA", "c1")}, []string{ReplayListOwnership}},
		{"unattributable replay", "pA", ReplayMeta{ID: "rZ", ConsultationID: "cZ", Tracks: tracks("pA")}, []string{ReplayListOwnership}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := New(world(t), Options{})
			o.CheckReplay(tc.viewer, tc.r, t0)
			var got []string
			for _, v := range o.Violations() {
				got = append(got, v.Invariant)
				if v.Invariant == ReplayContentOwnership && (v.Owner != "pB" || v.Track != "t1") {
					t.Errorf("content violation %+v: want owner pB, track t1", v)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("invariants = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckFrames(t *testing.T) {
	frames := func(fs ...[]byte) [][]byte { return fs }
	many := func(n int, f func(i int) []byte) [][]byte {
		var out [][]byte
		for i := range n {
			out = append(out, f(i))
		}
		return out
	}
	cases := []struct {
		name       string
		rid        string
		frames     [][]byte
		want       FrameStats
		violation  bool
		wantOwners []string
	}{
		{"own audio", "rA", frames(audio("cA", "pA", 1), audio("cA", "c1", 1), audio("cA", "pA", 2)),
			FrameStats{Frames: 3, Tagged: 3, BySender: map[string]int{"pA": 2, "c1": 1}}, false, nil},
		{"own video", "rA", frames(video("cA", "pA", 1), video("cA", "pA", 2)),
			FrameStats{Frames: 2, Tagged: 2, BySender: map[string]int{"pA": 2}}, false, nil},
		{"untagged frames are counted, not judged", "rA", frames([]byte("OggS-ish"), make([]byte, 100), audio("cA", "pA", 1)),
			FrameStats{Frames: 3, Tagged: 1, Untagged: 2, BySender: map[string]int{"pA": 1}}, false, nil},
		{"damaged tag is untagged", "rA", frames(func() []byte { f := audio("cA", "pA", 1); f[10] ^= 1; return f }()),
			FrameStats{Frames: 1, Untagged: 1, BySender: map[string]int{}}, false, nil},
		{"empty track", "rA", nil, FrameStats{BySender: map[string]int{}}, false, nil},
		{"frames of another consultation (switch-reuse)", "rA", frames(audio("cA", "pA", 1), video("cB", "pB", 7), video("cB", "c1", 8)),
			FrameStats{Frames: 3, Tagged: 3, Foreign: 2, BySender: map[string]int{"pA": 1}}, true, []string{"pB", "c1"}},
		{"right consultation, stranger's sender", "rA", frames(audio("cA", "x", 1)),
			FrameStats{Frames: 1, Tagged: 1, Foreign: 1, BySender: map[string]int{"x": 1}}, true, []string{"x"}},
		{"unknown tags", "rA", frames(audio("cQ", "q", 1)),
			FrameStats{Frames: 1, Tagged: 1, Foreign: 1, BySender: map[string]int{}}, true, nil},
		{"recording unknown to the ledger: not judged", "rZ", frames(audio("cB", "pB", 1)),
			FrameStats{Frames: 1, Tagged: 1, BySender: map[string]int{"pB": 1}}, false, nil},
		{"evidence is capped", "rA", many(20, func(i int) []byte { return audio("cC", "pC", uint32(i)) }),
			FrameStats{Frames: 20, Tagged: 20, Foreign: 20, BySender: map[string]int{}}, true, []string{"pC", "c2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := New(world(t), Options{MaxFrameEvidence: 3})
			st := o.CheckFrames("pA", tc.rid, "t1", tc.frames, t0)
			if st.Frames != tc.want.Frames || st.Tagged != tc.want.Tagged || st.Untagged != tc.want.Untagged || st.Foreign != tc.want.Foreign {
				t.Errorf("stats = %+v, want %+v", st, tc.want)
			}
			if len(st.BySender) != len(tc.want.BySender) {
				t.Errorf("BySender = %v, want %v", st.BySender, tc.want.BySender)
			}
			for k, n := range tc.want.BySender {
				if st.BySender[k] != n {
					t.Errorf("BySender = %v, want %v", st.BySender, tc.want.BySender)
				}
			}
			vs := o.Violations()
			if tc.violation != (len(vs) == 1) || len(vs) > 1 {
				t.Fatalf("violations = %+v, want violation=%v", vs, tc.violation)
			}
			if s := o.Stats(); s.FramesChecked != int64(tc.want.Frames) || s.UntaggedFrames != int64(tc.want.Untagged) {
				t.Errorf("Stats frames=%d untagged=%d", s.FramesChecked, s.UntaggedFrames)
			}
			if !tc.violation {
				return
			}
			v := vs[0]
			if v.Invariant != ReplayContentOwnership || v.Recording != tc.rid || v.Track != "t1" || v.Consultation != "cA" {
				t.Errorf("violation %+v", v)
			}
			if !slices.Equal(v.Owners, tc.wantOwners) {
				t.Errorf("Owners = %v, want %v", v.Owners, tc.wantOwners)
			}
			if n := min(tc.want.Foreign, 3); len(v.Frames) != n {
				t.Errorf("%d evidence frames, want %d", len(v.Frames), n)
			}
			f := v.Frames[0]
			if f.Index < 0 || f.Index >= len(tc.frames) || f.Sender == "" || f.Consultation == "" {
				t.Errorf("evidence %+v", f)
			}
			if tc.wantOwners == nil && !strings.HasPrefix(f.Sender, "tag:") {
				t.Errorf("unknown sender resolved to %q, want tag:<hex>", f.Sender)
			}
		})
	}
}

func TestCheckFramesEvidenceOffsetAndKind(t *testing.T) {
	o := New(world(t), Options{})
	o.CheckFrames("pA", "rA", "v1", [][]byte{video("cA", "pA", 1), video("cB", "pB", 9)}, t0)
	vs := o.Violations()
	if len(vs) != 1 || len(vs[0].Frames) != 1 {
		t.Fatalf("violations = %+v", vs)
	}
	want := FrameEvidence{Index: 1, Offset: models.VideoHeaderSize, Kind: "video", Consultation: "cB", Sender: "pB", Seq: 9}
	if vs[0].Frames[0] != want {
		t.Errorf("evidence = %+v, want %+v", vs[0].Frames[0], want)
	}
	if vs[0].Owner != "pB" {
		t.Errorf("Owner = %q, want pB (the sender whose frames leaked)", vs[0].Owner)
	}
}

// A viewer who took no part in a recording is shown someone else's frames
// even when every frame belongs to that recording (the 2020 incident: patients
// could play other patients' replays): a content violation owned by the
// recording's participants, never by the viewer.
func TestCheckFramesViewerNotAParticipant(t *testing.T) {
	o := New(world(t), Options{})
	st := o.CheckFrames("pA", "rB", "t1", [][]byte{audio("cB", "pB", 1), audio("cB", "c1", 2), audio("cA", "pA", 3)}, t0)
	if st.Foreign != 3 || st.BySender["pB"] != 1 || st.BySender["c1"] != 1 {
		t.Errorf("stats = %+v, want 3 foreign (2 of cB shown to a stranger, 1 of cA)", st)
	}
	vs := o.Violations()
	if len(vs) != 1 || vs[0].Invariant != ReplayContentOwnership {
		t.Fatalf("violations = %+v", vs)
	}
	v := vs[0]
	if v.Viewer != "pA" || v.Owner != "pB" || !slices.Contains(v.Owners, "c1") || slices.Contains(v.Owners, "pA") && v.Owner == "pA" {
		t.Errorf("viewer %q owner %q owners %v: want viewer pA, owner pB, owners incl. c1", v.Viewer, v.Owner, v.Owners)
	}
	if !strings.Contains(v.Detail, "took no part") {
		t.Errorf("detail %q does not say the viewer took no part", v.Detail)
	}
	// The participants themselves: nothing.
	o = New(world(t), Options{})
	o.CheckFrames("pB", "rB", "t1", [][]byte{audio("cB", "pB", 1), audio("cB", "c1", 2)}, t0)
	if vs := o.Violations(); len(vs) != 0 {
		t.Errorf("participant flagged: %+v", vs)
	}
}

func TestCheckLive(t *testing.T) {
	cases := []struct {
		name      string
		viewer    string
		cid       string
		payload   []byte
		violation bool
		owner     string
		judged    bool
	}{
		{"patient hears clinician", "pA", "cA", audio("cA", "c1", 1), false, "", true},
		{"clinician sees patient", "c1", "cA", video("cA", "pA", 1), false, "", true},
		{"shared clinician, other call", "c1", "cB", audio("cB", "pB", 1), false, "", true},
		{"untagged (e.g. padding)", "pA", "cA", []byte{0, 1, 2}, false, "", true},
		{"unknown consultation is not judged", "pA", "cZ", audio("cB", "pB", 1), false, "", false},
		{"echo of own frames", "pA", "cA", audio("cA", "pA", 1), true, "pA", true},
		{"crosstalk from another call", "pA", "cA", video("cB", "pB", 1), true, "pB", true},
		{"clinician gets the other call's patient", "c1", "cA", video("cB", "pB", 1), true, "pB", true},
		{"non-participant receives anything", "x", "cA", audio("cA", "c1", 1), true, "c1", true},
		{"unknown sender", "pA", "cA", audio("cA", "ghost", 1), true, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := New(world(t), Options{})
			o.CheckLive(tc.viewer, tc.cid, tc.payload, t0)
			vs := o.Violations()
			if tc.violation != (len(vs) == 1) || len(vs) > 1 {
				t.Fatalf("violations = %+v, want violation=%v", vs, tc.violation)
			}
			judged := int64(0)
			if tc.judged {
				judged = 1
			}
			if got := o.Stats().LiveFramesChecked; got != judged {
				t.Errorf("LiveFramesChecked = %d, want %d", got, judged)
			}
			if !tc.violation {
				return
			}
			v := vs[0]
			if v.Invariant != LiveMediaIsolation || v.Owner != tc.owner || v.Consultation != tc.cid || len(v.Frames) != 1 {
				t.Errorf("violation %+v, want owner %q", v, tc.owner)
			}
		})
	}
}

// Repeated crosstalk is one violation whose evidence grows to the cap.
func TestCheckLiveEvidenceAccumulates(t *testing.T) {
	o := New(world(t), Options{MaxFrameEvidence: 4})
	o.CheckLive("pA", "cA", audio("cA", "c1", 0), t0) // fine, index 0
	for i := range 10 {
		o.CheckLive("pA", "cA", video("cB", "pB", uint32(i)), t0)
	}
	vs := o.Violations()
	if len(vs) != 1 || len(vs[0].Frames) != 4 {
		t.Fatalf("violations = %+v, want one with 4 frames", vs)
	}
	for i, f := range vs[0].Frames {
		if f.Index != i+1 || f.Seq != uint32(i) {
			t.Errorf("frame %d evidence %+v", i, f)
		}
	}
	if st := o.Stats(); st.ByInvariant[LiveMediaIsolation] != 10 || st.LiveFramesChecked != 11 {
		t.Errorf("stats %+v", st)
	}
}

func TestCheckProbe(t *testing.T) {
	cases := []struct {
		name          string
		prober        string
		rid, cid      string
		status, bytes int
		violation     bool
		judged        bool
	}{
		{"denied 404", "pB", "rA", "cA", 404, 0, false, true},
		{"denied 403", "x", "rA", "", 403, 0, false, true},
		{"transport error", "x", "rA", "", 0, 0, false, false},
		{"redirect", "pB", "rA", "", 302, 0, false, false},
		{"server error", "pB", "rA", "", 500, 0, false, false},
		{"media served", "pB", "rA", "cA", 200, 4096, true, true},
		{"2xx with no bytes", "pB", "rA", "", 204, 0, true, true},
		{"bytes with an error status", "pB", "rA", "", 404, 10, true, true},
		{"consultation probe served", "pB", "", "cA", 200, 120, true, true},
		{"participant is not probing", "pA", "rA", "cA", 200, 4096, false, false},
		{"shared clinician is not probing", "c1", "rB", "", 200, 4096, false, false},
		{"participant via consultation id", "pC", "rUnknown", "cC", 200, 10, false, false},
		{"unattributable probe", "pB", "rZ", "cZ", 200, 10, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := New(world(t), Options{})
			o.CheckProbe(tc.prober, tc.rid, tc.cid, tc.status, tc.bytes, t0)
			vs := o.Violations()
			if tc.violation != (len(vs) == 1) || len(vs) > 1 {
				t.Fatalf("violations = %+v, want violation=%v", vs, tc.violation)
			}
			judged := int64(0)
			if tc.judged {
				judged = 1
			}
			st := o.Stats()
			if got := st.ProbesChecked; got != judged {
				t.Errorf("ProbesChecked = %d, want %d", got, judged)
			}
			j := st.Judgement[ReplayAccessControl]
			if j.Judged != judged {
				t.Errorf("judged = %d, want %d", j.Judged, judged)
			}
			// A verified probe that got no definitive answer is not judged,
			// and says why; an unverifiable one is not counted at all.
			wantNot := int64(0)
			if !tc.judged && (tc.status == 0 || tc.status >= 300 && tc.status < 400 || tc.status >= 500) {
				wantNot = 1
			}
			if j.NotJudged != wantNot || (wantNot > 0 && len(j.Reasons) != 1) {
				t.Errorf("not judged = %d %v, want %d with a reason", j.NotJudged, j.Reasons, wantNot)
			}
			if tc.violation {
				v := vs[0]
				if v.Invariant != ReplayAccessControl || v.Viewer != tc.prober || v.Owner != "pA" || !slices.Equal(v.Owners, []string{"pA", "c1"}) {
					t.Errorf("violation %+v", v)
				}
			}
		})
	}
}

func TestDurability(t *testing.T) {
	acked := []AckedTrack{
		{Owner: "pA", Kind: "audio", Segment: 0, Frames: 100},
		{Owner: "pA", Kind: "audio", Segment: 1, Frames: 50}, // a rejoin: segments sum
		{Owner: "c1", Kind: "audio", Segment: 0, Frames: 100},
		{Owner: "pA", Kind: "video", Segment: 0, Frames: 40},
	}
	full := map[[2]string]int{{"pA", "audio"}: 150, {"c1", "audio"}: 100, {"pA", "video"}: 40}
	lossy := map[[2]string]int{{"pA", "audio"}: 150, {"c1", "audio"}: 95, {"pA", "video"}: 40}
	type look struct {
		viewer string
		listed bool
		tagged map[[2]string]int
	}
	cases := []struct {
		name       string
		tolerance  float64
		looks      []look
		forget     []string
		wantViewer []string // violations
		checked    int64
		unchecked  int64
		detail     string
	}{
		{"both found everything", 0, []look{{"pA", true, full}, {"c1", true, full}}, nil, nil, 2, 0, ""},
		{"more frames than acked", 0, []look{{"pA", true, map[[2]string]int{{"pA", "audio"}: 300, {"c1", "audio"}: 100, {"pA", "video"}: 41}}}, nil, nil, 1, 1, ""},
		{"loss beyond tolerance", 0.01, []look{{"pA", true, lossy}}, nil, []string{"pA"}, 1, 1, "c1 audio 95/100 frames (5.0% lost)"},
		{"loss within tolerance", 0.05, []look{{"pA", true, lossy}}, nil, nil, 1, 1, ""},
		{"never listed", 0, []look{{"pA", false, nil}}, nil, []string{"pA"}, 1, 1, "never listed"},
		{"looks merge: listed late, tracks found across looks", 0, []look{
			{"pA", false, nil},
			{"pA", true, map[[2]string]int{{"pA", "audio"}: 150, {"c1", "audio"}: 100}},
			{"pA", true, map[[2]string]int{{"pA", "video"}: 40}},
		}, nil, nil, 1, 1, ""},
		{"track not fetched at all", 0, []look{{"c1", true, map[[2]string]int{{"pA", "audio"}: 150, {"c1", "audio"}: 100}}}, nil, []string{"c1"}, 1, 1, "pA video 0/40 frames (100.0% lost)"},
		{"gave up without looking", 0, nil, []string{"pA", "c1"}, nil, 0, 2, ""},
		{"looked then forgotten is still judged", 0, []look{{"pA", false, nil}}, []string{"pA"}, []string{"pA"}, 1, 1, ""},
		{"a non-participant's look is ignored", 0, []look{{"x", false, nil}}, nil, nil, 0, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := New(world(t), Options{DurabilityTolerance: tc.tolerance})
			o.ExpectRecording("cA", "rA", acked, t0)
			o.ExpectRecording("cA", "rA", nil, t0) // only the first counts
			for _, lk := range tc.looks {
				o.Delivered(lk.viewer, "cA", lk.listed, lk.tagged, t0)
			}
			for _, u := range tc.forget {
				o.ForgetUser(u)
			}
			o.Finish(t0.Add(time.Minute))
			o.Finish(t0.Add(2 * time.Minute)) // idempotent
			vs := o.Violations()
			var viewers []string
			for _, v := range vs {
				viewers = append(viewers, v.Viewer)
				if v.Invariant != RecordingDurability || v.Recording != "rA" || v.Consultation != "cA" || v.Owner != v.Viewer {
					t.Errorf("violation %+v", v)
				}
				if tc.detail != "" && !strings.Contains(v.Detail, tc.detail) {
					t.Errorf("detail %q does not contain %q", v.Detail, tc.detail)
				}
			}
			if !slices.Equal(viewers, tc.wantViewer) {
				t.Errorf("violations for %v, want %v", viewers, tc.wantViewer)
			}
			st := o.Stats()
			if st.DurabilityChecked != tc.checked || st.DurabilityUnchecked != tc.unchecked {
				t.Errorf("checked=%d unchecked=%d, want %d and %d", st.DurabilityChecked, st.DurabilityUnchecked, tc.checked, tc.unchecked)
			}
		})
	}
}

func TestDurabilityEdges(t *testing.T) {
	l := world(t)
	o := New(l, Options{})
	// Delivered before ExpectRecording (the other participant's VU was faster).
	o.Delivered("pC", "cC", true, map[[2]string]int{{"pC", "audio"}: 10}, t0)
	o.ExpectRecording("cC", "rC", []AckedTrack{{Owner: "pC", Kind: "audio", Frames: 10}}, t0)
	// A look with no acknowledged end promises nothing.
	o.Delivered("pB", "cB", false, nil, t0)
	// An end of a consultation the ledger does not know cannot be judged.
	o.ExpectRecording("cZ", "rZ", []AckedTrack{{Owner: "q", Kind: "audio", Frames: 10}}, t0)
	o.Finish(t0)
	if vs := o.Violations(); len(vs) != 0 {
		t.Errorf("violations = %+v", vs)
	}
	if st := o.Stats(); st.DurabilityChecked != 1 || st.DurabilityUnchecked != 3 {
		t.Errorf("stats %+v", st)
	}
	if c, ok := l.RecordingConsultation("rC"); !ok || c.ID != "cC" {
		t.Error("ExpectRecording did not bind rC")
	}
}

// Hundreds of goroutines mixing every check: run with -race. The counts must
// add up exactly and the only violations are the planted ones.
func TestConcurrent(t *testing.T) {
	l := models.NewLedger()
	const users = 200
	l.AddUser("doc", models.Clinician)
	for i := range users {
		p := fmt.Sprintf("p%d", i)
		l.AddUser(p, models.Patient)
		cid := fmt.Sprintf("c%d", i)
		if err := l.AddConsultation(models.Consultation{ID: cid, Patient: p, Clinician: "doc"}); err != nil {
			t.Fatal(err)
		}
	}
	var onV atomic.Int32
	o := New(l, Options{OnViolation: func(Violation) { onV.Add(1) }})
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, cid, rid := fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", i), fmt.Sprintf("r%d", i)
			o.NoteOp(p, "book "+cid)
			for s := range 50 {
				o.CheckLive(p, cid, audio(cid, "doc", uint32(s)), t0)
				o.CheckLive("doc", cid, audio(cid, p, uint32(s)), t0)
			}
			o.ExpectRecording(cid, rid, []AckedTrack{{Owner: p, Kind: "audio", Frames: 3}}, t0)
			o.CheckList(p, []ListItem{{RecordingID: rid, ConsultationID: cid}}, t0)
			st := o.CheckFrames(p, rid, "t", [][]byte{audio(cid, p, 1), audio(cid, p, 2), audio(cid, p, 3)}, t0)
			o.Delivered(p, cid, true, map[[2]string]int{{p, "audio"}: st.BySender[p]}, t0)
			other := fmt.Sprintf("r%d", (i+1)%users)
			o.CheckProbe(p, other, "", 404, 0, t0)
			if i%50 == 0 { // planted: every 50th user sees a neighbour's recording
				o.CheckList(p, []ListItem{{RecordingID: other, ConsultationID: fmt.Sprintf("c%d", (i+1)%users)}}, t0)
			}
			o.ForgetUser(p)
		}()
	}
	wg.Wait()
	o.Finish(t0)
	st := o.Stats()
	if st.LiveFramesChecked != users*100 || st.FramesChecked != users*3 || st.ListsChecked != users+users/50 {
		t.Errorf("stats %+v", st)
	}
	// A probe may race ahead of its target's end: judged or unverifiable, never a violation.
	if st.ProbesChecked > users {
		t.Errorf("ProbesChecked = %d", st.ProbesChecked)
	}
	if st.DurabilityChecked != users || st.DurabilityUnchecked != users {
		t.Errorf("durability checked=%d unchecked=%d, want %d each (doc never looked)", st.DurabilityChecked, st.DurabilityUnchecked, users)
	}
	vs := o.Violations()
	if len(vs) != users/50 || int(onV.Load()) != len(vs) {
		t.Errorf("%d violations, %d callbacks, want %d: %+v", len(vs), onV.Load(), users/50, vs)
	}
	for _, v := range vs {
		if v.Invariant != ReplayListOwnership {
			t.Errorf("unexpected violation %+v", v)
		}
	}
}

func BenchmarkCheckLive(b *testing.B) {
	o := New(world(b), Options{})
	f := audio("cA", "c1", 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.CheckLive("pA", "cA", f, t0)
		}
	})
}

func BenchmarkCheckFrames(b *testing.B) {
	o := New(world(b), Options{})
	frames := make([][]byte, 500) // ~10 s of Opus at 50 frames/s
	for i := range frames {
		frames[i] = audio("cA", []string{"pA", "c1"}[i%2], uint32(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		o.CheckFrames("pA", "rA", "t1", frames, t0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
}

func TestMaxViolations(t *testing.T) {
	var calls atomic.Int32
	o := New(world(t), Options{MaxViolations: 2, OnViolation: func(Violation) { calls.Add(1) }})
	for _, viewer := range []string{"x", "pB", "pC", "c2", "ghost"} {
		o.CheckList(viewer, []ListItem{{RecordingID: "rA", ConsultationID: "cA"}}, t0)
		o.CheckList(viewer, []ListItem{{RecordingID: "rA", ConsultationID: "cA"}}, t0) // duplicate
	}
	st := o.Stats()
	if n := len(o.Violations()); n != 2 || st.Distinct != 5 || st.ByInvariant[ReplayListOwnership] != 10 || calls.Load() != 5 {
		t.Errorf("kept %d, distinct %d, occurrences %d, callbacks %d; want 2, 5, 10, 5", n, st.Distinct, st.ByInvariant[ReplayListOwnership], calls.Load())
	}
}
