package clinic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media/ivfreader"
	"github.com/pion/webrtc/v3/pkg/media/oggreader"
)

// A participant's browser stand-in: pion without interceptors, loopback only,
// non-trickle offers, RTP written by hand so payloads are known byte for byte.

var (
	testOpus = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}
	testVP8  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}

	rtcAPIOnce sync.Once
	rtcAPI     *webrtc.API
)

func testRTCAPI() *webrtc.API {
	rtcAPIOnce.Do(func() {
		me := &webrtc.MediaEngine{}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: testOpus, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
			panic(err)
		}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: testVP8, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
			panic(err)
		}
		se := webrtc.SettingEngine{}
		se.SetIncludeLoopbackCandidate(true)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		rtcAPI = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	})
	return rtcAPI
}

type rtcPeer struct {
	t         testing.TB
	pc        *webrtc.PeerConnection
	audio     *webrtc.TrackLocalStaticRTP
	video     *webrtc.TrackLocalStaticRTP
	connected chan struct{}
	wg        sync.WaitGroup

	mu  sync.Mutex
	seq map[string]uint16
	ts  map[string]uint32
	got map[string][][]byte // kind -> payloads received (VP8 descriptor stripped)
}

func newRTCPeer(t testing.TB) *rtcPeer {
	t.Helper()
	pc, err := testRTCAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("new peerconnection: %v", err)
	}
	p := &rtcPeer{t: t, pc: pc, connected: make(chan struct{}), seq: map[string]uint16{}, ts: map[string]uint32{},
		got: map[string][][]byte{}}
	t.Cleanup(p.close)
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(p.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		kind := tr.Kind().String()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				payload := pkt.Payload
				if kind == "video" {
					var vp codecs.VP8Packet
					if b, err := vp.Unmarshal(pkt.Payload); err == nil {
						payload = b
					}
				}
				p.mu.Lock()
				p.got[kind] = append(p.got[kind], append([]byte(nil), payload...))
				p.mu.Unlock()
			}
		}()
	})
	p.audio, err = webrtc.NewTrackLocalStaticRTP(testOpus, "audio", "telechaos")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(p.audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatalf("add audio: %v", err)
	}
	return p
}

func (p *rtcPeer) close() {
	p.pc.Close()
	p.wg.Wait()
}

// offer makes a complete (gathered) offer.
func (p *rtcPeer) offer() string {
	p.t.Helper()
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.t.Fatalf("create offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(o); err != nil {
		p.t.Fatalf("set local: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		p.t.Fatal("ICE gathering timed out")
	}
	return p.pc.LocalDescription().SDP
}

func (p *rtcPeer) answer(sdp string) {
	p.t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.t.Fatalf("set answer: %v", err)
	}
}

// addVideo adds the sendrecv VP8 transceiver for the switch re-offer.
func (p *rtcPeer) addVideo() {
	p.t.Helper()
	var err error
	p.video, err = webrtc.NewTrackLocalStaticRTP(testVP8, "video", "telechaos")
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.pc.AddTransceiverFromTrack(p.video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		p.t.Fatalf("add video: %v", err)
	}
}

func (p *rtcPeer) waitConnected() {
	p.t.Helper()
	select {
	case <-p.connected:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("peer not connected (state %s)", p.pc.ConnectionState())
	}
}

// send writes n frames of kind ("audio" or "video") tagged with tag and
// returns the frames as the recorder should store them.
func (p *rtcPeer) send(kind, tag string, n int, gap time.Duration) [][]byte {
	p.t.Helper()
	var frames [][]byte
	for i := range n {
		frame := []byte(fmt.Sprintf("%s|%s|%04d|padding-padding", kind[:1], tag, i))
		track, pt, step := p.audio, uint8(111), uint32(960)
		payload := frame
		if kind == "video" {
			frame = append([]byte{0x00}, frame...) // VP8 frame tag: bit 0 clear = keyframe
			track, pt, step = p.video, 96, 3000
			payload = append([]byte{0x10}, frame...) // VP8 payload descriptor, S=1, partition 0
		}
		p.mu.Lock() // audio and video are sent from different goroutines
		p.seq[kind]++
		p.ts[kind] += step
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: p.seq[kind],
			Timestamp: p.ts[kind], Marker: kind == "video"}, Payload: payload}
		p.mu.Unlock()
		if err := track.WriteRTP(pkt); err != nil {
			p.t.Errorf("write %s: %v", kind, err)
			return frames
		}
		frames = append(frames, frame)
		time.Sleep(gap)
	}
	return frames
}

func (p *rtcPeer) received(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got[kind])
}

// waitReceivedLast waits until the peer got frame last of kind. The clinic
// records a frame before forwarding it and handles a track's frames in order,
// so by then the recorder holds everything sent before it. (Live forwarding
// may drop a frame right after a join, so counting received frames would not
// do.)
func (p *rtcPeer) waitReceivedLast(kind string, last []byte) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p.mu.Lock()
		got := p.got[kind]
		found := len(got) > 0 && bytes.Equal(got[len(got)-1], last)
		for i := len(got) - 1; !found && i >= 0 && i >= len(got)-5; i-- {
			found = bytes.Equal(got[i], last)
		}
		n := len(got)
		p.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			p.t.Errorf("the last %s frame sent never arrived (%d received)", kind, n)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// join posts the peer's offer and applies the answer; it returns the segment.
func (c *apiClient) rtcJoin(u testUser, cid string, p *rtcPeer) int {
	c.t.Helper()
	var ans sdpMessage
	c.must(200, "POST", "/v1/consultations/"+cid+"/join", u.Token, offerBody(p.offer()), &ans)
	if ans.Type != "answer" || ans.Segment == nil {
		c.t.Fatalf("join answer %+v", ans)
	}
	p.answer(ans.SDP)
	return *ans.Segment
}

func (c *apiClient) rtcSwitch(u testUser, cid string, p *rtcPeer) {
	c.t.Helper()
	p.addVideo()
	var ans sdpMessage
	c.must(200, "POST", "/v1/consultations/"+cid+"/video", u.Token, offerBody(p.offer()), &ans)
	p.answer(ans.SDP)
}

// readOggPackets returns the Opus packets of an Ogg file (headers skipped).
func readOggPackets(t testing.TB, data []byte) [][]byte {
	t.Helper()
	r, _, err := oggreader.NewWith(bytes.NewReader(data))
	if err != nil {
		t.Errorf("ogg header: %v", err)
		return nil
	}
	var out [][]byte
	for {
		payload, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Errorf("ogg page %d: %v", len(out), err)
			return out
		}
		if bytes.HasPrefix(payload, []byte("OpusTags")) {
			continue
		}
		out = append(out, payload)
	}
}

func readIVFFrames(t testing.TB, data []byte) [][]byte {
	t.Helper()
	r, _, err := ivfreader.NewWith(bytes.NewReader(data))
	if err != nil {
		t.Errorf("ivf header: %v", err)
		return nil
	}
	var out [][]byte
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Errorf("ivf frame %d: %v", len(out), err)
			return out
		}
		out = append(out, frame)
	}
}

func equalFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// startReal runs the clinic as the harness does: real engine, ephemeral ports.
func startReal(t testing.TB, dir string, bugSpecs ...string) *Server {
	t.Helper()
	s, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: dir, UDPPort: 0, Bugs: bugSpecs})
	if err != nil {
		t.Fatalf("start clinic: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fetchTrackFrames downloads a track and parses it per its format.
func (c *apiClient) fetchTrackFrames(u testUser, rid string, tr trackJSON) [][]byte {
	c.t.Helper()
	r := c.must(200, "GET", "/v1/replays/"+rid+"/media?track="+tr.ID, u.Token, nil, nil)
	switch tr.Format {
	case "ogg":
		if ct := r.header.Get("Content-Type"); ct != "audio/ogg" {
			c.t.Errorf("track %s content type %q", tr.ID, ct)
		}
		return readOggPackets(c.t, r.body)
	case "ivf":
		if ct := r.header.Get("Content-Type"); ct != "video/x-ivf" {
			c.t.Errorf("track %s content type %q", tr.ID, ct)
		}
		return readIVFFrames(c.t, r.body)
	}
	c.t.Errorf("track %s has format %q", tr.ID, tr.Format)
	return nil
}
