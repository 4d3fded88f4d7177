package driver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telechaos/telechaos/models"
)

func TestPeerOfferShape(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := NewMediaFactory(MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.NewPeer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sdp, err := p.OfferAudio(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cands []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(l, "a=candidate:") {
			cands = append(cands, l)
			if !strings.Contains(l, " 127.0.0.1 ") || !strings.Contains(l, "typ host") || !strings.Contains(l, " udp ") {
				t.Errorf("candidate not loopback UDP host: %s", l)
			}
		}
	}
	if len(cands) == 0 {
		t.Errorf("offer has no candidates (gathering not waited for):\n%s", sdp)
	}
	for _, want := range []string{"a=rtpmap:111 opus/48000/2", "a=msid:telechaos audio", "a=sendrecv", "a=setup:actpass"} {
		if !strings.Contains(sdp, want) {
			t.Errorf("offer lacks %q", want)
		}
	}
	for _, bad := range []string{".local", "VP8", "transport-cc", "nack"} {
		if strings.Contains(sdp, bad) {
			t.Errorf("audio offer contains %q", bad)
		}
	}
}

func TestPeerMisuse(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := NewMediaFactory(MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.NewPeer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	if err := p.SendAudio(models.AudioFrame(models.Tag{}, 50)); !errors.Is(err, ErrNotReady) {
		t.Errorf("send before negotiation: %v, want ErrNotReady", err)
	}
	if _, err := p.OfferVideo(ctx); err == nil {
		t.Error("OfferVideo before join accepted")
	}
	if _, err := p.OfferAudio(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "not sdp", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"} {
		if err := p.Accept(bad); !errors.Is(err, ErrBadAnswer) {
			t.Errorf("Accept(%q) = %v, want ErrBadAnswer", bad, err)
		}
	}
	if err := p.SendAudio(nil); !errors.Is(err, ErrFrame) {
		t.Errorf("empty audio frame: %v", err)
	}
	if err := p.SendVideo(make([]byte, 5000)); !errors.Is(err, ErrFrame) {
		t.Errorf("oversized video frame: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer wcancel()
	if err := p.WaitConnected(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitConnected without an answer: %v, want deadline", err)
	}
	if s := p.Stats(); s != (PeerStats{}) {
		t.Errorf("stats after failed sends = %+v", s)
	}

	// Close wakes a waiter at once and everything after it fails cleanly.
	done := make(chan error, 1)
	go func() { done <- p.WaitConnected(ctx) }()
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("WaitConnected after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("WaitConnected did not return after Close")
	}
	if _, err := p.OfferAudio(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("OfferAudio after Close: %v", err)
	}
	if err := p.Accept("v=0"); !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// A participant that joins again gets a new segment; the clinic's answer
// works on a fresh PeerConnection.
func TestRejoinNewSegment(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, h := startClinic(t, ctx)
	f, err := NewMediaFactory(MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pat, err := h.Register(ctx, models.Patient)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := h.Register(ctx, models.Clinician)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := h.Book(ctx, pat, cli.ID)
	if err != nil {
		t.Fatal(err)
	}
	join := func() (*Peer, int) {
		t.Helper()
		p, err := f.NewPeer(nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		offer, err := p.OfferAudio(ctx)
		if err != nil {
			t.Fatal(err)
		}
		answer, seg, err := h.Join(ctx, pat, bk.ConsultationID, offer)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Accept(answer); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		return p, seg
	}
	p1, seg1 := join()
	if err := p1.SendAudio(models.AudioFrame(models.Tag{Seq: 1}, 50)); err != nil {
		t.Errorf("send on first connection: %v", err)
	}
	p1.Close()
	p2, seg2 := join()
	if seg2 <= seg1 {
		t.Errorf("rejoin segment %d, first %d: want a new, larger segment", seg2, seg1)
	}
	if err := p2.SendAudio(models.AudioFrame(models.Tag{Seq: 2}, 50)); err != nil {
		t.Errorf("send on second connection: %v", err)
	}
	// Stranger cannot join.
	stranger, err := h.Register(ctx, models.Patient)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Join(ctx, stranger, bk.ConsultationID, "v=0"); !IsDenied(err) {
		t.Errorf("stranger join: %v, want denied", err)
	}
}
