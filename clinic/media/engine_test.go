package media

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A rejoin starts a new segment on a new PeerConnection; forwarding goes on
// both ways and the old segment is kept. SegmentBase numbers after a restart.
func TestRejoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, _ := newEngine(t, nil)
	p := newPair(ctx, t, e, 1)
	p.sendBoth('a', 10, 20*time.Millisecond)
	waitRecorded(ctx, t, e, p.call.ConsultationID, "audio", 15)

	// The patient's client restarts: a fresh PeerConnection whose RTP
	// numbering starts over.
	p.pat.close()
	p.pat = newClient(t, p.call.Patient, 1, 1)
	if seg := p.pat.join(ctx, e, p.call); seg != 2 {
		t.Errorf("rejoin segment = %d, want 2", seg)
	}
	p.connected(ctx, t, e)
	sent := p.sendBoth('a', 20, 20*time.Millisecond)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	waitFor(wctx, func() bool { return len(p.pat.received("audio")) >= 18 && len(p.cli.received("audio")) >= 28 })
	wcancel()
	checkSubsequence(t, "rejoined patient hears", p.pat.received("audio"), sent[p.call.Clinician], 0.5)
	cliGot := p.cli.received("audio")
	checkSubsequence(t, "clinician hears the rejoined patient", cliGot[len(cliGot)-min(len(cliGot), 18):], sent[p.call.Patient], 0.5)

	recs, err := e.End(ctx, p.call.ConsultationID)
	if err != nil {
		t.Fatal(err)
	}
	segs := map[string][]int{}
	for _, r := range recs {
		segs[r.Owner] = append(segs[r.Owner], r.Segment)
		if r.Frames == 0 {
			t.Errorf("track %s (%s segment %d) has no frames", r.ID, r.Owner, r.Segment)
		}
	}
	if got := segs[p.call.Patient]; len(got) != 2 || got[0]+got[1] != 3 {
		t.Errorf("patient segments = %v, want 1 and 2", got)
	}
	if got := segs[p.call.Clinician]; len(got) != 1 || got[0] != 1 {
		t.Errorf("clinician segments = %v, want [1]", got)
	}

	// After a restart the HTTP layer passes the segments already on disk.
	c2 := Call{ConsultationID: "c_restart", RecordingID: "r_restart", Patient: "u_a", Clinician: "u_b",
		SegmentBase: map[string]int{"u_a": 3}}
	a := newClient(t, "u_a", 9, 1)
	if seg := a.join(ctx, e, c2); seg != 4 {
		t.Errorf("first join after restart: segment %d, want 4", seg)
	}
	b := newClient(t, "u_b", 9, 2)
	if seg := b.join(ctx, e, c2); seg != 1 {
		t.Errorf("clinician's first join: segment %d, want 1", seg)
	}
}

func TestSignallingErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, _ := newEngine(t, nil)
	call := Call{ConsultationID: "c_x", RecordingID: "r_x", Patient: "u_p", Clinician: "u_c"}
	c := newClient(t, "u_p", 1, 1)
	offer := c.offer(ctx)

	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", what, err, want)
		}
	}
	_, _, err := e.Join(ctx, call, "u_p", "v=0 garbage")
	check("garbage sdp", err, ErrBadSDP)
	_, _, err = e.Join(ctx, call, "u_p", "")
	check("empty sdp", err, ErrBadSDP)
	_, _, err = e.Join(ctx, call, "u_stranger", offer)
	check("stranger", err, ErrNotParticipant)
	_, err = e.Switch(ctx, "c_x", "u_p", offer)
	check("switch with audio-only offer", err, ErrNoVideo)

	if _, err := newClient(t, "u_p", 1, 1).switchOffer(ctx, e, "c_x"); !errors.Is(err, ErrNotJoined) {
		t.Errorf("switch before join: err = %v, want ErrNotJoined", err)
	}
	// Parses, but pion cannot use it: no DTLS fingerprint.
	var stripped []string
	for _, l := range strings.Split(offer, "\r\n") {
		if !strings.HasPrefix(l, "a=fingerprint") {
			stripped = append(stripped, l)
		}
	}
	_, _, err = e.Join(ctx, call, "u_p", strings.Join(stripped, "\r\n"))
	check("offer without fingerprint", err, ErrBadSDP)
	if e.ActiveCalls() != 0 {
		t.Errorf("failed joins left %d active calls", e.ActiveCalls())
	}

	// A joined participant whose partner never joined cannot have the
	// partner switch.
	c2 := newClient(t, "u_p", 1, 1)
	c2.join(ctx, e, call)
	v := newClient(t, "u_c", 1, 2)
	if _, err := v.switchOffer(ctx, e, "c_x"); !errors.Is(err, ErrNotJoined) {
		t.Errorf("switch by a participant who never joined: err = %v, want ErrNotJoined", err)
	}
	if recs, err := e.End(ctx, "c_nobody"); err != nil || recs != nil {
		t.Errorf("end of an unknown call = %v, %v; want nothing", recs, err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	_, _, err = e.Join(ctx, call, "u_p", offer)
	check("join after close", err, ErrClosed)
	if _, err := New(Config{}, newCatalog()); err == nil {
		t.Error("new engine without a data directory succeeded")
	}
	if _, err := New(Config{DataDir: t.TempDir(), ListenIP: "nonsense"}, newCatalog()); err == nil {
		t.Error("new engine with a bad listen ip succeeded")
	}
}
