package driver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
	"github.com/pion/webrtc/v3"

	"github.com/telechaos/telechaos/models"
)

// Media constants shared with the contract: Opus 48 kHz stereo and VP8, one
// frame per RTP packet.
const (
	opusPT         = 111
	vp8PT          = 96
	audioTrackID   = "audio"
	videoTrackID   = "video"
	streamID       = "telechaos" // the same for every peer, as real client software does
	audioTSStep    = 960         // 20 ms at 48 kHz
	videoTSStep    = 3000        // 33 ms at 90 kHz
	maxVideoFrame  = 1100        // one RTP packet under the 1200-byte default MTU
	maxAudioFrame  = 1100
	vp8Descriptor  = 0x10 // X=0, N=0, S=1, PID=0: start of a partition
	recvBufferSize = 1500
)

// More sentinel errors of the media side.
var (
	// ErrNotReady: the frame was not sent because the transport (DTLS/SRTP)
	// is not up yet or the track is not negotiated. Nothing was counted.
	ErrNotReady = errors.New("media transport not ready")
	// ErrFrame: a frame that cannot go in one RTP packet (empty or too large).
	ErrFrame = errors.New("bad media frame")
)

// MediaOptions configures NewMediaFactory.
type MediaOptions struct {
	// LoopbackOnly gathers loopback candidates only. It is the default: the
	// zero MediaOptions gathers on loopback too; set AllInterfaces to widen.
	LoopbackOnly bool
	// AllInterfaces gathers host candidates on every interface (IPv4, UDP).
	AllInterfaces bool
	// GatherIPs gathers host candidates on exactly these local IPv4
	// addresses (and the interfaces that hold them); it overrides
	// LoopbackOnly and AllInterfaces. For a target on another host, the
	// address that routes to it (RouteLocalIP) is what a run uses by
	// default. An address on no local interface is an error.
	GatherIPs []netip.Addr
	// ICEServers are STUN and TURN servers every call may use (srflx and
	// relay candidates). Their addresses are allowed to the socket guard
	// beside AllowedRemote: the user named them.
	ICEServers []ICEServer
	// RelayOnly gathers relay candidates only (ICE transport policy
	// "relay"): every call goes through a TURN server of ICEServers, which
	// it then needs.
	RelayOnly bool
	// Logger receives pion's warnings and errors; nil discards them.
	Logger *slog.Logger
	// ICEDisconnectedTimeout and ICEFailedTimeout override pion's defaults
	// (5 s and 25 s) when > 0: chaos runs want a dead target noticed sooner.
	ICEDisconnectedTimeout, ICEFailedTimeout time.Duration
	// Net, when set, is the network pion opens its sockets through
	// (SettingEngine.SetNet): chaos runs pass an impaired one
	// (chaos.MediaImpairment.Net) so media faults hit real packets.
	Net transport.Net
	// AllowedRemote is where the harness may send media and ICE checks: every
	// answer's a=candidate (session and media level) whose connection
	// address is not inside one of these prefixes, is a host name or an mDNS
	// (.local) name, or is not a host/srflx/relay UDP or TCP candidate is
	// removed before pion sees the answer, so pion never sends a STUN check
	// there. An answer left with no candidate is refused (ErrBadAnswer).
	// Behind that, every socket pion opens (through Net when set) refuses
	// to send outside the list and ignores datagrams from outside it, so no
	// peer-reflexive candidate is learnt from another host either.
	// Set it to DefaultAllowedRemote(ctx, <the real target's host>): the
	// target itself, not a chaos proxy in front of it. Empty (the zero
	// MediaOptions) fails closed to 127.0.0.1/32 and ::1/128, which is what
	// loopback-only gathering can reach anyway.
	AllowedRemote []netip.Prefix
}

// DefaultAllowedRemote is the default AllowedRemote for a target host (a
// host name or IP literal, optionally [bracketed] or with a :port): a
// loopback IP or "localhost" allows exactly that address (localhost:
// 127.0.0.1/32 and ::1/128; nothing else on 127/8); any other IP allows its
// /24 (IPv4) or /64 (IPv6) network. A host name is resolved once, here,
// with ctx; each of its addresses is treated as above.
func DefaultAllowedRemote(ctx context.Context, targetHost string) ([]netip.Prefix, error) {
	host := targetHost
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return nil, fmt.Errorf("allowed remote: empty target host %q", targetHost)
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}, nil
	}
	addrs, err := resolveHost(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("allowed remote: %w", err)
	}
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.IsUnspecified() || a.IsMulticast() {
			return nil, fmt.Errorf("allowed remote: target %q has address %s, which is not a host", targetHost, a)
		}
		bits := a.BitLen()
		switch {
		case a.IsLoopback():
		case a.Is4():
			bits = 24
		default:
			bits = 64
		}
		p, err := a.Prefix(bits)
		if err != nil {
			return nil, fmt.Errorf("allowed remote: %s/%d: %w", a, bits, err)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// defaultAllowedRemote is what an empty MediaOptions.AllowedRemote means.
var defaultAllowedRemote = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// remoteAllowed reports whether a remote candidate address may be contacted.
func remoteAllowed(a netip.Addr, allowed []netip.Prefix) bool {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	ok := false
	for _, p := range allowed {
		if !p.Contains(a) {
			continue
		}
		// The broadcast address of an allowed IPv4 network is everyone on it.
		if a.Is4() && p.Bits() <= 30 {
			b := p.Masked().Addr().As4()
			last := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | (uint32(1)<<(32-p.Bits()) - 1)
			if a == netip.AddrFrom4([4]byte{byte(last >> 24), byte(last >> 16), byte(last >> 8), byte(last)}) {
				return false
			}
		}
		ok = true
	}
	return ok
}

// candidateLabel names a candidate for an error message: address:port when
// the attribute has them, else (a prefix of) the raw value.
func candidateLabel(value string) string {
	if f := strings.Fields(value); len(f) >= 6 {
		return net.JoinHostPort(f[4], f[5])
	}
	if len(value) > 40 {
		value = value[:40] + "..."
	}
	return fmt.Sprintf("%q", value)
}

// candidateAllowed parses one a=candidate value with pion's own parser and
// says whether its connection address may be contacted.
func candidateAllowed(value string, allowed []netip.Prefix) bool {
	c, err := ice.UnmarshalCandidate(value)
	if err != nil {
		return false
	}
	switch c.Type() {
	case ice.CandidateTypeHost, ice.CandidateTypeServerReflexive, ice.CandidateTypeRelay:
	default:
		return false
	}
	if nt := c.NetworkType(); !nt.IsUDP() && !nt.IsTCP() {
		return false
	}
	if c.Port() <= 0 {
		return false
	}
	a, err := netip.ParseAddr(c.Address()) // a host name or name.local fails here
	if err != nil {
		return false
	}
	return remoteAllowed(a.Unmap().WithZone(""), allowed)
}

// filterAttrs keeps the attributes that are not disallowed candidates.
func filterAttrs(attrs []sdp.Attribute, allowed []netip.Prefix, kept *int, dropped *[]string) []sdp.Attribute {
	var out []sdp.Attribute
	for _, a := range attrs {
		if a.IsICECandidate() {
			if !candidateAllowed(a.Value, allowed) {
				*dropped = append(*dropped, candidateLabel(a.Value))
				continue
			}
			*kept++
		}
		out = append(out, a)
	}
	return out
}

// filterAnswer removes the remote candidates outside allowed from an SDP
// answer (session and media level) and re-marshals it. It returns the
// labels (address:port) of what it dropped, and fails, wrapping
// ErrBadAnswer, when the answer does not parse, when every candidate it
// offered was dropped, or, with first set, when it offered none: a
// renegotiation's answer may rely on the candidates already in use.
func filterAnswer(answerSDP string, allowed []netip.Prefix, first bool) (string, []string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answerSDP); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	kept := 0
	var dropped []string
	d.Attributes = filterAttrs(d.Attributes, allowed, &kept, &dropped)
	for _, m := range d.MediaDescriptions {
		m.Attributes = filterAttrs(m.Attributes, allowed, &kept, &dropped)
	}
	if kept == 0 && (first || len(dropped) > 0) {
		list := dropped
		if len(list) > 5 {
			list = append(list[:5:5], "...")
		}
		return "", dropped, fmt.Errorf("%w: answer offered no allowed ICE candidate (dropped %d: %s)", ErrBadAnswer, len(dropped), strings.Join(list, ", "))
	}
	b, err := d.Marshal()
	if err != nil {
		return "", dropped, fmt.Errorf("%w: re-marshal filtered answer: %w", ErrBadAnswer, err)
	}
	return string(b), dropped, nil
}

// MediaFactory builds client peers. Everything that can be shared is: one
// webrtc.API (MediaEngine, SettingEngine, no interceptors) and one DTLS
// certificate. Each peer still gets its own UDP socket, because the server
// demultiplexes clients by remote address.
type MediaFactory struct {
	api     *webrtc.API
	cert    webrtc.Certificate
	log     *slog.Logger
	allowed []netip.Prefix // remote ICE candidates outside these are dropped
	guard   *remoteGuard   // the same list, enforced on every socket
	servers []webrtc.ICEServer
	policy  webrtc.ICETransportPolicy

	connected, relayed atomic.Int64 // peers connected; of them, over a relay candidate
}

// ICEStats counts the factory's peers that connected and, of those, the
// ones whose selected candidate pair goes through a TURN relay (either
// side's candidate of type relay).
type ICEStats struct {
	Connected, Relayed int64
}

// ICEStats returns the counts so far.
func (f *MediaFactory) ICEStats() ICEStats {
	return ICEStats{Connected: f.connected.Load(), Relayed: f.relayed.Load()}
}

// NewMediaFactory builds the shared WebRTC client side.
func NewMediaFactory(opts MediaOptions) (*MediaFactory, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        opusPT,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register opus: %w", err)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		PayloadType:        vp8PT,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register vp8: %w", err)
	}

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := webrtc.SettingEngine{LoggerFactory: pionLogs{logger}}
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetIncludeLoopbackCandidate(true)
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// The answerer starts its checks before our Accept, so its first binding
	// request can make it a peer-reflexive candidate here; pion then waits 1 s
	// (prflx acceptance) before nominating. The address is the one the answer
	// announces, so there is nothing to wait for.
	s.SetPrflxAcceptanceMinWait(0)
	allowed := opts.AllowedRemote
	if len(allowed) == 0 {
		allowed = defaultAllowedRemote
	}
	allowed = append([]netip.Prefix(nil), allowed...)
	servers, err := pionServers(opts.ICEServers)
	if err != nil {
		return nil, err
	}
	if opts.RelayOnly && !hasTURN(opts.ICEServers) {
		return nil, errors.New("media: relay-only needs a TURN server (ICEServers)")
	}
	srvAllowed, err := serverPrefixes(context.Background(), opts.ICEServers)
	if err != nil {
		return nil, err
	}
	// The guard allows the servers; the answer filter (f.allowed) does not:
	// the target's answer may not point the harness at them.
	guardAllowed := append(append([]netip.Prefix(nil), allowed...), srvAllowed...)
	for i, p := range allowed {
		if !p.IsValid() {
			return nil, fmt.Errorf("media: allowed remote prefix %d is invalid", i)
		}
		allowed[i] = netip.PrefixFrom(p.Addr().Unmap().WithZone(""), p.Bits()).Masked()
	}
	// Every socket pion opens goes through the guard, over opts.Net when set.
	base := opts.Net
	if base == nil {
		std, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("media: network: %w", err)
		}
		base = std
	}
	for i, p := range guardAllowed {
		guardAllowed[i] = netip.PrefixFrom(p.Addr().Unmap().WithZone(""), p.Bits()).Masked()
	}
	guard := &remoteGuard{allowed: guardAllowed, log: logger}
	s.SetNet(guardNet{Net: base, g: guard})
	if opts.ICEDisconnectedTimeout > 0 || opts.ICEFailedTimeout > 0 {
		d, f := opts.ICEDisconnectedTimeout, opts.ICEFailedTimeout
		if d <= 0 {
			d = 5 * time.Second
		}
		if f <= 0 {
			f = 25 * time.Second
		}
		s.SetICETimeouts(d, f, 2*time.Second)
	}
	if len(opts.GatherIPs) > 0 {
		ifOK, ipOK, err := gatherFilter(opts.GatherIPs)
		if err != nil {
			return nil, err
		}
		s.SetInterfaceFilter(ifOK)
		s.SetIPFilter(ipOK)
	} else if !opts.AllInterfaces {
		lo, err := loopbackInterfaces()
		if err != nil {
			return nil, err
		}
		s.SetInterfaceFilter(func(name string) bool { return lo[name] })
		s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	}

	// One certificate for every peer: generating an ECDSA key per peer costs
	// CPU for nothing; the server only checks the fingerprint in each SDP.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dtls key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, fmt.Errorf("dtls certificate: %w", err)
	}
	api := webrtc.NewAPI(
		webrtc.WithMediaEngine(m),
		webrtc.WithSettingEngine(s),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}), // none: they cost memory and goroutines per peer
	)
	f := &MediaFactory{api: api, cert: *cert, log: logger, allowed: allowed, guard: guard, servers: servers, policy: webrtc.ICETransportPolicyAll}
	if opts.RelayOnly {
		f.policy = webrtc.ICETransportPolicyRelay
	}
	return f, nil
}

func hasTURN(servers []ICEServer) bool {
	for _, s := range servers {
		for _, raw := range s.URLs {
			if strings.HasPrefix(raw, "turn:") || strings.HasPrefix(raw, "turns:") {
				return true
			}
		}
	}
	return false
}

// remoteGuard enforces AllowedRemote on pion's sockets, behind the answer
// filter: a socket neither sends to an address outside the list nor hands
// pion a datagram from one. The second matters as much: a STUN request from
// some other address would make pion learn a peer-reflexive candidate there,
// answer it and check it, which no SDP filter can prevent.
type remoteGuard struct {
	allowed              []netip.Prefix
	log                  *slog.Logger
	refused, ignored     atomic.Int64 // sends refused, datagrams ignored
	warnedTx, warnedRecv atomic.Bool
}

// errForeignRemote: a send to an address outside MediaOptions.AllowedRemote.
var errForeignRemote = errors.New("remote address is not the target (MediaOptions.AllowedRemote)")

func (g *remoteGuard) ok(a net.Addr) bool {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case nil:
		return false
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return false
		}
	}
	return remoteAllowed(ap.Addr().Unmap().WithZone(""), g.allowed)
}

func (g *remoteGuard) send(a net.Addr) error {
	if g.ok(a) {
		return nil
	}
	g.refused.Add(1)
	if !g.warnedTx.Swap(true) {
		g.log.Warn("refused to send to a remote outside the target (logged once)", "remote", fmt.Sprint(a))
	}
	return fmt.Errorf("send to %v: %w", a, errForeignRemote)
}

func (g *remoteGuard) recv(a net.Addr) bool {
	if g.ok(a) {
		return true
	}
	g.ignored.Add(1)
	if !g.warnedRecv.Swap(true) {
		g.log.Warn("ignored a datagram from a remote outside the target (logged once)", "remote", fmt.Sprint(a))
	}
	return false
}

// guardNet is the transport.Net pion opens its sockets through.
type guardNet struct {
	transport.Net
	g *remoteGuard
}

func (n guardNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &guardUDP{UDPConn: c, g: n.g}, nil
}

func (n guardNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return &guardPacket{PacketConn: c, g: n.g}, nil
}

func (n guardNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (transport.UDPConn, error) {
	if err := n.g.send(raddr); err != nil {
		return nil, err
	}
	return n.Net.DialUDP(network, laddr, raddr)
}

type guardUDP struct {
	transport.UDPConn
	g *remoteGuard
}

func (c *guardUDP) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.UDPConn.ReadFrom(p)
		if err != nil || c.g.recv(a) {
			return n, a, err
		}
	}
}

func (c *guardUDP) ReadFromUDP(p []byte) (int, *net.UDPAddr, error) {
	for {
		n, a, err := c.UDPConn.ReadFromUDP(p)
		if err != nil || c.g.recv(a) {
			return n, a, err
		}
	}
}

func (c *guardUDP) ReadMsgUDP(p, oob []byte) (int, int, int, *net.UDPAddr, error) {
	for {
		n, oobn, flags, a, err := c.UDPConn.ReadMsgUDP(p, oob)
		if err != nil || c.g.recv(a) {
			return n, oobn, flags, a, err
		}
	}
}

func (c *guardUDP) WriteTo(p []byte, a net.Addr) (int, error) {
	if err := c.g.send(a); err != nil {
		return 0, err
	}
	return c.UDPConn.WriteTo(p, a)
}

func (c *guardUDP) WriteToUDP(p []byte, a *net.UDPAddr) (int, error) {
	if err := c.g.send(a); err != nil {
		return 0, err
	}
	return c.UDPConn.WriteToUDP(p, a)
}

func (c *guardUDP) WriteMsgUDP(p, oob []byte, a *net.UDPAddr) (int, int, error) {
	if err := c.g.send(a); err != nil {
		return 0, 0, err
	}
	return c.UDPConn.WriteMsgUDP(p, oob, a)
}

type guardPacket struct {
	net.PacketConn
	g *remoteGuard
}

func (c *guardPacket) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.g.recv(a) {
			return n, a, err
		}
	}
}

func (c *guardPacket) WriteTo(p []byte, a net.Addr) (int, error) {
	if err := c.g.send(a); err != nil {
		return 0, err
	}
	return c.PacketConn.WriteTo(p, a)
}

func loopbackInterfaces() (map[string]bool, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	lo := map[string]bool{}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 && i.Flags&net.FlagUp != 0 {
			lo[i.Name] = true
		}
	}
	if len(lo) == 0 {
		return nil, errors.New("no loopback interface is up")
	}
	return lo, nil
}

// PeerStats counts frames sent and received by one Peer.
type PeerStats struct {
	AudioSent, VideoSent, AudioReceived, VideoReceived int64
}

// Peer is one client PeerConnection: audio first, video added by a real
// renegotiation on the same connection. Safe for concurrent use.
type Peer struct {
	f       *MediaFactory
	pc      *webrtc.PeerConnection
	onFrame func(models.Kind, []byte, time.Time)

	audio, video *sendTrack

	state     chan struct{} // closed on every connection state change, then replaced
	stateMu   sync.Mutex
	connState webrtc.PeerConnectionState

	audioSent, videoSent, audioRecv, videoRecv atomic.Int64
	paired                                     atomic.Bool // counted in the factory's ICEStats

	mu      sync.Mutex // guards closed, readers.Add, negotiation steps
	closed  bool
	readers sync.WaitGroup
	once    sync.Once
	done    chan struct{}
}

// NewPeer makes a PeerConnection. onFrame (may be nil) gets every received
// frame: for audio the RTP payload, for video the VP8 payload without its
// payload descriptor, one frame per packet. It is called from the peer's
// reader goroutines; payload is a copy the callee may keep.
func (f *MediaFactory) NewPeer(onFrame func(kind models.Kind, payload []byte, at time.Time)) (*Peer, error) {
	pc, err := f.api.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{f.cert}, ICEServers: f.servers, ICETransportPolicy: f.policy})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	p := &Peer{
		f:       f,
		pc:      pc,
		onFrame: onFrame,
		audio:   newSendTrack(webrtc.RTPCodecTypeAudio, audioTrackID, webrtc.MimeTypeOpus),
		video:   newSendTrack(webrtc.RTPCodecTypeVideo, videoTrackID, webrtc.MimeTypeVP8),
		state:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.stateMu.Lock()
		p.connState = s
		close(p.state)
		p.state = make(chan struct{})
		p.stateMu.Unlock()
	})
	pc.OnTrack(p.readTrack) // pion runs the handler on its own goroutine
	return p, nil
}

// OfferAudio adds the sendrecv Opus transceiver and returns the complete
// (non-trickle) offer.
func (p *Peer) OfferAudio(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", ErrClosed
	}
	if _, err := p.pc.AddTransceiverFromTrack(p.audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		return "", fmt.Errorf("add audio transceiver: %w", err)
	}
	return p.offer(ctx)
}

// OfferVideo adds a sendrecv VP8 transceiver on the same connection and
// returns the re-offer (a real renegotiation).
func (p *Peer) OfferVideo(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", ErrClosed
	}
	if p.pc.RemoteDescription() == nil {
		return "", errors.New("offer video: no answer accepted yet (join first)")
	}
	for _, t := range p.pc.GetTransceivers() {
		if s := t.Sender(); s != nil && s.Track() == p.video {
			return "", errors.New("offer video: video already added")
		}
	}
	if _, err := p.pc.AddTransceiverFromTrack(p.video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		return "", fmt.Errorf("add video transceiver: %w", err)
	}
	return p.offer(ctx)
}

func (p *Peer) offer(ctx context.Context) (string, error) {
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(o); err != nil {
		return "", fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("gather candidates: %w", ctx.Err())
	}
	return p.pc.LocalDescription().SDP, nil
}

// Accept applies the target's answer to the last offer (the first answer and
// every renegotiation's). Remote ICE candidates outside the factory's
// AllowedRemote are removed first, so pion never contacts them; an answer
// with none left fails with ErrBadAnswer and is not applied.
func (p *Peer) Accept(answerSDP string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	first := p.pc.RemoteDescription() == nil
	filtered, dropped, err := filterAnswer(answerSDP, p.f.allowed, first)
	if err != nil {
		return err
	}
	// What pion will parse is the re-marshalled text: check that too, so a
	// parse that does not round-trip cannot smuggle a candidate back in.
	if _, again, err := filterAnswer(filtered, p.f.allowed, first); err != nil || len(again) > 0 {
		return fmt.Errorf("%w: filtered answer does not round-trip (%v, dropped again %v)", ErrBadAnswer, err, again)
	}
	if len(dropped) > 0 {
		p.f.log.Warn("dropped remote ICE candidates outside the target", "dropped", dropped)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: filtered}); err != nil {
		return fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return nil
}

// WaitConnected waits until ICE and DTLS are connected and SRTP can carry
// media. It fails fast when the connection fails or closes.
func (p *Peer) WaitConnected(ctx context.Context) error {
	for {
		p.stateMu.Lock()
		s, ch := p.connState, p.state
		p.stateMu.Unlock()
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.countPair()
			return p.waitSRTP(ctx)
		case webrtc.PeerConnectionStateFailed:
			return fmt.Errorf("wait connected: %w", errors.New("connection failed"))
		case webrtc.PeerConnectionStateClosed:
			return fmt.Errorf("wait connected: %w", ErrClosed)
		}
		select {
		case <-ch:
		case <-p.done:
			return fmt.Errorf("wait connected: %w", ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("wait connected (state %s): %w", s, ctx.Err())
		}
	}
}

// countPair counts the peer's first connection in its factory's ICEStats,
// with whether the selected pair goes through a relay.
func (p *Peer) countPair() {
	if p.paired.Swap(true) {
		return
	}
	p.f.connected.Add(1)
	for _, t := range p.pc.GetTransceivers() {
		snd := t.Sender()
		if snd == nil || snd.Transport() == nil {
			continue
		}
		pair, err := snd.Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			continue
		}
		if pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay {
			p.f.relayed.Add(1)
		}
		return
	}
}

// waitSRTP closes the gap between "DTLS connected" and "SRTP sessions
// started" (pion signals the first before doing the second): an RTCP
// receiver report is accepted only once SRTCP is up, and SRTP starts with it.
func (p *Peer) waitSRTP(ctx context.Context) error {
	rr := []rtcp.Packet{&rtcp.ReceiverReport{SSRC: p.audio.ssrcOrZero()}}
	for {
		if err := p.pc.WriteRTCP(rr); err == nil {
			return nil
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-p.done:
			return fmt.Errorf("wait connected: %w", ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("wait srtp: %w", ctx.Err())
		}
	}
}

// State returns the current connection state.
func (p *Peer) State() webrtc.PeerConnectionState {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	return p.connState
}

// SendAudio sends one 20 ms Opus sample as one RTP packet.
func (p *Peer) SendAudio(frame []byte) error {
	if len(frame) == 0 || len(frame) > maxAudioFrame {
		return fmt.Errorf("send audio: %w: %d bytes (want 1..%d)", ErrFrame, len(frame), maxAudioFrame)
	}
	if err := p.audio.write(frame, false, audioTSStep); err != nil {
		return fmt.Errorf("send audio: %w", err)
	}
	p.audioSent.Add(1)
	return nil
}

// SendVideo sends one VP8 frame as one RTP packet (marker set, S bit set).
func (p *Peer) SendVideo(frame []byte) error {
	if len(frame) == 0 || len(frame) > maxVideoFrame {
		return fmt.Errorf("send video: %w: %d bytes (want 1..%d)", ErrFrame, len(frame), maxVideoFrame)
	}
	if err := p.video.write(frame, true, videoTSStep); err != nil {
		return fmt.Errorf("send video: %w", err)
	}
	p.videoSent.Add(1)
	return nil
}

// Stats returns the frame counters.
func (p *Peer) Stats() PeerStats {
	return PeerStats{
		AudioSent: p.audioSent.Load(), VideoSent: p.videoSent.Load(),
		AudioReceived: p.audioRecv.Load(), VideoReceived: p.videoRecv.Load(),
	}
}

// Close closes the connection and waits (bounded) for the reader goroutines.
// It is idempotent.
func (p *Peer) Close() error {
	var err error
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		close(p.done)
		p.mu.Unlock()
		err = p.pc.Close()
		wait := make(chan struct{})
		go func() { p.readers.Wait(); close(wait) }()
		select {
		case <-wait:
		case <-time.After(5 * time.Second):
			p.f.log.Warn("peer readers did not stop within 5s")
		}
	})
	return err
}

// readTrack reads one remote track until the connection closes.
func (p *Peer) readTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.readers.Add(1)
	p.mu.Unlock()
	defer p.readers.Done()

	kind := models.Audio
	counter := &p.audioRecv
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		kind, counter = models.Video, &p.videoRecv
	}
	buf := make([]byte, recvBufferSize)
	var pkt rtp.Packet
	var vp8 codecs.VP8Packet
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		at := time.Now()
		if err := pkt.Unmarshal(buf[:n]); err != nil || len(pkt.Payload) == 0 {
			continue
		}
		payload := pkt.Payload
		if kind == models.Video {
			if payload, err = vp8.Unmarshal(payload); err != nil || len(payload) == 0 {
				continue
			}
		}
		counter.Add(1)
		if p.onFrame != nil {
			p.onFrame(kind, append([]byte(nil), payload...), at)
		}
	}
}

// sendTrack is a minimal webrtc.TrackLocal: one binding, our own RTP headers,
// no packetizer. It reports a frame the transport dropped (SRTP not up yet)
// as ErrNotReady instead of pretending it was sent.
type sendTrack struct {
	kind webrtc.RTPCodecType
	id   string
	mime string

	mu      sync.Mutex
	w       webrtc.TrackLocalWriter
	ssrc    webrtc.SSRC
	pt      uint8
	hdr     rtp.Header
	scratch []byte
}

func newSendTrack(kind webrtc.RTPCodecType, id, mime string) *sendTrack {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &sendTrack{
		kind: kind, id: id, mime: mime,
		hdr: rtp.Header{
			Version:        2,
			SequenceNumber: uint16(b[0])<<8 | uint16(b[1]),
			Timestamp:      uint32(b[2])<<24 | uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5]),
		},
	}
}

var _ webrtc.TrackLocal = (*sendTrack)(nil)

func (s *sendTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, codec := range c.CodecParameters() {
		if strings.EqualFold(codec.MimeType, s.mime) {
			s.mu.Lock()
			s.w, s.ssrc, s.pt = c.WriteStream(), c.SSRC(), uint8(codec.PayloadType)
			s.mu.Unlock()
			return codec, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

func (s *sendTrack) Unbind(webrtc.TrackLocalContext) error {
	s.mu.Lock()
	s.w = nil
	s.mu.Unlock()
	return nil
}

func (s *sendTrack) ID() string                { return s.id }
func (s *sendTrack) RID() string               { return "" }
func (s *sendTrack) StreamID() string          { return streamID }
func (s *sendTrack) Kind() webrtc.RTPCodecType { return s.kind }

func (s *sendTrack) ssrcOrZero() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint32(s.ssrc)
}

func (s *sendTrack) write(frame []byte, marker bool, tsStep uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return ErrNotReady
	}
	payload := frame
	if s.kind == webrtc.RTPCodecTypeVideo {
		s.scratch = append(append(s.scratch[:0], vp8Descriptor), frame...)
		payload = s.scratch
	}
	h := s.hdr
	h.PayloadType, h.SSRC, h.Marker = s.pt, uint32(s.ssrc), marker
	n, err := s.w.WriteRTP(&h, payload)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotReady // pion drops media silently before SRTP is up
	}
	s.hdr.SequenceNumber++
	s.hdr.Timestamp += tsStep
	return nil
}
