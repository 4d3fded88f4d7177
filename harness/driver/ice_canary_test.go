package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/sdp/v3"
	"github.com/pion/stun"
	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
	"github.com/pion/webrtc/v3"
	"go.uber.org/goleak"
)

// canary is a UDP socket on 127.0.0.2, an address that is not the target:
// every datagram it receives is traffic the harness must never send.
type canary struct {
	conn  *net.UDPConn
	port  int
	n     atomic.Int64
	mu    sync.Mutex
	from  []string
	done  chan struct{}
	close sync.Once
}

func newCanary(t *testing.T) *canary {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("cannot bind a canary on 127.0.0.2 (needs Linux's 127/8 loopback): %v", err)
	}
	c := &canary{conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 2048)
		for {
			_, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			c.n.Add(1)
			c.mu.Lock()
			c.from = append(c.from, from.String())
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.stop)
	return c
}

// count reads until the deadline (now + grace) and returns what arrived over
// the canary's whole life.
func (c *canary) count(grace time.Duration) (int64, []string) {
	_ = c.conn.SetReadDeadline(time.Now().Add(grace))
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n.Load(), append([]string(nil), c.from...)
}

func (c *canary) stop() {
	c.close.Do(func() { c.conn.Close() })
	<-c.done
}

// answerer is a plain pion peer on loopback standing in for the target.
type answerer struct{ pc *webrtc.PeerConnection }

func newAnswerer(t *testing.T) *answerer {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	s := webrtc.SettingEngine{}
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetIncludeLoopbackCandidate(true)
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return &answerer{pc: pc}
}

// answer answers offer with a complete (gathered) answer.
func (a *answerer) answer(t *testing.T, ctx context.Context, offer string) string {
	t.Helper()
	if err := a.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	ans, err := a.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(a.pc)
	if err := a.pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("answerer gathering:", ctx.Err())
	}
	return a.pc.LocalDescription().SDP
}

// hostile rewrites an answer: it adds, at session level and first in every
// media section, a top-priority host candidate for the canary and an mDNS
// one; with only, it also removes the answer's own candidates.
func hostile(t *testing.T, answer string, port int, only bool) string {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		t.Fatal(err)
	}
	foreign := []sdp.Attribute{
		sdp.NewAttribute("candidate", fmt.Sprintf("900 1 udp 2130706431 127.0.0.2 %d typ host", port)),
		sdp.NewAttribute("candidate", fmt.Sprintf("901 1 udp 2130706430 canary-%d.local %d typ host", port, port)),
	}
	d.Attributes = append(d.Attributes, foreign[0])
	for _, m := range d.MediaDescriptions {
		var attrs []sdp.Attribute
		for _, a := range m.Attributes {
			if only && a.IsICECandidate() {
				continue
			}
			attrs = append(attrs, a)
		}
		m.Attributes = append(append([]sdp.Attribute(nil), foreign...), attrs...)
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), fmt.Sprintf("127.0.0.2 %d typ host", port)) {
		t.Fatalf("rewrite lost the canary candidate:\n%s", b)
	}
	return string(b)
}

const canaryGrace = 1500 * time.Millisecond // pion checks a pair every 200 ms while connecting

// iceBudget bounds one canary test: a safety net for a hung connection,
// generous so a loaded machine never reaches it (loopback ICE takes well
// under a second); the assertions are the counts, never the time.
const iceBudget = 2 * time.Minute

// iceTest returns the test's context (iceBudget) and checks at its end that
// no goroutine of pion's outlived the test.
func iceTest(t *testing.T) context.Context {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), iceBudget)
	t.Cleanup(cancel)
	return ctx
}

// audioOffer opens a peer of f, closed when the test ends, and its first
// (audio) offer.
func audioOffer(t *testing.T, ctx context.Context, f *MediaFactory) (*Peer, string) {
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
	return p, offer
}

func iceFactory(t *testing.T, ctx context.Context) *MediaFactory {
	t.Helper()
	allowed, err := DefaultAllowedRemote(ctx, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewMediaFactory(MediaOptions{AllowedRemote: allowed})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestICECanaryForeignCandidateNotContacted: an answer naming 127.0.0.2
// (and an mDNS name) next to the real candidate still connects, through the
// real one, and the canary on 127.0.0.2 hears nothing for the call's life,
// including an audio→video renegotiation whose answer names it again.
func TestICECanaryForeignCandidateNotContacted(t *testing.T) {
	ctx := iceTest(t)
	c := newCanary(t)
	a := newAnswerer(t)
	f := iceFactory(t, ctx)
	p, offer := audioOffer(t, ctx, f)
	if err := p.Accept(hostile(t, a.answer(t, ctx, offer), c.port, false)); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if rd := p.pc.RemoteDescription().SDP; strings.Contains(rd, "127.0.0.2") || strings.Contains(rd, ".local") {
		t.Errorf("applied answer still holds the foreign candidates:\n%s", rd)
	}
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote.Address != "127.0.0.1" {
		t.Errorf("selected pair = %v, %v; want the remote 127.0.0.1", pair, err)
	}

	offer, err = p.OfferVideo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Accept(hostile(t, a.answer(t, ctx, offer), c.port, false)); err != nil {
		t.Fatal(err)
	}
	if rd := p.pc.RemoteDescription().SDP; strings.Contains(rd, "127.0.0.2") {
		t.Errorf("applied re-answer still holds the foreign candidate:\n%s", rd)
	}
	if err := p.SendVideo([]byte("frame")); err != nil && !errors.Is(err, ErrNotReady) {
		t.Fatal(err)
	}

	n, from := c.count(canaryGrace)
	t.Logf("canary on 127.0.0.2:%d received %d datagrams", c.port, n)
	if n != 0 {
		t.Errorf("canary received %d datagrams from %v; the harness contacted a foreign candidate", n, from)
	}
	if s := p.State(); s != webrtc.PeerConnectionStateConnected {
		t.Errorf("state after the grace = %s, want connected (the call was alive while the canary listened)", s)
	}
}

// TestICECanaryControl proves the canary can see what the driver stops: a
// plain pion offerer (no filter, no guard) given the same hostile answer
// checks 127.0.0.2.
func TestICECanaryControl(t *testing.T) {
	ctx := iceTest(t)
	c := newCanary(t)
	a := newAnswerer(t)
	plain := newAnswerer(t).pc // the same plain pion setup, as the offerer
	if _, err := plain.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	o, err := plain.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(plain)
	if err := plain.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	raw := hostile(t, a.answer(t, ctx, plain.LocalDescription().SDP), c.port, false)
	if err := plain.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: raw}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(ctx, func() bool { return plain.ICEConnectionState() == webrtc.ICEConnectionStateConnected }) {
		t.Fatalf("plain offerer: ICE %s", plain.ICEConnectionState())
	}
	n, from := c.count(canaryGrace)
	t.Logf("plain pion: canary received %d datagrams from %v", n, from)
	if n == 0 {
		t.Error("plain pion with the hostile answer: canary received nothing, so it cannot show the driver's protection works")
	}
}

// TestICEGuardAloneStopsChecks: with the answer filter bypassed (the hostile
// answer applied to the peer's pion connection directly), the socket guard
// alone keeps pion's checks off 127.0.0.2, and counts what it refused.
func TestICEGuardAloneStopsChecks(t *testing.T) {
	ctx := iceTest(t)
	c := newCanary(t)
	a := newAnswerer(t)
	f := iceFactory(t, ctx)
	p, offer := audioOffer(t, ctx, f)
	raw := hostile(t, a.answer(t, ctx, offer), c.port, false)
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: raw}); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	n, from := c.count(canaryGrace)
	refused := f.guard.refused.Load()
	t.Logf("guard alone: canary received %d datagrams, guard refused %d sends", n, refused)
	if n != 0 {
		t.Errorf("canary received %d datagrams from %v", n, from)
	}
	if refused == 0 {
		t.Error("guard refused no send: pion did not try the foreign candidate, so this proves nothing")
	}
}

// TestICECanaryOnlyForeignCandidate: an answer whose only candidates are
// foreign is refused with ErrBadAnswer naming them, is not applied, and the
// canary hears nothing.
func TestICECanaryOnlyForeignCandidate(t *testing.T) {
	ctx := iceTest(t)
	c := newCanary(t)
	a := newAnswerer(t)
	f := iceFactory(t, ctx)
	p, offer := audioOffer(t, ctx, f)
	err := p.Accept(hostile(t, a.answer(t, ctx, offer), c.port, true))
	if !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("Accept = %v, want ErrBadAnswer", err)
	}
	want := fmt.Sprintf("answer offered no allowed ICE candidate (dropped 3: 127.0.0.2:%d, 127.0.0.2:%d, canary-%d.local:%d)", c.port, c.port, c.port, c.port)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Accept = %q\nwant it to contain %q", err, want)
	}
	if p.pc.RemoteDescription() != nil {
		t.Error("refused answer was applied")
	}
	n, from := c.count(canaryGrace)
	if n != 0 {
		t.Errorf("canary received %d datagrams from %v", n, from)
	}
}

// iceCreds returns the ice-ufrag and ice-pwd of a description.
func iceCreds(t *testing.T, text string) (ufrag, pwd string) {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(text); err != nil {
		t.Fatal(err)
	}
	ufrag, _ = d.Attribute("ice-ufrag")
	pwd, _ = d.Attribute("ice-pwd")
	for _, m := range d.MediaDescriptions {
		if v, ok := m.Attribute("ice-ufrag"); ok && ufrag == "" {
			ufrag = v
		}
		if v, ok := m.Attribute("ice-pwd"); ok && pwd == "" {
			pwd = v
		}
	}
	if ufrag == "" || pwd == "" {
		t.Fatalf("no ICE credentials in\n%s", text)
	}
	return ufrag, pwd
}

// forgeBinding sends, from the canary's socket, n authenticated STUN binding
// requests to a pion agent at to: what a hostile target (or anyone who saw
// the SDP) can send from an address that is not the target. A plain pion
// agent learns 127.0.0.2 as a peer-reflexive candidate and answers it.
func forgeBinding(t *testing.T, c *canary, to *net.UDPAddr, localUfrag, remoteUfrag, localPwd string, controlling bool, n int) {
	t.Helper()
	var role stun.Setter = ice.AttrControlled(1)
	if controlling {
		role = ice.AttrControlling(1)
	}
	for range n {
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest,
			stun.NewUsername(localUfrag+":"+remoteUfrag), role, ice.PriorityAttr(1<<24),
			stun.NewShortTermIntegrity(localPwd), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.conn.WriteToUDP(m.Raw, to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func selectedLocal(t *testing.T, pc *webrtc.PeerConnection) *net.UDPAddr {
	t.Helper()
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("selected pair: %v, %v", pair, err)
	}
	return &net.UDPAddr{IP: net.ParseIP(pair.Local.Address), Port: int(pair.Local.Port)}
}

// TestICEPeerReflexiveFromForeignIgnored: authenticated binding requests
// from 127.0.0.2 reach the connected peer's socket; a plain pion agent
// answers such a request (the control, on the answerer), the driver's peer
// ignores it, so 127.0.0.2 gets nothing from the harness.
func TestICEPeerReflexiveFromForeignIgnored(t *testing.T) {
	ctx := iceTest(t)
	a := newAnswerer(t)
	f := iceFactory(t, ctx)
	p, offer := audioOffer(t, ctx, f)
	answer := a.answer(t, ctx, offer)
	if err := p.Accept(answer); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	cu, cp := iceCreds(t, offer)
	au, ap := iceCreds(t, answer)

	// Control: the plain pion answerer answers a forged request from 127.0.0.2.
	ctl := newCanary(t)
	forgeBinding(t, ctl, selectedLocal(t, a.pc), au, cu, ap, true, 3)
	if n, _ := ctl.count(500 * time.Millisecond); n == 0 {
		t.Fatal("control: plain pion did not answer the forged binding request, so the test below proves nothing")
	} else {
		t.Logf("control: plain pion sent %d datagrams to 127.0.0.2", n)
	}

	c := newCanary(t)
	forgeBinding(t, c, selectedLocal(t, p.pc), cu, au, cp, false, 3)
	n, from := c.count(canaryGrace)
	ignored := f.guard.ignored.Load()
	t.Logf("driver peer: canary received %d datagrams; guard ignored %d", n, ignored)
	if n != 0 {
		t.Errorf("canary received %d datagrams from %v: the peer answered a foreign address", n, from)
	}
	if ignored < 3 {
		t.Errorf("guard ignored %d datagrams, want the 3 forged requests", ignored)
	}
	if s := p.State(); s != webrtc.PeerConnectionStateConnected {
		t.Errorf("state = %s, want connected", s)
	}
}

// countingNet is a transport.Net that counts the UDP sockets opened through it.
type countingNet struct {
	transport.Net
	n atomic.Int64
}

func (c *countingNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c.n.Add(1)
	return c.Net.ListenUDP(network, laddr)
}

// TestICEGuardKeepsOptsNet: the guard wraps MediaOptions.Net (the chaos
// impairment's), it does not replace it; a call still connects through it.
func TestICEGuardKeepsOptsNet(t *testing.T) {
	ctx := iceTest(t)
	std, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	cn := &countingNet{Net: std}
	f, err := NewMediaFactory(MediaOptions{Net: cn})
	if err != nil {
		t.Fatal(err)
	}
	a := newAnswerer(t)
	p, offer := audioOffer(t, ctx, f)
	if err := p.Accept(a.answer(t, ctx, offer)); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if cn.n.Load() == 0 {
		t.Error("no socket was opened through MediaOptions.Net")
	}
}
