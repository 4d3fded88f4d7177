package clinic

import (
	"slices"
	"testing"
)

// TestRestartGraceful: a recording finished before Close is listed intact
// after Start on the same data; a call still active at Close stays active and
// its participants rejoin on new PeerConnections (segment 2), and its replay
// holds both segments.
func TestRestartGraceful(t *testing.T) {
	dir := t.TempDir()
	s := startReal(t, dir)
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")

	// A finished call.
	b1 := c.book(p, d)
	pp, dp := newRTCPeer(t), newRTCPeer(t)
	seg := map[string]int{p.ID: c.rtcJoin(p, b1.ConsultationID, pp), d.ID: c.rtcJoin(d, b1.ConsultationID, dp)}
	pp.waitConnected()
	dp.waitConnected()
	sent1 := map[string][][]byte{}
	talk(t, pp, dp, p, d, seg, sent1, 20, 0)
	var e1 endJSON
	c.must(200, "POST", "/v1/consultations/"+b1.ConsultationID+"/end", d.Token, nil, &e1)

	// A call in progress at shutdown.
	b2 := c.book(p, d)
	pp2, dp2 := newRTCPeer(t), newRTCPeer(t)
	seg2 := map[string]int{p.ID: c.rtcJoin(p, b2.ConsultationID, pp2), d.ID: c.rtcJoin(d, b2.ConsultationID, dp2)}
	pp2.waitConnected()
	dp2.waitConnected()
	sent2 := map[string][][]byte{}
	talk(t, pp2, dp2, p, d, seg2, sent2, 15, 0)

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	pp2.close()
	dp2.close()

	s2 := startReal(t, dir)
	c2 := newAPIClient(t, s2.URL())
	for _, u := range []testUser{p, d} {
		if got := listIDs(c2.list(u)); !slices.Equal(got, []string{e1.RecordingID}) {
			t.Errorf("after restart %s lists %v, want [%s]", u.Role, got, e1.RecordingID)
		}
	}
	checkReplay(c2, p, e1.RecordingID, sent1, ackedFrames(e1))

	var cons consultation
	c2.must(200, "GET", "/v1/consultations/"+b2.ConsultationID, p.Token, nil, &cons)
	if cons.State != stateActive {
		t.Errorf("call active at shutdown is %q after restart", cons.State)
	}
	rejoinAndEnd(t, c2, p, d, b2.ConsultationID, sent2)
}

// TestCrashMidCallThenRejoin: the clinic dies mid-call without finalising;
// after Start on the same data the participants rejoin with new
// PeerConnections, talk, end, and the recording holds the pre-crash segment
// (recounted from the files) and the new one.
func TestCrashMidCallThenRejoin(t *testing.T) {
	dir := t.TempDir()
	s := startReal(t, dir)
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	b := c.book(p, d)
	pp, dp := newRTCPeer(t), newRTCPeer(t)
	seg := map[string]int{p.ID: c.rtcJoin(p, b.ConsultationID, pp), d.ID: c.rtcJoin(d, b.ConsultationID, dp)}
	pp.waitConnected()
	dp.waitConnected()
	sent := map[string][][]byte{}
	talk(t, pp, dp, p, d, seg, sent, 25, 0)

	if err := s.Crash(); err != nil {
		t.Logf("crash: %v", err)
	}
	pp.close()
	dp.close()

	s2 := startReal(t, dir)
	c2 := newAPIClient(t, s2.URL())
	if l := c2.list(p); l.Count != 0 {
		t.Errorf("unfinished recording listed after crash: %v", listIDs(l))
	}
	rejoinAndEnd(t, c2, p, d, b.ConsultationID, sent)
}

// rejoinAndEnd has both participants rejoin an active consultation with new
// PeerConnections (expecting segment 2), talk, end, and checks the replay
// holds sent (segment 1) plus the new segment, for both participants.
func rejoinAndEnd(t *testing.T, c *apiClient, p, d testUser, cid string, sent map[string][][]byte) {
	t.Helper()
	pp, dp := newRTCPeer(t), newRTCPeer(t)
	seg := map[string]int{p.ID: c.rtcJoin(p, cid, pp), d.ID: c.rtcJoin(d, cid, dp)}
	if seg[p.ID] != 2 || seg[d.ID] != 2 {
		t.Errorf("rejoin segments %v, want 2 each", seg)
	}
	pp.waitConnected()
	dp.waitConnected()
	talk(t, pp, dp, p, d, seg, sent, 10, 0)
	var e endJSON
	c.must(200, "POST", "/v1/consultations/"+cid+"/end", p.Token, nil, &e)
	segs := map[int]int{}
	for _, tr := range e.Tracks {
		segs[tr.Segment]++
	}
	if segs[1] != 2 || segs[2] != 2 {
		t.Errorf("end tracks by segment %v, want two of segment 1 and two of segment 2: %+v", segs, e.Tracks)
	}
	for _, u := range []testUser{p, d} {
		if got := listIDs(c.list(u)); !slices.Contains(got, e.RecordingID) {
			t.Errorf("%s lists %v, want %s", u.Role, got, e.RecordingID)
		}
		checkReplay(c, u, e.RecordingID, sent, ackedFrames(e))
	}
}

// TestRecoverEndedButNotFinalised: a clinic that died between ending a
// consultation and marking its recording ready finalises it at the next start.
func TestRecoverEndedButNotFinalised(t *testing.T) {
	dir := t.TempDir()
	s := startFake(t, dir)
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	b := c.book(p, d)
	c.must(200, "POST", "/v1/consultations/"+b.ConsultationID+"/join", p.Token, offerBody(fakeOffer), nil)
	// The first half of end, then the process dies.
	if err := s.db.claimEnd(t.Context(), b.ConsultationID); err != nil {
		t.Fatal(err)
	}
	s.Crash()
	s2 := startFake(t, dir)
	c2 := newAPIClient(t, s2.URL())
	var cons consultation
	c2.must(200, "GET", "/v1/consultations/"+b.ConsultationID, p.Token, nil, &cons)
	for _, u := range []testUser{p, d} {
		if got := listIDs(c2.list(u)); !slices.Equal(got, []string{cons.RecordingID}) {
			t.Errorf("%s lists %v, want [%s]", u.Role, got, cons.RecordingID)
		}
	}
	var rep replayJSON
	c2.must(200, "GET", "/v1/replays/"+cons.RecordingID, d.Token, nil, &rep)
	if len(rep.Tracks) != 1 || rep.Title == "" {
		t.Errorf("recovered replay %+v", rep)
	}
	c2.must(409, "POST", "/v1/consultations/"+b.ConsultationID+"/end", p.Token, nil, nil)
}
