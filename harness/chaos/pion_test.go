package chaos

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/rtp"
	"github.com/pion/transport/v2"
	"github.com/pion/webrtc/v3"
)

// newPionPeer makes a loopback-only PeerConnection, on n when n is not nil.
func newPionPeer(t *testing.T, n transport.Net) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	s := webrtc.SettingEngine{}
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetIncludeLoopbackCandidate(true)
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	if n != nil {
		s.SetNet(n) // the one line the driver needs (MediaOptions.Net)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(s))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// TestPionThroughImpairedNet: a real pion call whose client side uses
// MediaImpairment.Net connects (ICE, DTLS over the wrapped socket), and 20%
// RTP loss toward the other side is measured there as about 20%.
func TestPionThroughImpairedNet(t *testing.T) {
	if testing.Short() {
		t.Skip("webrtc call")
	}
	m := newImpairment(t, 11)
	client, server := newPionPeer(t, m.Net()), newPionPeer(t, nil)

	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "chaos")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	var received atomic.Int64
	readerDone := make(chan struct{})
	server.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		defer close(readerDone)
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			received.Add(1)
		}
	})
	connected := make(chan struct{})
	var once atomic.Bool
	client.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected && once.CompareAndSwap(false, true) {
			close(connected)
		}
	})

	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gc := webrtc.GatheringCompletePromise(client)
	if err := client.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gc
	if err := server.SetRemoteDescription(*client.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := server.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gs := webrtc.GatheringCompletePromise(server)
	if err := server.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gs
	if err := client.SetRemoteDescription(*server.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatalf("no connection through the impaired net (state %s)", client.ConnectionState())
	}
	if m.Stats().Up.Packets == 0 {
		t.Fatal("the client's packets did not go through the impaired net")
	}

	// Warm up until the server's track reader runs, then measure.
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 1}, Payload: make([]byte, 60)}
	sendN := func(n int) {
		for i := 0; i < n; i++ {
			pkt.SequenceNumber++
			pkt.Timestamp += 960
			if err := track.WriteRTP(pkt); err != nil {
				t.Fatalf("write rtp: %v", err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for received.Load() == 0 && time.Now().Before(deadline) {
		sendN(5)
	}
	if received.Load() == 0 {
		t.Fatal("no media reached the server before the fault")
	}
	time.Sleep(100 * time.Millisecond)
	base := received.Load()
	if err := m.Set("loss", Impairment{Loss: 0.2, Direction: DirUp, RTPOnly: true}); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	sendN(n)
	time.Sleep(300 * time.Millisecond)
	got := received.Load() - base
	loss := 1 - float64(got)/n
	t.Logf("pion call, 20%% upstream RTP loss: server received %d of %d (measured loss %.3f)", got, n, loss)
	if loss < 0.15 || loss > 0.25 {
		t.Errorf("measured loss %.3f, want 0.20 ±0.05", loss)
	}
	if s := client.ConnectionState(); s != webrtc.PeerConnectionStateConnected {
		t.Errorf("rtp-only loss broke the connection: %s", s)
	}
	client.Close()
	server.Close()
	select {
	case <-readerDone:
	case <-time.After(5 * time.Second):
		t.Error("server track reader did not stop")
	}
}
