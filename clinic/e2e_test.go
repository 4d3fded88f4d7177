package clinic

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sentKey indexes what a test sent: owner, kind, segment.
func sentKey(owner, kind string, seg int) string { return fmt.Sprintf("%s/%s/%d", owner, kind, seg) }

// checkReplay fetches every track of rid as viewer and compares it with what
// was sent, frame for frame, and with the frame count the end acknowledged.
func checkReplay(c *apiClient, viewer testUser, rid string, sent map[string][][]byte, acked map[string]int64) {
	t := c.t
	t.Helper()
	var rep replayJSON
	c.must(200, "GET", "/v1/replays/"+rid, viewer.Token, nil, &rep)
	if len(rep.Tracks) != len(sent) {
		t.Errorf("replay has %d tracks, sent %d streams: %+v", len(rep.Tracks), len(sent), rep.Tracks)
	}
	for _, tr := range rep.Tracks {
		k := sentKey(tr.Owner, tr.Kind, tr.Segment)
		want, ok := sent[k]
		if !ok {
			t.Errorf("replay track %s (%s) matches nothing sent", tr.ID, k)
			continue
		}
		got := c.fetchTrackFrames(viewer, rid, tr)
		if !equalFrames(got, want) {
			t.Errorf("track %s (%s): %d frames differ from the %d sent", tr.ID, k, len(got), len(want))
		}
		if tr.Frames != int64(len(got)) {
			t.Errorf("track %s (%s): metadata says %d frames, file holds %d", tr.ID, k, tr.Frames, len(got))
		}
		if n, ok := acked[tr.ID]; ok && n != tr.Frames {
			t.Errorf("track %s (%s): end acknowledged %d frames, replay says %d", tr.ID, k, n, tr.Frames)
		}
	}
}

func ackedFrames(e endJSON) map[string]int64 {
	m := map[string]int64{}
	for _, tr := range e.Tracks {
		m[tr.ID] = tr.Frames
	}
	return m
}

// talk has both peers send n audio (and m video) frames at once and waits
// until each has received the other's, so the clinic has recorded them.
func talk(t testing.TB, pp, dp *rtcPeer, p, d testUser, seg map[string]int, sent map[string][][]byte, n, m int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, side := range []struct {
		peer *rtcPeer
		u    testUser
	}{{pp, p}, {dp, d}} {
		for _, k := range []struct {
			kind  string
			count int
			gap   time.Duration
		}{{"audio", n, 10 * time.Millisecond}, {"video", m, 20 * time.Millisecond}} {
			if k.count == 0 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				frames := side.peer.send(k.kind, side.u.ID+"/"+fmt.Sprint(seg[side.u.ID]), k.count, k.gap)
				mu.Lock()
				key := sentKey(side.u.ID, k.kind, seg[side.u.ID])
				sent[key] = append(sent[key], frames...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for _, pr := range [][2]*rtcPeer{{pp, dp}, {dp, pp}} {
		rx, tx := pr[0], pr[1]
		for _, kind := range []string{"audio", "video"} {
			owner := p.ID
			if tx == dp {
				owner = d.ID
			}
			if frames := sent[sentKey(owner, kind, seg[owner])]; len(frames) > 0 {
				rx.waitReceivedLast(kind, frames[len(frames)-1])
			}
		}
	}
}

// TestEndToEndCall: the whole contract with real PeerConnections: book, join
// (audio), talk, switch both to video on the same PeerConnections, talk, end;
// the replay lists and files hold exactly what was sent, for both and for
// nobody else.
func TestEndToEndCall(t *testing.T) {
	s := startReal(t, t.TempDir())
	c := newAPIClient(t, s.URL())
	p, d, other := c.register("patient"), c.register("clinician"), c.register("patient")
	b := c.book(p, d)
	cid := b.ConsultationID

	pp, dp := newRTCPeer(t), newRTCPeer(t)
	seg := map[string]int{p.ID: c.rtcJoin(p, cid, pp), d.ID: c.rtcJoin(d, cid, dp)}
	if seg[p.ID] != 1 || seg[d.ID] != 1 {
		t.Errorf("first join segments %v, want 1", seg)
	}
	pp.waitConnected()
	dp.waitConnected()
	sent := map[string][][]byte{}
	talk(t, pp, dp, p, d, seg, sent, 40, 0)

	c.rtcSwitch(p, cid, pp)
	c.rtcSwitch(d, cid, dp)
	var cons consultation
	c.must(200, "GET", "/v1/consultations/"+cid, p.Token, nil, &cons)
	if cons.State != stateActive || !cons.Video {
		t.Errorf("after switch: %+v", cons)
	}
	talk(t, pp, dp, p, d, seg, sent, 20, 20)

	var e endJSON
	c.must(200, "POST", "/v1/consultations/"+cid+"/end", p.Token, nil, &e)
	if len(e.Tracks) != 4 {
		t.Errorf("end returned %d tracks, want 4: %+v", len(e.Tracks), e.Tracks)
	}
	c.must(409, "POST", "/v1/consultations/"+cid+"/end", d.Token, nil, nil)
	for _, u := range []testUser{p, d} {
		if got := listIDs(c.list(u)); !slices.Equal(got, []string{e.RecordingID}) {
			t.Errorf("%s lists %v, want [%s]", u.Role, got, e.RecordingID)
		}
	}
	if l := c.list(other); l.Count != 0 {
		t.Errorf("third user lists %v", listIDs(l))
	}
	checkReplay(c, p, e.RecordingID, sent, ackedFrames(e))
	checkReplay(c, d, e.RecordingID, sent, ackedFrames(e))

	// The other patient gets nothing by id.
	for _, path := range []string{"/v1/consultations/" + cid, "/v1/replays/" + e.RecordingID,
		"/v1/replays/" + e.RecordingID + "/media?track=" + e.Tracks[0].ID} {
		if r := c.do("GET", path, other.Token, nil); r.status != 404 || len(r.body) > 200 {
			t.Errorf("other patient GET %s: %d (%d bytes)", path, r.status, len(r.body))
		}
	}
	body := string(c.must(200, "GET", "/metrics", "", nil, nil).body)
	for _, want := range []string{"clinic_switches_total 2", "clinic_recordings_finalised_total 1", "clinic_calls_active 0", "clinic_media_"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestRealEngineErrors: the engine's refusals reach the client as 4xx JSON.
func TestRealEngineErrors(t *testing.T) {
	s := startReal(t, t.TempDir())
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	b := c.book(p, d)
	base := "/v1/consultations/" + b.ConsultationID
	for _, tc := range []struct {
		name, path, sdp string
		u               testUser
		status          int
		code            string
	}{
		{"unparsable sdp", "/join", "v=0\r\nthis is not sdp\r\n", p, 400, "bad_sdp"},
		{"no audio m-line", "/join", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", p, 400, "bad_sdp"},
	} {
		r := c.do("POST", base+tc.path, tc.u.Token, offerBody(tc.sdp))
		var ej errJSON
		r.json(t, &ej)
		if r.status != tc.status || ej.Error != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	pp := newRTCPeer(t)
	c.rtcJoin(p, b.ConsultationID, pp)
	// The clinician has not joined this active call: switch is a 409.
	dp := newRTCPeer(t)
	dp.addVideo()
	r := c.do("POST", base+"/video", d.Token, offerBody(dp.offer()))
	if r.status != 409 {
		t.Errorf("switch by a participant who has not joined: %d %s", r.status, r.body)
	}
	// A re-offer without video is refused; the call goes on.
	r = c.do("POST", base+"/video", p.Token, offerBody(pp.offer()))
	if r.status != 400 {
		t.Errorf("re-offer without video: %d %s", r.status, r.body)
	}
	c.must(200, "POST", base+"/end", d.Token, nil, nil)
}
