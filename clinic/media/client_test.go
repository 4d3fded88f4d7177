package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media/ivfreader"
	"github.com/pion/webrtc/v3/pkg/media/oggreader"

	"github.com/telechaos/telechaos/clinic/bugs"
)

// --- payload marker: our own, so the test does not lean on the harness ---

// A marked frame: [0x00 for video: keyframe byte] "TCX" call sender kind seq(4) pad.
const markMagic = "TCX"

type mark struct {
	call, sender byte
	kind         byte // 'a' or 'v'
	seq          uint32
}

func (m mark) payload() []byte {
	b := make([]byte, 0, 48)
	if m.kind == 'v' {
		b = append(b, 0x00) // VP8 frame tag byte: bit 0 clear = keyframe
	}
	b = append(b, markMagic...)
	b = append(b, m.call, m.sender, m.kind)
	b = binary.BigEndian.AppendUint32(b, m.seq)
	for len(b) < 40 {
		b = append(b, byte(len(b)))
	}
	return b
}

func parseMark(p []byte) (mark, bool) {
	if len(p) > 0 && p[0] == 0x00 {
		p = p[1:]
	}
	if len(p) < 10 || string(p[:3]) != markMagic {
		return mark{}, false
	}
	return mark{call: p[3], sender: p[4], kind: p[5], seq: binary.BigEndian.Uint32(p[6:10])}, true
}

// --- fake catalog ---

type grant struct{ recording, user string }

type fakeCatalog struct {
	mu       sync.Mutex
	opened   []TrackRecord
	progress map[string][2]int64
	grants   []grant
}

func newCatalog() *fakeCatalog { return &fakeCatalog{progress: map[string][2]int64{}} }

func (c *fakeCatalog) TrackOpened(t TrackRecord) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened = append(c.opened, t)
	return nil
}

func (c *fakeCatalog) TrackProgress(id string, frames, bytes int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress[id] = [2]int64{frames, bytes}
	return nil
}

func (c *fakeCatalog) GrantAccess(recordingID, userID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grants = append(c.grants, grant{recordingID, userID})
	return nil
}

func (c *fakeCatalog) tracks(kind string) []TrackRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []TrackRecord
	for _, t := range c.opened {
		if t.Kind == kind {
			out = append(out, t)
		}
	}
	return out
}

func (c *fakeCatalog) lastProgress(id string) [2]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress[id]
}

func (c *fakeCatalog) granted(g grant) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.grants {
		if x == g {
			return true
		}
	}
	return false
}

// --- engine and client helpers ---

func newEngine(t testing.TB, set *bugs.Set) (*Engine, *fakeCatalog) {
	t.Helper()
	cat := newCatalog()
	e, err := New(Config{DataDir: t.TempDir(), Bugs: set}, cat)
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, cat
}

func bugSet(t testing.TB, ids ...bugs.ID) *bugs.Set {
	t.Helper()
	specs := make([]string, len(ids))
	for i, id := range ids {
		specs[i] = string(id)
	}
	s, err := bugs.Parse(specs, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	clientAPIOnce sync.Once
	clientAPI     *webrtc.API
)

// testAPI is a plain client: no interceptors, loopback only.
func testAPI() *webrtc.API {
	clientAPIOnce.Do(func() {
		me := &webrtc.MediaEngine{}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCodec, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
			panic(err)
		}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: vp8Codec, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
			panic(err)
		}
		se := webrtc.SettingEngine{}
		se.SetIncludeLoopbackCandidate(true)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		clientAPI = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	})
	return clientAPI
}

// client is one participant's browser stand-in.
type client struct {
	t      testing.TB
	user   string
	callID byte
	tag    byte
	pc     *webrtc.PeerConnection
	audio  *webrtc.TrackLocalStaticRTP
	video  *webrtc.TrackLocalStaticRTP
	conn   chan struct{}
	seq    map[byte]uint32 // next mark sequence per kind, under mu

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	got    map[string][][]byte // kind -> payloads received (VP8 descriptor stripped)
}

func newClient(t testing.TB, user string, callID, tag byte) *client {
	t.Helper()
	pc, err := testAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, user: user, callID: callID, tag: tag, pc: pc, conn: make(chan struct{}),
		seq: map[byte]uint32{}, got: map[string][][]byte{}}
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(c.conn) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		c.wg.Add(1)
		c.mu.Unlock()
		defer c.wg.Done()
		k := tr.Kind().String()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			p := pkt.Payload
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				var vp codecs.VP8Packet
				if _, err := vp.Unmarshal(p); err != nil {
					continue
				}
				p = vp.Payload
			}
			c.mu.Lock()
			c.got[k] = append(c.got[k], bytes.Clone(p))
			c.mu.Unlock()
		}
	})
	c.audio, err = webrtc.NewTrackLocalStaticRTP(opusCodec, "audio", "telechaos")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(c.audio); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func (c *client) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	_ = c.pc.Close()
	c.wg.Wait()
}

func (c *client) offer(ctx context.Context) string {
	c.t.Helper()
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(o); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-g:
	case <-ctx.Done():
		c.t.Fatal("client gathering timed out")
	}
	return c.pc.LocalDescription().SDP
}

func (c *client) apply(answer string) {
	c.t.Helper()
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) join(ctx context.Context, e *Engine, call Call) int {
	c.t.Helper()
	answer, seg, err := e.Join(ctx, call, c.user, c.offer(ctx))
	if err != nil {
		c.t.Fatalf("join %s: %v", c.user, err)
	}
	c.apply(answer)
	return seg
}

// switchVideo re-offers on the same PeerConnection with a video transceiver.
func (c *client) switchVideo(ctx context.Context, e *Engine, consultationID string) {
	c.t.Helper()
	answer, err := c.switchOffer(ctx, e, consultationID)
	if err != nil {
		c.t.Fatalf("switch %s: %v", c.user, err)
	}
	c.apply(answer)
}

func (c *client) switchOffer(ctx context.Context, e *Engine, consultationID string) (string, error) {
	if c.video == nil {
		v, err := webrtc.NewTrackLocalStaticRTP(vp8Codec, "video", "telechaos")
		if err != nil {
			return "", err
		}
		if _, err := c.pc.AddTrack(v); err != nil {
			return "", err
		}
		c.video = v
	}
	return e.Switch(ctx, consultationID, c.user, c.offer(ctx))
}

func (c *client) waitConnected(ctx context.Context) {
	c.t.Helper()
	select {
	case <-c.conn:
	case <-ctx.Done():
		c.t.Fatalf("%s: not connected", c.user)
	}
}

// send writes n marked frames of kind 'a' or 'v' at the given interval and
// returns their payloads (as the recorder should store them).
func (c *client) send(kind byte, n int, every time.Duration) [][]byte {
	var out [][]byte
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range n {
		c.mu.Lock()
		seq := c.seq[kind]
		c.seq[kind]++
		c.mu.Unlock()
		frame := mark{call: c.callID, sender: c.tag, kind: kind, seq: seq}.payload()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(seq), Timestamp: (seq + 1) * 960}}
		track := c.audio
		if kind == 'v' {
			track = c.video
			pkt.Marker = true
			pkt.Timestamp = (seq + 1) * 6000
			pkt.Payload = append([]byte{0x10}, frame...) // VP8 descriptor: S=1
		} else {
			pkt.Payload = frame
		}
		if err := track.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			c.t.Errorf("%s: write rtp: %v", c.user, err)
		}
		out = append(out, frame)
		<-tick.C
	}
	return out
}

func (c *client) received(kind string) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.got[kind]...)
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
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitServerConnected waits until the engine's side of user's PeerConnection is connected.
func waitServerConnected(ctx context.Context, t testing.TB, e *Engine, consultationID, user string) {
	t.Helper()
	ok := waitFor(ctx, func() bool {
		e.mu.Lock()
		cl := e.calls[consultationID]
		e.mu.Unlock()
		if cl == nil {
			return false
		}
		p := cl.peer(user)
		return p != nil && p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	if !ok {
		t.Fatalf("engine side of %s/%s not connected", consultationID, user)
	}
}

// pair is one call with its two clients, joined and connected.
type pair struct {
	call     Call
	pat, cli *client
}

// newPair joins call number n (its marks carry byte(n) as the call tag).
func newPair(ctx context.Context, t testing.TB, e *Engine, n int) *pair {
	t.Helper()
	call := Call{
		ConsultationID: fmt.Sprintf("c_%02x", n),
		RecordingID:    fmt.Sprintf("r_%02x", n),
		Patient:        fmt.Sprintf("u_pat%02x", n),
		Clinician:      fmt.Sprintf("u_cli%02x", n),
	}
	p := &pair{call: call, pat: newClient(t, call.Patient, byte(n), 1), cli: newClient(t, call.Clinician, byte(n), 2)}
	p.pat.join(ctx, e, call)
	p.cli.join(ctx, e, call)
	p.connected(ctx, t, e)
	return p
}

func (p *pair) connected(ctx context.Context, t testing.TB, e *Engine) {
	for _, c := range []*client{p.pat, p.cli} {
		c.waitConnected(ctx)
		waitServerConnected(ctx, t, e, p.call.ConsultationID, c.user)
	}
}

// readOgg returns the Opus packets of an Ogg file (header pages skipped).
func readOgg(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatalf("ogg %s: %v", path, err)
	}
	var out [][]byte
	for {
		p, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("ogg %s: %v", path, err)
		}
		if bytes.HasPrefix(p, []byte("OpusTags")) {
			continue
		}
		out = append(out, p)
	}
}

func readIVF(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatalf("ivf %s: %v", path, err)
	}
	var out [][]byte
	for {
		p, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("ivf %s: %v", path, err)
		}
		out = append(out, p)
	}
}

// checkSubsequence asserts that got is sent in order with at most a few
// frames missing (maxLoss as a fraction), byte for byte.
func checkSubsequence(t testing.TB, what string, got, sent [][]byte, maxLoss float64) {
	t.Helper()
	i := 0
	for _, g := range got {
		for i < len(sent) && !bytes.Equal(sent[i], g) {
			i++
		}
		if i == len(sent) {
			m, _ := parseMark(g)
			t.Errorf("%s: frame %+v is not among the frames sent, in order", what, m)
			return
		}
		i++
	}
	if lost := len(sent) - len(got); float64(lost) > maxLoss*float64(len(sent)) {
		t.Errorf("%s: %d of %d frames missing", what, lost, len(sent))
	}
}
