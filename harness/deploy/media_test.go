package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
)

// A minimal browser stand-in: loopback UDP4 only, non-trickle offers, one
// sendrecv Opus transceiver. Enough to prove the media path reaches the
// container through the pinned port and the advertised 127.0.0.1.
func newLoopbackPC(t *testing.T) (*webrtc.PeerConnection, <-chan struct{}) {
	t.Helper()
	opus := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opus, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("new peerconnection: %v", err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(opus, "audio", "deploy-test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatalf("add audio: %v", err)
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	return pc, connected
}

func postJSON(t *testing.T, url, token string, in, out any) int {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

// join makes a fresh PeerConnection join consultation cid and waits until it
// is connected (ICE over the pinned UDP port, then DTLS).
func join(t *testing.T, d *Deployment, u user, cid string) {
	t.Helper()
	pc, connected := newLoopbackPC(t)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatalf("create offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatalf("set local: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering timed out")
	}
	var ans struct{ Type, SDP string }
	if st := postJSON(t, d.URL()+"/v1/consultations/"+cid+"/join", u.Token,
		map[string]string{"type": "offer", "sdp": pc.LocalDescription().SDP}, &ans); st != http.StatusOK {
		t.Fatalf("join: status %d", st)
	}
	if want := fmt.Sprintf("127.0.0.1 %d typ host", d.UDPPort()); !strings.Contains(ans.SDP, want) {
		t.Errorf("answer has no host candidate %q:\n%s", want, ans.SDP)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP}); err != nil {
		t.Fatalf("set remote: %v", err)
	}
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatalf("not connected to the clinic in the container after 30s (state %s)", pc.ConnectionState())
	}
	// The path must be the published one, not the container's bridge IP.
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Errorf("no selected candidate pair: %v", err)
	} else if pair.Remote.Address != "127.0.0.1" || int(pair.Remote.Port) != d.UDPPort() {
		t.Errorf("media goes to %s:%d, want 127.0.0.1:%d", pair.Remote.Address, pair.Remote.Port, d.UDPPort())
	}
	_ = pc.Close()
}

// TestMediaThroughPinnedPort joins a call in the container from the host;
// after a stop/start a new PeerConnection joins again on the same port.
func TestMediaThroughPinnedPort(t *testing.T) {
	d := runClinic(t)
	patient := registerUser(t, d, "patient")
	clinician := registerUser(t, d, "clinician")
	var appt struct {
		ConsultationID string `json:"consultation_id"`
	}
	if st := postJSON(t, d.URL()+"/v1/appointments", patient.Token,
		map[string]string{"clinician_id": clinician.ID, "mode": "audio"}, &appt); st != http.StatusCreated || appt.ConsultationID == "" {
		t.Fatalf("book: status %d, consultation %q", st, appt.ConsultationID)
	}
	start := time.Now()
	join(t, d, patient, appt.ConsultationID)
	t.Logf("join until connected: %v", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := d.UDPPort()
	if err := d.Stop(ctx, 5*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	if d.UDPPort() != port {
		t.Errorf("udp port %d after restart, want %d", d.UDPPort(), port)
	}
	join(t, d, clinician, appt.ConsultationID)
}
