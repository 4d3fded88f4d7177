package media

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/clinic/bugs"
)

// Config configures an Engine.
type Config struct {
	DataDir      string // recordings go under DataDir/recordings/<recordingID>/
	UDPPort      int    // one UDP port for all media (ICE UDP mux); 0 = ephemeral
	ListenIP     string // default "127.0.0.1"; "0.0.0.0" in a container
	AdvertisedIP string // 1:1 NAT host candidate, default 127.0.0.1
	RecordFormat string // FormatNative ("": Ogg audio, IVF video) or FormatWebM
	Bugs         *bugs.Set
	Logger       *slog.Logger
	Registerer   prometheus.Registerer // may be nil; clinic_media_* metrics go here
}

const (
	opusRate      = 48000
	opusChannels  = 2
	progressEvery = time.Second
	// socketBuffer is the UDP receive buffer: with the default one a 2 s stall
	// of the process lost a quarter of the audio (docs/design.md section 12).
	socketBuffer = 4 << 20
)

var (
	opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: opusRate, Channels: opusChannels, SDPFmtpLine: "minptime=10;useinbandfec=1"}
	vp8Codec  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
)

// Engine is the clinic's SFU and recorder. One Engine serves every call of the
// process over one UDP port. Safe for concurrent use.
type Engine struct {
	cfg  Config
	cat  Catalog
	log  *slog.Logger
	bugs *bugs.Set
	api  *webrtc.API
	cert webrtc.Certificate
	mux  ice.UDPMux
	port int
	dir  string // absolute DataDir/recordings
	m    *metrics

	mu     sync.Mutex
	calls  map[string]*call
	ended  map[string]struct{} // tombstones: a late Join must not revive an ended call
	closed bool

	open     recorderSet
	slots    slotPool
	prerolls prerollPool
	routes   routeTable
	parked   parkedSwitch

	stop chan struct{}
	bg   sync.WaitGroup
}

// New opens the media UDP socket and builds the one WebRTC API every
// PeerConnection of the process shares.
func New(cfg Config, cat Catalog) (*Engine, error) {
	if cat == nil {
		return nil, errors.New("media: new engine: nil catalog")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("media: new engine: empty data directory")
	}
	if cfg.RecordFormat != FormatNative && cfg.RecordFormat != FormatWebM {
		return nil, fmt.Errorf("media: new engine: record format %q (want %q or %q)", cfg.RecordFormat, FormatNative, FormatWebM)
	}
	if cfg.ListenIP == "" {
		cfg.ListenIP = "127.0.0.1"
	}
	if cfg.AdvertisedIP == "" {
		cfg.AdvertisedIP = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	listen := net.ParseIP(cfg.ListenIP)
	if listen == nil || listen.To4() == nil {
		return nil, fmt.Errorf("media: new engine: listen ip %q is not an IPv4 address", cfg.ListenIP)
	}
	if ip := net.ParseIP(cfg.AdvertisedIP); ip == nil || ip.To4() == nil {
		return nil, fmt.Errorf("media: new engine: advertised ip %q is not an IPv4 address", cfg.AdvertisedIP)
	}
	if cfg.UDPPort < 0 || cfg.UDPPort > 65535 {
		return nil, fmt.Errorf("media: new engine: udp port %d out of range", cfg.UDPPort)
	}
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "recordings"))
	if err != nil {
		return nil, fmt.Errorf("media: new engine: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("media: new engine: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("media: new engine: dtls key: %w", err)
	}
	// One certificate for every PeerConnection: generating one per call costs
	// a signature each and buys nothing (clients pin the fingerprint per SDP).
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, fmt.Errorf("media: new engine: dtls certificate: %w", err)
	}

	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCodec, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("media: new engine: %w", err)
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: vp8Codec, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("media: new engine: %w", err)
	}

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: listen, Port: cfg.UDPPort})
	if err != nil {
		return nil, fmt.Errorf("media: new engine: listen udp %s:%d: %w", cfg.ListenIP, cfg.UDPPort, err)
	}
	if err := conn.SetReadBuffer(socketBuffer); err != nil {
		cfg.Logger.Warn("media: cannot raise udp receive buffer", "err", err)
	}
	if err := conn.SetWriteBuffer(socketBuffer); err != nil {
		cfg.Logger.Warn("media: cannot raise udp send buffer", "err", err)
	}
	logs := pionLogs{cfg.Logger}
	mux := webrtc.NewICEUDPMux(logs.NewLogger("udpmux"), conn)

	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetICEUDPMux(mux)
	se.SetNAT1To1IPs([]string{cfg.AdvertisedIP}, webrtc.ICECandidateTypeHost)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// No interceptor registry: the clinic neither retransmits nor estimates
	// bandwidth, and each default interceptor costs goroutines and timers per
	// track on a box that carries hundreds of calls.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))

	e := &Engine{
		cfg:   cfg,
		cat:   cat,
		log:   cfg.Logger,
		bugs:  cfg.Bugs,
		api:   api,
		cert:  *cert,
		mux:   mux,
		port:  conn.LocalAddr().(*net.UDPAddr).Port,
		dir:   dir,
		calls: map[string]*call{},
		ended: map[string]struct{}{},
		stop:  make(chan struct{}),
	}
	e.open.m = map[*recorder]struct{}{}
	e.routes.m = map[string]route{}
	e.m = newMetrics(cfg.Registerer, e)
	e.bg.Add(1)
	go e.progressLoop()
	return e, nil
}

// UDPPort is the media port actually bound (useful with UDPPort 0).
func (e *Engine) UDPPort() int { return e.port }

// ActiveCalls counts calls joined in this process and not yet ended.
func (e *Engine) ActiveCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

// call is the engine's state of one consultation in this process.
type call struct {
	Call
	// sig serialises signalling (join, switch, end) of this call; calls never
	// wait on each other.
	sig   sync.Mutex
	ended bool // under sig

	mu    sync.Mutex     // guards the fields below and Call.SegmentBase
	peers [2]*peer       // current PeerConnection of patient [0] and clinician [1]
	segs  map[string]int // last segment used per participant
	recs  []*recorder    // every track recorded for this call in this process
}

func (c *call) index(user string) int {
	switch user {
	case c.Patient:
		return 0
	case c.Clinician:
		return 1
	}
	return -1
}

func (c *call) other(user string) string {
	if user == c.Patient {
		return c.Clinician
	}
	return c.Patient
}

// peer returns the user's current peer, nil if not joined.
func (c *call) peer(user string) *peer {
	i := c.index(user)
	if i < 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[i]
}

func (c *call) setPeer(user string, p *peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peers[c.index(user)] = p
}

func (c *call) addRecorder(r *recorder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r)
}

func (c *call) records() []TrackRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]TrackRecord, 0, len(c.recs))
	for _, r := range c.recs {
		out = append(out, r.record())
	}
	return out
}

// peer is one participant's PeerConnection (one segment).
type peer struct {
	c       *call
	user    string
	segment int
	pc      *webrtc.PeerConnection

	audioOut *outTrack // the other participant's audio, to this user
	videoOut *outTrack // the other participant's video, set at switch (under mu)

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // every goroutine working for this peer
	slot   *videoSlot     // armed at switch, used when the video track arrives
	recs   []*recorder
}

// enter registers a goroutine that is already running (a pion callback);
// false once the peer is closing.
func (p *peer) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// spawn starts f as a goroutine of this peer unless it is closing.
func (p *peer) spawn(f func()) bool {
	if !p.enter() {
		return false
	}
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

func (p *peer) video() *outTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.videoOut
}

func (p *peer) addRecorder(r *recorder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recs = append(p.recs, r)
}

// shut closes the PeerConnection and waits for every goroutine of the peer.
// Afterwards its recorders are quiet and can be finalised or abandoned.
func (p *peer) shut(log *slog.Logger) []*recorder {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	if err := p.pc.Close(); err != nil {
		log.Debug("media: close peerconnection", "user", p.user, "err", err)
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recs
}

func (e *Engine) callFor(c Call) (*call, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if _, gone := e.ended[c.ConsultationID]; gone {
		return nil, fmt.Errorf("consultation %s ended: %w", c.ConsultationID, ErrNotActive)
	}
	cl := e.calls[c.ConsultationID]
	if cl == nil {
		c.SegmentBase = maps.Clone(c.SegmentBase)
		if c.SegmentBase == nil {
			c.SegmentBase = map[string]int{}
		}
		cl = &call{Call: c, segs: map[string]int{}}
		e.calls[c.ConsultationID] = cl
		return cl, nil
	}
	// A later join may know of segments an earlier process recorded.
	cl.mu.Lock()
	for u, n := range c.SegmentBase {
		cl.SegmentBase[u] = max(cl.SegmentBase[u], n)
	}
	cl.mu.Unlock()
	return cl, nil
}

// lockCall returns the call's state with its signalling lock held, making sure
// it is still the engine's current state for the consultation (a failed first
// join or an End may have dropped it while we waited).
func (e *Engine) lockCall(c Call) (*call, error) {
	for {
		cl, err := e.callFor(c)
		if err != nil {
			return nil, err
		}
		cl.sig.Lock()
		e.mu.Lock()
		current := e.calls[c.ConsultationID] == cl
		e.mu.Unlock()
		if current {
			return cl, nil
		}
		cl.sig.Unlock()
	}
}

// dropIfEmpty forgets a call whose only join failed, so it does not count
// as active. Called with cl.sig held.
func (e *Engine) dropIfEmpty(cl *call) {
	cl.mu.Lock()
	empty := cl.peers[0] == nil && cl.peers[1] == nil && len(cl.recs) == 0
	cl.mu.Unlock()
	if !empty {
		return
	}
	e.mu.Lock()
	if e.calls[cl.ConsultationID] == cl {
		delete(e.calls, cl.ConsultationID)
	}
	e.mu.Unlock()
}

func (e *Engine) lookup(consultationID string) (*call, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	cl := e.calls[consultationID]
	if cl == nil {
		return nil, fmt.Errorf("consultation %s: %w", consultationID, ErrNotJoined)
	}
	return cl, nil
}

func parseOffer(s string) (webrtc.SessionDescription, map[string]bool, error) {
	d := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: s}
	if strings.TrimSpace(s) == "" {
		return d, nil, fmt.Errorf("%w: empty offer", ErrBadSDP)
	}
	parsed, err := d.Unmarshal()
	if err != nil {
		return d, nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	kinds := map[string]bool{}
	for _, md := range parsed.MediaDescriptions {
		kinds[md.MediaName.Media] = true
	}
	return d, kinds, nil
}

// Join connects participant to the call with a new PeerConnection and returns
// the complete (non-trickle) answer and the segment this connection records.
// A second Join by the same participant replaces their PeerConnection: the old
// one is closed and its tracks finalised, and a new segment starts.
func (e *Engine) Join(ctx context.Context, c Call, participant, offerSDP string) (string, int, error) {
	if c.ConsultationID == "" || c.RecordingID == "" {
		return "", 0, errors.New("media: join: call needs a consultation id and a recording id")
	}
	if c.Patient == "" || c.Clinician == "" || c.Patient == c.Clinician {
		return "", 0, fmt.Errorf("media: join %s: call needs two distinct participants", c.ConsultationID)
	}
	if participant == "" || (participant != c.Patient && participant != c.Clinician) {
		return "", 0, fmt.Errorf("join %s as %q: %w", c.ConsultationID, participant, ErrNotParticipant)
	}
	offer, kinds, err := parseOffer(offerSDP)
	if err != nil {
		return "", 0, fmt.Errorf("join %s: %w", c.ConsultationID, err)
	}
	if !kinds["audio"] {
		return "", 0, fmt.Errorf("join %s: %w: offer has no audio m-line", c.ConsultationID, ErrBadSDP)
	}
	cl, err := e.lockCall(c)
	if err != nil {
		return "", 0, err
	}
	defer cl.sig.Unlock()
	if cl.ended {
		return "", 0, fmt.Errorf("join %s: %w", c.ConsultationID, ErrNotActive)
	}
	if old := cl.peer(participant); old != nil {
		// Rejoin (dropped connection, client restart): the old segment ends here.
		cl.setPeer(participant, nil)
		e.retire(old, true)
	}
	cl.mu.Lock()
	seg := max(cl.segs[participant], cl.SegmentBase[participant]) + 1
	cl.mu.Unlock()
	p := &peer{c: cl, user: participant, segment: seg}
	answer, err := e.connect(ctx, p, offer)
	if err != nil {
		e.dropIfEmpty(cl)
		return "", 0, fmt.Errorf("join %s: %w", c.ConsultationID, err)
	}
	cl.mu.Lock()
	cl.segs[participant] = seg
	cl.mu.Unlock()
	cl.setPeer(participant, p)
	e.log.Debug("media: joined", "consultation", c.ConsultationID, "user", participant, "segment", seg)
	return answer, seg, nil
}

// connect builds p's PeerConnection from the offer and returns the answer.
func (e *Engine) connect(ctx context.Context, p *peer, offer webrtc.SessionDescription) (string, error) {
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{e.cert}})
	if err != nil {
		return "", fmt.Errorf("new peerconnection: %w", err)
	}
	p.pc = pc
	fail := func(err error) (string, error) {
		p.shut(e.log)
		return "", err
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { e.onTrack(p, t, r) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		e.log.Debug("media: connection state", "consultation", p.c.ConsultationID, "user", p.user, "segment", p.segment, "state", s.String())
	})
	if err := pc.SetRemoteDescription(offer); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadSDP, err))
	}
	out, err := newOutTrack(opusCodec, "audio", "clinic-"+p.c.other(p.user), 960)
	if err != nil {
		return fail(err)
	}
	p.audioOut = out
	// AddTrack after the remote offer reuses the offered audio transceiver, so
	// the answer's audio m-line becomes sendrecv.
	sender, err := pc.AddTrack(out)
	if err != nil {
		return fail(fmt.Errorf("add audio track: %w", err))
	}
	p.spawn(func() { drainRTCP(sender.ReadRTCP) })
	answer, err := e.answer(ctx, pc)
	if err != nil {
		return fail(err)
	}
	return answer, nil
}

// answer creates and applies the local answer and waits for ICE gathering, so
// the SDP carries the host candidate (non-trickle).
func (e *Engine) answer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: create answer: %w", ErrBadSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("ice gathering: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// drainRTCP reads RTCP until the sender or receiver stops; without a reader
// pion's buffers only fill up.
func drainRTCP[T, A any](read func() (T, A, error)) {
	for {
		if _, _, err := read(); err != nil {
			return
		}
	}
}

// Switch renegotiates the participant's PeerConnection with the re-offer that
// adds a video transceiver: the clinic records the video it receives and sends
// back the other participant's video on that transceiver.
func (e *Engine) Switch(ctx context.Context, consultationID, participant, offerSDP string) (string, error) {
	offer, kinds, err := parseOffer(offerSDP)
	if err != nil {
		return "", fmt.Errorf("switch %s: %w", consultationID, err)
	}
	if !kinds["video"] {
		return "", fmt.Errorf("switch %s: %w", consultationID, ErrNoVideo)
	}
	cl, err := e.lookup(consultationID)
	if err != nil {
		return "", fmt.Errorf("switch: %w", err)
	}
	cl.sig.Lock()
	defer cl.sig.Unlock()
	if cl.ended {
		return "", fmt.Errorf("switch %s: %w", consultationID, ErrNotActive)
	}
	p := cl.peer(participant)
	if p == nil {
		return "", fmt.Errorf("switch %s as %q: %w", consultationID, participant, ErrNotJoined)
	}
	first := p.video() == nil

	// switch-race: an earlier version parked the switching call on the engine
	// while the renegotiation ran and read it back to arm the video recorder;
	// two calls switching at once swap recordings. Sequential switches are fine.
	raced := first && e.bugs.Fire(bugs.SwitchRace)
	if raced {
		e.parked.park(cl)
	}

	if err := p.pc.SetRemoteDescription(offer); err != nil {
		return "", fmt.Errorf("switch %s: %w: %w", consultationID, ErrBadSDP, err)
	}
	if first {
		out, err := newOutTrack(vp8Codec, "video", "clinic-"+cl.other(participant), 3000)
		if err != nil {
			return "", e.rollback(p, fmt.Errorf("switch %s: %w", consultationID, err))
		}
		sender, err := p.pc.AddTrack(out)
		if err != nil {
			return "", e.rollback(p, fmt.Errorf("switch %s: add video track: %w", consultationID, err))
		}
		p.spawn(func() { drainRTCP(sender.ReadRTCP) })
		p.mu.Lock()
		p.videoOut = out
		p.mu.Unlock()
	}
	answer, err := e.answer(ctx, p.pc)
	if err != nil {
		return "", e.rollback(p, fmt.Errorf("switch %s: %w", consultationID, err))
	}
	if first {
		target := cl
		if raced {
			target = e.parked.take()
		}
		// The slot is armed before the answer leaves: the client sends video
		// only once it has applied the answer.
		slot := e.acquireSlot(target, p)
		p.mu.Lock()
		if p.slot == nil {
			p.slot = slot
			slot = nil
		}
		p.mu.Unlock()
		if slot != nil {
			e.slots.put(slot)
		}
	}
	return answer, nil
}

// rollback returns the PeerConnection to stable after a failed renegotiation,
// so the call keeps its audio.
func (e *Engine) rollback(p *peer, err error) error {
	if p.pc.SignalingState() == webrtc.SignalingStateHaveRemoteOffer {
		if rerr := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); rerr != nil {
			e.log.Debug("media: rollback", "err", rerr)
		}
	}
	return err
}

// End ends the call for both participants: closes their PeerConnections,
// finalises every track file and returns this process's tracks of the call
// with final counts. Ending a call nobody joined in this process returns no
// tracks and no error; the HTTP layer owns the call's state.
func (e *Engine) End(ctx context.Context, consultationID string) ([]TrackRecord, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	cl := e.calls[consultationID]
	delete(e.calls, consultationID)
	e.ended[consultationID] = struct{}{}
	e.mu.Unlock()
	if cl == nil {
		return nil, nil
	}
	// ctx is not honoured half way: a half-finalised recording is worse than
	// a late answer, and every step here is bounded (local files, closing
	// PeerConnections).
	if err := e.endCall(cl, true); err != nil {
		return cl.records(), fmt.Errorf("end %s: %w", consultationID, err)
	}
	return cl.records(), nil
}

// endCall stops both peers and finalises (graceful) or abandons (crash) every
// recorder of the call.
func (e *Engine) endCall(cl *call, graceful bool) error {
	cl.sig.Lock()
	defer cl.sig.Unlock()
	cl.ended = true
	var wg sync.WaitGroup
	for _, u := range []string{cl.Patient, cl.Clinician} {
		if p := cl.peer(u); p != nil {
			cl.setPeer(u, nil)
			wg.Go(func() { e.retire(p, graceful) })
		}
	}
	wg.Wait()
	var errs []error
	cl.mu.Lock()
	recs := append([]*recorder(nil), cl.recs...)
	cl.mu.Unlock()
	for _, r := range recs {
		if graceful {
			errs = append(errs, r.finalise())
		} else {
			r.abandon()
		}
	}
	return errors.Join(errs...)
}

// retire closes a peer and finalises (or, in a crash, abandons) its tracks.
func (e *Engine) retire(p *peer, graceful bool) {
	recs := p.shut(e.log)
	for _, r := range recs {
		if graceful {
			if err := r.finalise(); err != nil {
				e.log.Warn("media: finalise track", "track", r.rec.ID, "err", err)
			}
		} else {
			r.abandon()
		}
	}
	p.mu.Lock()
	slot := p.slot
	p.slot = nil
	p.mu.Unlock()
	if slot != nil && graceful {
		e.slots.put(slot)
	}
}

// Close shuts down gracefully: every open recording is finalised (final counts
// through TrackProgress), PeerConnections and the UDP socket are closed.
func (e *Engine) Close() error {
	return e.shutdown(true)
}

// Crash stops abruptly, as a SIGKILL would: PeerConnections and the socket are
// closed, nothing is finalised or flushed; files keep what was already written.
func (e *Engine) Crash() {
	_ = e.shutdown(false)
}

func (e *Engine) shutdown(graceful bool) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	calls := make([]*call, 0, len(e.calls))
	for _, cl := range e.calls {
		calls = append(calls, cl)
	}
	e.calls = map[string]*call{}
	e.mu.Unlock()

	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, cl := range calls {
		wg.Go(func() {
			if err := e.endCall(cl, graceful); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(e.stop)
	e.bg.Wait()
	if err := e.mux.Close(); err != nil {
		errs = append(errs, fmt.Errorf("media: close udp mux: %w", err))
	}
	return errors.Join(errs...)
}
