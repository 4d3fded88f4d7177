package driver

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/telechaos/telechaos/models"
)

// BenchmarkPeerSetup measures one call's setup against the in-process
// clinic: two registrations, a booking, and for each participant a peer,
// offer, join, answer and wait for ICE+DTLS+SRTP. It reports
//   - ns/op: wall time per call set up (both participants, sequentially),
//   - clientB/peer, goroutines/peer: what one client Peer holds, measured as
//     the drop when the client peers of all open calls close (the clinic's
//     side stays up until its ICE timeout, so it is not counted),
//   - callB/call: heap of one open call, client and clinic side together.
func BenchmarkPeerSetup(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, h := startClinic(b, ctx)
	f, err := NewMediaFactory(MediaOptions{})
	if err != nil {
		b.Fatal(err)
	}
	heap := func() (uint64, int) {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc, runtime.NumGoroutine()
	}
	// Warm up connection pools and lazily built state.
	warm := setupCall(b, ctx, h, f)
	h0, _ := heap()

	b.ReportAllocs()
	b.ResetTimer()
	peers := make([]*Peer, 0, 2*b.N)
	for range b.N {
		peers = append(peers, setupCall(b, ctx, h, f)...)
	}
	b.StopTimer()

	h1, g1 := heap()
	for _, p := range peers {
		p.Close()
	}
	h2, g2 := heap()
	n := float64(len(peers))
	b.ReportMetric(float64(int64(h1)-int64(h2))/n, "clientB/peer")
	b.ReportMetric(float64(g1-g2)/n, "goroutines/peer")
	b.ReportMetric(float64(int64(h1)-int64(h0))/float64(b.N), "callB/call")
	for _, p := range warm {
		p.Close()
	}
}

func setupCall(b testing.TB, ctx context.Context, h *HTTPTarget, f *MediaFactory) []*Peer {
	pat, err := h.Register(ctx, models.Patient)
	if err != nil {
		b.Fatal(err)
	}
	cli, err := h.Register(ctx, models.Clinician)
	if err != nil {
		b.Fatal(err)
	}
	bk, err := h.Book(ctx, pat, cli.ID)
	if err != nil {
		b.Fatal(err)
	}
	var peers []*Peer
	for _, s := range []Session{pat, cli} {
		p, err := f.NewPeer(nil)
		if err != nil {
			b.Fatal(err)
		}
		peers = append(peers, p)
		offer, err := p.OfferAudio(ctx)
		if err != nil {
			b.Fatal(err)
		}
		answer, _, err := h.Join(ctx, s, bk.ConsultationID, offer)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Accept(answer); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range peers {
		if err := p.WaitConnected(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return peers
}
