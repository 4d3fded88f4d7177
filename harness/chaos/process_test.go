package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/telechaos/telechaos/clinic"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/models"

	"github.com/telechaos/telechaos/harness/embedded"
)

// call is one consultation of the process tests, driven through the proxy.
type call struct {
	cid    string
	users  [2]driver.Session
	peers  [2]*driver.Peer
	frames int
}

// startCall books and joins a call with both participants and sends n audio
// frames from each.
func startCall(t *testing.T, ctx context.Context, h *driver.HTTPTarget, mf *driver.MediaFactory, p, d driver.Session, cid string, n int) *call {
	t.Helper()
	c := &call{cid: cid, users: [2]driver.Session{p, d}}
	for i, s := range c.users {
		peer, err := mf.NewPeer(nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { peer.Close() })
		offer, err := peer.OfferAudio(ctx)
		if err != nil {
			t.Fatal(err)
		}
		answer, _, err := h.Join(ctx, s, cid, offer)
		if err != nil {
			t.Fatalf("join %s: %v", s.Role, err)
		}
		if err := peer.Accept(answer); err != nil {
			t.Fatal(err)
		}
		c.peers[i] = peer
	}
	for _, peer := range c.peers {
		if err := peer.WaitConnected(ctx); err != nil {
			t.Fatalf("connect: %v", err)
		}
	}
	for k := 0; k < n; k++ {
		for i, peer := range c.peers {
			tag := models.Tag{Consultation: models.TagOf(cid), Sender: models.TagOf(c.users[i].ID), Seq: uint32(c.frames)}
			if err := peer.SendAudio(models.AudioFrame(tag, 60)); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		c.frames++
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the last frames reach the recorder
	return c
}

// snapshot is what a participant sees of their replays: id -> track id -> bytes.
func snapshot(t *testing.T, ctx context.Context, h *driver.HTTPTarget, s driver.Session) map[string]map[string][]byte {
	t.Helper()
	list, err := h.ListReplays(ctx, s)
	if err != nil {
		t.Fatalf("list replays: %v", err)
	}
	out := map[string]map[string][]byte{}
	for _, r := range list {
		rep, err := h.GetReplay(ctx, s, r.ID)
		if err != nil {
			t.Fatalf("get replay %s: %v", r.ID, err)
		}
		out[r.ID] = map[string][]byte{}
		for _, tr := range rep.Tracks {
			b, err := h.FetchMedia(ctx, s, r.ID, tr.ID)
			if err != nil {
				t.Fatalf("fetch %s/%s: %v", r.ID, tr.ID, err)
			}
			out[r.ID][tr.ID] = b
		}
	}
	return out
}

func sameReplays(a, b map[string]map[string][]byte) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d replays, then %d", len(a), len(b))
	}
	for id, tracks := range a {
		other, ok := b[id]
		if !ok {
			return fmt.Errorf("replay %s gone", id)
		}
		if len(other) != len(tracks) {
			return fmt.Errorf("replay %s: %d tracks, then %d", id, len(tracks), len(other))
		}
		for tid, bs := range tracks {
			if !bytes.Equal(bs, other[tid]) {
				return fmt.Errorf("replay %s track %s: %d bytes, then %d different bytes", id, tid, len(bs), len(other[tid]))
			}
		}
	}
	return nil
}

// TestClinicRestartAndCrash: a finished recording is listed with the same
// bytes after a graceful restart and after a crash, through the same proxy
// front although the clinic's ports changed; a call in flight at the crash
// rejoins (segment 2) with new PeerConnections and ends.
func TestClinicRestartAndCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("real clinic")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cfg := clinic.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), AdvertisedIP: "127.0.0.1"}
	ec, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ec.Close(); err != nil {
			t.Errorf("close clinic: %v", err)
		}
	}()
	proxy := newProxy(t, ec.URL())
	h, err := driver.NewHTTP(proxy.URL(), driver.HTTPOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mf, err := driver.NewMediaFactory(driver.MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Register(ctx, models.Patient)
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.Register(ctx, models.Clinician)
	if err != nil {
		t.Fatal(err)
	}
	b1, err := h.Book(ctx, p, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	c1 := startCall(t, ctx, h, mf, p, d, b1.ConsultationID, 25)
	end1, err := h.End(ctx, p, c1.cid)
	if err != nil {
		t.Fatalf("end: %v", err)
	}
	before := snapshot(t, ctx, h, d)
	if _, ok := before[end1.RecordingID]; !ok || len(before[end1.RecordingID]) != 2 {
		t.Fatalf("finished recording %s not listed with 2 tracks: %v", end1.RecordingID, slices.Collect(maps.Keys(before)))
	}

	rec, _ := NewRecorder(nil)
	env := Env{Proxy: proxy, Target: ec, Recorder: rec}
	oldURL := ec.URL()
	restarts := 0
	for _, crash := range []bool{false, true} {
		f := NewClinicFault(fmt.Sprintf("clinic-crash-%v", crash), crash, 0, 0, ec, proxy)
		if err := f.Available(env); err != nil {
			t.Fatal(err)
		}
		f.OnRestart(func(string) { restarts++ })
		var inflight *call
		if crash {
			b2, err := h.Book(ctx, p, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			inflight = startCall(t, ctx, h, mf, p, d, b2.ConsultationID, 15)
		}
		id := rec.Begin(f.Name(), f.Params(), "test")
		err := f.Inject(ctx)
		rec.End(id, errors.Join(err, f.Heal(ctx)))
		if err != nil {
			t.Fatalf("restart (crash %v): %v", crash, err)
		}
		if ec.URL() == oldURL {
			t.Logf("crash %v: clinic came back on the same port %s", crash, oldURL)
		}
		if proxy.Upstream() != ec.URL()[len("http://"):] {
			t.Errorf("proxy forwards to %s, clinic is at %s", proxy.Upstream(), ec.URL())
		}
		after := snapshot(t, ctx, h, d)
		if err := sameReplays(before, after); err != nil {
			t.Errorf("after restart (crash %v) through the same front %s: %v", crash, proxy.URL(), err)
		}
		if inflight != nil {
			for _, peer := range inflight.peers {
				peer.Close() // its DTLS state died with the clinic
			}
			startCall(t, ctx, h, mf, p, d, inflight.cid, 10)
			end2, err := h.End(ctx, d, inflight.cid)
			if err != nil {
				t.Fatalf("end after rejoin: %v", err)
			}
			segs := map[int]int{}
			for _, tr := range end2.Tracks {
				segs[tr.Segment]++
			}
			if segs[2] != 2 {
				t.Errorf("call in flight at the crash: tracks by segment %v, want two of segment 2", segs)
			}
			if l, err := h.ListReplays(ctx, p); err != nil || !slices.ContainsFunc(l, func(r driver.ReplaySummary) bool { return r.ID == end2.RecordingID }) {
				t.Errorf("recording of the call that survived the crash not listed: %v %v", l, err)
			}
		}
		oldURL = ec.URL()
	}
	if restarts != 2 || ec.Restarts() != 2 {
		t.Errorf("restarts seen %d, clinic restarts %d, want 2", restarts, ec.Restarts())
	}
	ws := rec.Windows()
	if len(ws) != 2 || ws[0].Open() || ws[1].Err != "" || ws[1].Params[ParamLoss] != "1" {
		t.Errorf("windows %+v", ws)
	}
}

// TestClinicFaultDownTime: with down time the clinic is unreachable through
// the proxy during the window and back after it.
func TestClinicFaultDownTime(t *testing.T) {
	if testing.Short() {
		t.Skip("real clinic")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ec, err := embedded.Start(ctx, clinic.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	proxy := newProxy(t, ec.URL())
	h, err := driver.NewHTTP(proxy.URL(), driver.HTTPOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f := NewClinicFault("clinic-crash", true, 500*time.Millisecond, 0, ec, proxy)
	done := make(chan error)
	st := time.Now()
	go func() { done <- f.Inject(ctx) }()
	deadline := time.Now().Add(400 * time.Millisecond)
	sawDown := false
	for time.Now().Before(deadline) && !sawDown {
		sawDown = h.Health(ctx) != nil
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(st); took < 500*time.Millisecond {
		t.Errorf("inject with 500ms down time took %s", took)
	}
	if !sawDown {
		t.Error("the clinic never looked down during its down time")
	}
	if err := h.Health(ctx); err != nil {
		t.Errorf("after the window: %v", err)
	}
	if err := (&ClinicFault{target: nil}).Available(Env{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no target: %v", err)
	}
}
