package driver

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telechaos/telechaos/clinic"
	"github.com/telechaos/telechaos/models"
)

// frameLog collects what one peer receives live.
type frameLog struct {
	mu     sync.Mutex
	frames map[models.Kind][][]byte
}

func (l *frameLog) on(kind models.Kind, payload []byte, _ time.Time) {
	l.mu.Lock()
	if l.frames == nil {
		l.frames = map[models.Kind][][]byte{}
	}
	l.frames[kind] = append(l.frames[kind], payload)
	l.mu.Unlock()
}

func (l *frameLog) get(kind models.Kind) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.frames[kind]...)
}

// participant is one side of a test call.
type participant struct {
	s    Session
	peer *Peer
	log  frameLog
	sent map[models.Kind][][]byte
	seq  map[models.Kind]uint32
}

func (p *participant) send(t *testing.T, kind models.Kind, cid string) {
	t.Helper()
	tag := models.Tag{Consultation: models.TagOf(cid), Sender: models.TagOf(p.s.ID), Seq: p.seq[kind]}
	var f []byte
	var err error
	if kind == models.Audio {
		f = models.AudioFrame(tag, 60+int(tag.Seq%100))
		err = p.peer.SendAudio(f)
	} else {
		f = models.VideoFrame(tag, 200+int(tag.Seq*53%700))
		err = p.peer.SendVideo(f)
	}
	if err != nil {
		t.Fatalf("%s send %s %d: %v", p.s.Role, kind, tag.Seq, err)
	}
	p.seq[kind]++
	p.sent[kind] = append(p.sent[kind], f)
}

func startClinic(t testing.TB, ctx context.Context) (*clinic.Server, *HTTPTarget) {
	t.Helper()
	srv, err := clinic.Start(ctx, clinic.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), UDPPort: 0, AdvertisedIP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHTTP(srv.URL(), HTTPOptions{})
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("clinic close: %v", err)
		}
	})
	return srv, h
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(ctx context.Context, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestCallAgainstClinic runs one full call against the in-process reference
// clinic: register, book, join both, audio, switch both to video, end, list,
// replay and media, and checks every frame, live and recorded.
func TestCallAgainstClinic(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	_, h := startClinic(t, ctx)

	f, err := NewMediaFactory(MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pat, cli participant
	for _, p := range []*participant{&pat, &cli} {
		p.sent, p.seq = map[models.Kind][][]byte{}, map[models.Kind]uint32{}
	}
	if pat.s, err = h.Register(ctx, models.Patient); err != nil {
		t.Fatal(err)
	}
	if cli.s, err = h.Register(ctx, models.Clinician); err != nil {
		t.Fatal(err)
	}
	bk, err := h.Book(ctx, pat.s, cli.s.ID)
	if err != nil {
		t.Fatal(err)
	}
	cid := bk.ConsultationID
	if bk.PatientID != pat.s.ID || bk.ClinicianID != cli.s.ID {
		t.Errorf("booking = %+v", bk)
	}

	for _, p := range []*participant{&pat, &cli} {
		if p.peer, err = f.NewPeer(p.log.on); err != nil {
			t.Fatal(err)
		}
		defer p.peer.Close()
		offer, err := p.peer.OfferAudio(ctx)
		if err != nil {
			t.Fatal(err)
		}
		answer, seg, err := h.Join(ctx, p.s, cid, offer)
		if err != nil {
			t.Fatalf("%s join: %v", p.s.Role, err)
		}
		if seg < 0 {
			t.Errorf("segment %d", seg)
		}
		if err := p.peer.Accept(answer); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*participant{&pat, &cli} {
		if err := p.peer.WaitConnected(ctx); err != nil {
			t.Fatalf("%s: %v", p.s.Role, err)
		}
	}
	ci, err := h.Consultation(ctx, pat.s, cid)
	if err != nil || ci.State != "active" || ci.Video {
		t.Errorf("consultation after join = %+v, %v", ci, err)
	}

	// The clinic forwards a participant's audio once the other side's
	// outgoing track is bound, a moment after both connect: frames sent
	// before that are rightly not forwarded live (the recording keeps them).
	// Warm up until each side hears the other; only warm-up frames may be
	// missing live (1 run in 8 lost the first frame without this).
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	for wctx.Err() == nil && (len(pat.log.get(models.Audio)) == 0 || len(cli.log.get(models.Audio)) == 0) {
		pat.send(t, models.Audio, cid)
		cli.send(t, models.Audio, cid)
		time.Sleep(20 * time.Millisecond)
	}
	wcancel()
	time.Sleep(100 * time.Millisecond) // the warm-up's frames in flight land
	lostAtPat := len(cli.sent[models.Audio]) - len(pat.log.get(models.Audio))
	lostAtCli := len(pat.sent[models.Audio]) - len(cli.log.get(models.Audio))

	const nAudio, nVideo = 40, 30
	for range nAudio {
		pat.send(t, models.Audio, cid)
		cli.send(t, models.Audio, cid)
		time.Sleep(3 * time.Millisecond)
	}
	checkLive(t, ctx, &pat, &cli, models.Audio, len(cli.sent[models.Audio])-lostAtPat)
	checkLive(t, ctx, &cli, &pat, models.Audio, len(pat.sent[models.Audio])-lostAtCli)

	for _, p := range []*participant{&pat, &cli} {
		offer, err := p.peer.OfferVideo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		answer, err := h.SwitchVideo(ctx, p.s, cid, offer)
		if err != nil {
			t.Fatalf("%s switch: %v", p.s.Role, err)
		}
		if err := p.peer.Accept(answer); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pat.peer.OfferVideo(ctx); err == nil {
		t.Error("second OfferVideo accepted")
	}
	for i := range nVideo {
		pat.send(t, models.Video, cid)
		cli.send(t, models.Video, cid)
		if i%2 == 0 {
			pat.send(t, models.Audio, cid)
			cli.send(t, models.Audio, cid)
		}
		time.Sleep(3 * time.Millisecond)
	}
	checkLive(t, ctx, &pat, &cli, models.Video, nVideo)
	checkLive(t, ctx, &cli, &pat, models.Video, nVideo)
	checkLive(t, ctx, &pat, &cli, models.Audio, len(cli.sent[models.Audio])-lostAtPat)

	st := pat.peer.Stats()
	if st.AudioSent != int64(len(pat.sent[models.Audio])) || st.VideoSent != nVideo || st.VideoReceived < nVideo || st.AudioReceived < nAudio {
		t.Errorf("patient stats = %+v", st)
	}

	// Let the last packets reach the recorder before hanging up.
	time.Sleep(200 * time.Millisecond)
	end, err := h.End(ctx, cli.s, cid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.End(ctx, pat.s, cid); StatusCode(err) != 409 {
		t.Errorf("second end: %v, want 409", err)
	}
	acked := map[string]TrackInfo{}
	for _, tr := range end.Tracks {
		acked[tr.ID] = tr
	}

	for _, p := range []*participant{&pat, &cli} {
		list, err := h.ListReplays(ctx, p.s)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != end.RecordingID || list[0].ConsultationID != cid {
			t.Fatalf("%s list = %+v", p.s.Role, list)
		}
	}
	rp, err := h.GetReplay(ctx, pat.s, end.RecordingID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.Tracks) != 4 {
		t.Errorf("replay has %d tracks, want 4 (audio+video per participant): %+v", len(rp.Tracks), rp.Tracks)
	}
	owners := map[string]*participant{pat.s.ID: &pat, cli.s.ID: &cli}
	for _, tr := range rp.Tracks {
		b, err := h.FetchMedia(ctx, cli.s, rp.ID, tr.ID)
		if err != nil {
			t.Errorf("media %s: %v", tr.ID, err)
			continue
		}
		var frames [][]byte
		if tr.Format == "ogg" {
			frames, err = ReadOgg(b)
		} else {
			frames, err = ReadIVF(b)
		}
		if err != nil {
			t.Errorf("track %s (%s): %v", tr.ID, tr.Format, err)
			continue
		}
		t.Logf("track %s %s %s segment %d: %d frames, %d bytes", tr.ID, tr.Owner, tr.Kind, tr.Segment, len(frames), len(b))
		o := owners[tr.Owner]
		if o == nil {
			t.Errorf("track %s owner %q is not a participant", tr.ID, tr.Owner)
			continue
		}
		equalFrames(t, fmt.Sprintf("recorded %s %s", o.s.Role, tr.Kind), frames, o.sent[models.Kind(tr.Kind)])
		if a, ok := acked[tr.ID]; !ok || a.Frames != len(frames) {
			t.Errorf("track %s: end acknowledged %+v, file holds %d frames", tr.ID, a, len(frames))
		}
	}

	// Someone else gets nothing.
	other, err := h.Register(ctx, models.Patient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.GetReplay(ctx, other, rp.ID); !IsDenied(err) {
		t.Errorf("stranger GetReplay: %v, want denied", err)
	}
	if list, err := h.ListReplays(ctx, other); err != nil || len(list) != 0 {
		t.Errorf("stranger list = %v, %v", list, err)
	}

	for _, p := range []*participant{&pat, &cli} {
		if err := p.peer.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := p.peer.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	}
	if err := pat.peer.SendAudio([]byte("x")); err == nil {
		t.Error("send after close succeeded")
	}
}

// checkLive waits until rx received n frames of kind, then checks that every
// frame received came from tx in this consultation, in tx's order.
func checkLive(t *testing.T, ctx context.Context, rx, tx *participant, kind models.Kind, n int) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	waitFor(wctx, func() bool { return len(rx.log.get(kind)) >= n })
	got := rx.log.get(kind)
	if len(got) < n {
		t.Errorf("%s received %d live %s frames from %s, want %d", rx.s.Role, len(got), kind, tx.s.Role, n)
	}
	sent := tx.sent[kind]
	for i, f := range got {
		tag, _, err := models.FindTag(f)
		if err != nil || tag.Sender != models.TagOf(tx.s.ID) || tag.Kind != kind {
			t.Errorf("%s live %s frame %d: tag %+v, %v", rx.s.Role, kind, i, tag, err)
			return
		}
		if int(tag.Seq) >= len(sent) || string(sent[tag.Seq]) != string(f) {
			t.Errorf("%s live %s frame %d (seq %d) differs from what was sent", rx.s.Role, kind, i, tag.Seq)
			return
		}
	}
}
