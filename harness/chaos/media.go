package chaos

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/deadline"
	"github.com/pion/transport/v2/stdnet"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// Media impairment lives on the client side of the UDP path: MediaImpairment.Net
// is a pion transport.Net (the standard library's sockets, wrapped) that the
// driver's SettingEngine uses through SetNet, so every UDP socket the clients'
// ICE agents open is a real loopback socket whose WriteTo and ReadFrom apply
// the impairments active now. The packets really are dropped, held back,
// duplicated or reordered between pion and the kernel, so the target sees
// exactly what a bad network would give it.
//
// Why not the alternatives: netem needs a network namespace (root, and the
// clinic's socket on the other side of a veth pair, which an in-process clinic
// and a published container port do not have); pion's vnet is not real sockets
// (it cannot reach a clinic in another process or container, and it changes
// the code path under test). A relay between client and target would have to
// rewrite the candidates in the SDP. Wrapping the client's sockets needs none
// of that and works the same for the embedded clinic, a container or a URL.

// Directions of the media path, seen from the clients (the spec's
// faultspec.Dir*, which Impairment.Direction takes).
const (
	DirUp   = faultspec.DirUp   // client to target: what the target records
	DirDown = faultspec.DirDown // target to client: what the client receives live
	DirBoth = faultspec.DirBoth
)

// Impairment is what a media fault does to packets while it is active.
// Several active impairments combine: probabilities as independent events,
// delays and jitters add up, blackhole wins.
type Impairment struct {
	Loss       float64       // probability a packet is dropped, 0..1
	Delay      time.Duration // added to every packet
	Jitter     time.Duration // the delay varies uniformly within ±Jitter (never below 0)
	Duplicate  float64       // probability a packet is sent twice, 0..1
	Reorder    float64       // probability a packet is held back by ReorderGap so later ones overtake it
	ReorderGap time.Duration // default 50ms (about 4 packets of a call at 80 packets/s)
	Blackhole  bool          // drop everything
	Direction  string        // DirUp, DirDown or DirBoth (default)
	// RTPOnly spares STUN and DTLS (RFC 7983 demultiplexing: only packets whose
	// first byte is 128..191 are touched), so connectivity survives and only
	// media suffers.
	RTPOnly bool
}

const defaultReorderGap = 50 * time.Millisecond

// Validate names every bad field.
func (im Impairment) Validate() []error {
	var errs []error
	prob := func(name string, p float64) {
		if p < 0 || p > 1 || p != p {
			errs = append(errs, fmt.Errorf("%s: %v must be within 0..1", name, p))
		}
	}
	prob("loss", im.Loss)
	prob("duplicate", im.Duplicate)
	prob("reorder", im.Reorder)
	if im.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay: %s must be >= 0", im.Delay))
	}
	if im.Jitter < 0 {
		errs = append(errs, fmt.Errorf("jitter: %s must be >= 0", im.Jitter))
	}
	if im.ReorderGap < 0 {
		errs = append(errs, fmt.Errorf("reorder_gap: %s must be >= 0", im.ReorderGap))
	}
	switch im.Direction {
	case "", DirUp, DirDown, DirBoth:
	default:
		errs = append(errs, fmt.Errorf("direction: %q: want up, down or both", im.Direction))
	}
	return errs
}

// effect is the combined impairment of one direction and packet class.
type effect struct {
	loss, dup, reorder float64
	delay, jitter, gap time.Duration
}

func (e *effect) add(im Impairment) {
	loss := im.Loss
	if im.Blackhole {
		loss = 1
	}
	e.loss = 1 - (1-e.loss)*(1-loss)
	e.dup = 1 - (1-e.dup)*(1-im.Duplicate)
	e.reorder = 1 - (1-e.reorder)*(1-im.Reorder)
	e.delay += im.Delay
	e.jitter += im.Jitter
	gap := im.ReorderGap
	if gap == 0 {
		gap = defaultReorderGap
	}
	if im.Reorder > 0 && gap > e.gap {
		e.gap = gap
	}
}

const (
	dirUpIdx = iota
	dirDownIdx
)

// MediaOptions configures NewMediaImpairment.
type MediaOptions struct {
	// MaxQueue bounds the packets held back per socket and direction (delay,
	// reorder); past it packets are dropped, as a router's queue would.
	// Default 4096 (about 50 s of one call's packets).
	MaxQueue int
}

// MediaImpairment holds the active impairments and hands out the wrapped
// transport.Net. Safe for concurrent use.
type MediaImpairment struct {
	seed     uint64
	maxQueue int
	std      transport.Net
	conns    atomic.Uint64

	mu     sync.Mutex
	active map[string]Impairment
	// table[dir][class] (class 0: RTP/RTCP, 1: everything else); nil = clean.
	table atomic.Pointer[[2][2]*effect]

	stats [2]dirCounters
}

type dirCounters struct {
	packets, dropped, duplicated, delayed, reordered, overflow atomic.Int64
}

// DirStats counts what happened to the packets of one direction.
type DirStats struct {
	Packets    int64 `json:"packets"`    // packets that went through a wrapped socket
	Dropped    int64 `json:"dropped"`    // lost or blackholed
	Duplicated int64 `json:"duplicated"` // extra copies sent
	Delayed    int64 `json:"delayed"`    // held back by delay or jitter
	Reordered  int64 `json:"reordered"`  // held back by the reorder gap
	Overflow   int64 `json:"overflow"`   // dropped because the delay queue was full
}

// MediaStats is the impairment's work so far, by direction.
type MediaStats struct {
	Up   DirStats `json:"up"`
	Down DirStats `json:"down"`
}

// NewMediaImpairment makes an impairment with no faults active. seed fixes
// every socket's PRNG (socket i gets a stream derived from seed and i).
func NewMediaImpairment(seed uint64, opts MediaOptions) (*MediaImpairment, error) {
	std, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("media impairment: %w", err)
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 4096
	}
	return &MediaImpairment{seed: seed, maxQueue: opts.MaxQueue, std: std, active: map[string]Impairment{}}, nil
}

// Net is the transport.Net to give pion (SettingEngine.SetNet): its UDP
// sockets apply the active impairments. Other calls go to the standard
// library unchanged.
func (m *MediaImpairment) Net() transport.Net { return &impairNet{Net: m.std, m: m} }

// Set activates (or replaces) the impairment called name.
func (m *MediaImpairment) Set(name string, im Impairment) error {
	if errs := im.Validate(); len(errs) > 0 {
		return fmt.Errorf("media impairment %s: %w", name, errors.Join(errs...))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active[name] = im
	m.rebuild()
	return nil
}

// Clear deactivates the impairment called name (no error if it is not active).
func (m *MediaImpairment) Clear(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.active, name)
	m.rebuild()
}

// Active lists the names of the active impairments, sorted.
func (m *MediaImpairment) Active() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.active))
	for n := range m.active {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (m *MediaImpairment) rebuild() {
	if len(m.active) == 0 {
		m.table.Store(nil)
		return
	}
	var t [2][2]*effect
	for d := range t {
		for c := range t[d] {
			t[d][c] = &effect{}
		}
	}
	for _, im := range m.active {
		for d, name := range []string{DirUp, DirDown} {
			if im.Direction != "" && im.Direction != DirBoth && im.Direction != name {
				continue
			}
			t[d][0].add(im)
			if !im.RTPOnly {
				t[d][1].add(im)
			}
		}
	}
	m.table.Store(&t)
}

// Stats returns the counters so far.
func (m *MediaImpairment) Stats() MediaStats {
	get := func(c *dirCounters) DirStats {
		return DirStats{Packets: c.packets.Load(), Dropped: c.dropped.Load(), Duplicated: c.duplicated.Load(),
			Delayed: c.delayed.Load(), Reordered: c.reordered.Load(), Overflow: c.overflow.Load()}
	}
	return MediaStats{Up: get(&m.stats[dirUpIdx]), Down: get(&m.stats[dirDownIdx])}
}

// Wrap impairs an existing UDP socket (the Net's sockets are wrapped this
// way). The wrapper owns conn: closing it closes conn.
func (m *MediaImpairment) Wrap(conn transport.UDPConn) transport.UDPConn {
	i := m.conns.Add(1)
	c := &impairConn{
		UDPConn:  conn,
		m:        m,
		rng:      rand.New(rand.NewPCG(m.seed, 0x6d656469610000^i)),
		readCh:   make(chan packet, 256),
		closed:   make(chan struct{}),
		pumpDone: make(chan struct{}),
		rdl:      deadline.New(),
	}
	c.up = newDelayLine(m.maxQueue, &m.stats[dirUpIdx], c.closed, c.send)
	c.down = newDelayLine(m.maxQueue, &m.stats[dirDownIdx], c.closed, c.deliver)
	go c.pump()
	return c
}

type impairNet struct {
	transport.Net
	m *MediaImpairment
}

func (n *impairNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return n.m.Wrap(c), nil
}

func (n *impairNet) ListenPacket(network, address string) (net.PacketConn, error) {
	if !strings.HasPrefix(network, "udp") {
		return n.Net.ListenPacket(network, address)
	}
	a, err := n.Net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, err
	}
	return n.ListenUDP(network, a)
}

type packet struct {
	b    []byte
	addr net.Addr
}

// impairConn is one impaired socket. Writes are impaired on the way out;
// reads come from a pump goroutine that reads the real socket and impairs on
// the way in (a goroutine because a delayed packet must wait without
// blocking the packets behind it).
type impairConn struct {
	transport.UDPConn
	m *MediaImpairment

	rngMu sync.Mutex
	rng   *rand.Rand

	up, down *delayLine

	readCh    chan packet
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
	pumpDone  chan struct{}
	pumpErr   error
	rdl       *deadline.Deadline
}

// plan decides a packet's fate: how many copies go out and the delay of
// each. It draws the same number of values for every packet of a given
// effect, so a seed replays the same fates for the same packet sequence.
func (c *impairConn) plan(dir int, b []byte) (copies int, delays [2]time.Duration, reordered [2]bool) {
	st := &c.m.stats[dir]
	st.packets.Add(1)
	t := c.m.table.Load()
	if t == nil {
		return 1, delays, reordered
	}
	class := 1
	if len(b) > 0 && b[0] >= 128 && b[0] <= 191 {
		class = 0
	}
	e := t[dir][class]
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	if e.loss > 0 && c.rng.Float64() < e.loss {
		st.dropped.Add(1)
		return 0, delays, reordered
	}
	copies = 1
	if e.dup > 0 && c.rng.Float64() < e.dup {
		copies = 2
		st.duplicated.Add(1)
	}
	for i := 0; i < copies; i++ {
		d := e.delay
		if e.jitter > 0 {
			d += time.Duration((2*c.rng.Float64() - 1) * float64(e.jitter))
			d = max(d, 0)
		}
		if e.reorder > 0 && c.rng.Float64() < e.reorder {
			d += e.gap
			reordered[i] = true
		}
		delays[i] = d
	}
	return copies, delays, reordered
}

// send writes to the real socket; errors of delayed packets are lost, as a
// network would lose them.
func (c *impairConn) send(p packet) {
	if p.addr == nil {
		_, _ = c.UDPConn.Write(p.b)
		return
	}
	_, _ = c.UDPConn.WriteTo(p.b, p.addr)
}

// deliver hands an incoming packet to ReadFrom, waiting while the reader is
// behind (backpressure to the kernel buffer, as without the wrapper).
func (c *impairConn) deliver(p packet) {
	select {
	case c.readCh <- p:
	case <-c.closed:
	}
}

func (c *impairConn) impair(dir int, line *delayLine, p packet, now func(packet) error) error {
	copies, delays, reordered := c.plan(dir, p.b)
	var err error
	for i := 0; i < copies; i++ {
		q := p
		if i > 0 {
			q.b = append([]byte(nil), p.b...)
		}
		if delays[i] <= 0 {
			if e := now(q); e != nil && err == nil {
				err = e
			}
			continue
		}
		line.push(q, delays[i], reordered[i])
	}
	return err
}

func (c *impairConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	// Fast path: nothing active, no copy.
	if c.m.table.Load() == nil {
		c.m.stats[dirUpIdx].packets.Add(1)
		return c.UDPConn.WriteTo(b, addr)
	}
	p := packet{b: append([]byte(nil), b...), addr: addr}
	err := c.impair(dirUpIdx, c.up, p, func(q packet) error {
		_, err := c.UDPConn.WriteTo(q.b, q.addr)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *impairConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	return c.WriteTo(b, addr)
}

func (c *impairConn) WriteMsgUDP(b, _ []byte, addr *net.UDPAddr) (int, int, error) {
	n, err := c.WriteTo(b, addr)
	return n, 0, err
}

func (c *impairConn) pump() {
	defer close(c.pumpDone)
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := c.UDPConn.ReadFrom(buf)
		if err != nil {
			c.pumpErr = err
			return
		}
		p := packet{b: append([]byte(nil), buf[:n]...), addr: addr}
		_ = c.impair(dirDownIdx, c.down, p, func(q packet) error { c.deliver(q); return nil })
	}
}

func (c *impairConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.readCh:
		return copy(b, p.b), p.addr, nil
	default:
	}
	select {
	case p := <-c.readCh:
		return copy(b, p.b), p.addr, nil
	case <-c.pumpDone:
		if c.pumpErr != nil {
			return 0, nil, c.pumpErr
		}
		return 0, nil, net.ErrClosed
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-c.rdl.Done():
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (c *impairConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, a, err := c.ReadFrom(b)
	ua, _ := a.(*net.UDPAddr)
	return n, ua, err
}

func (c *impairConn) ReadMsgUDP(b, _ []byte) (int, int, int, *net.UDPAddr, error) {
	n, a, err := c.ReadFromUDP(b)
	return n, 0, 0, a, err
}

func (c *impairConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFrom(b)
	return n, err
}

func (c *impairConn) Write(b []byte) (int, error) {
	if c.m.table.Load() == nil {
		c.m.stats[dirUpIdx].packets.Add(1)
		return c.UDPConn.Write(b)
	}
	p := packet{b: append([]byte(nil), b...)}
	err := c.impair(dirUpIdx, c.up, p, func(q packet) error {
		_, err := c.UDPConn.Write(q.b)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// SetReadDeadline applies to the wrapper's reads (the pump keeps reading the
// real socket until Close).
func (c *impairConn) SetReadDeadline(t time.Time) error {
	c.rdl.Set(t)
	return nil
}

func (c *impairConn) SetDeadline(t time.Time) error {
	c.rdl.Set(t)
	return c.UDPConn.SetWriteDeadline(t)
}

// Close closes the real socket, drops what is held back and waits for the
// pump and delay goroutines.
func (c *impairConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.closeErr = c.UDPConn.Close()
		<-c.pumpDone
		c.up.wait()
		c.down.wait()
	})
	return c.closeErr
}

// delayLine releases held-back packets in due order (FIFO for equal due
// times, so a constant delay never reorders). Its goroutine starts with the
// first packet and ends when the socket closes.
type delayLine struct {
	mu      sync.Mutex
	h       pktHeap
	seq     uint64
	max     int
	st      *dirCounters
	wake    chan struct{}
	closed  <-chan struct{}
	out     func(packet)
	once    sync.Once
	started atomic.Bool
	done    chan struct{}
}

func newDelayLine(maxQ int, st *dirCounters, closed <-chan struct{}, out func(packet)) *delayLine {
	return &delayLine{max: maxQ, st: st, wake: make(chan struct{}, 1), closed: closed, out: out, done: make(chan struct{})}
}

func (l *delayLine) push(p packet, d time.Duration, reordered bool) {
	l.mu.Lock()
	if len(l.h) >= l.max {
		l.mu.Unlock()
		l.st.overflow.Add(1)
		l.st.dropped.Add(1)
		return
	}
	l.seq++
	heap.Push(&l.h, heldPkt{p: p, due: time.Now().Add(d), seq: l.seq})
	l.mu.Unlock()
	if reordered {
		l.st.reordered.Add(1)
	} else {
		l.st.delayed.Add(1)
	}
	l.once.Do(func() { l.started.Store(true); go l.run() })
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *delayLine) run() {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		var wait time.Duration = -1
		var ready []packet
		now := time.Now()
		for len(l.h) > 0 {
			if d := l.h[0].due.Sub(now); d > 0 {
				wait = d
				break
			}
			ready = append(ready, heap.Pop(&l.h).(heldPkt).p)
		}
		l.mu.Unlock()
		for _, p := range ready {
			l.out(p)
		}
		if len(ready) > 0 {
			continue
		}
		var tc <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-tc:
		case <-l.wake:
			if tc != nil && !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-l.closed:
			return
		}
	}
}

func (l *delayLine) wait() {
	if l.started.Load() {
		<-l.done
	}
}

type heldPkt struct {
	p   packet
	due time.Time
	seq uint64
}

type pktHeap []heldPkt

func (h pktHeap) Len() int { return len(h) }
func (h pktHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h pktHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)   { *h = append(*h, x.(heldPkt)) }
func (h *pktHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// The media fault kinds: impairments of the clients' UDP sockets. Every
// kind takes every Impairment field; the kind names what must be set
// (faultspec's table) and media-blackhole drops everything.
func init() {
	for _, k := range []string{faultspec.KindMediaLoss, faultspec.KindMediaDelay, faultspec.KindMediaJitter,
		faultspec.KindMediaDuplicate, faultspec.KindMediaReorder, faultspec.KindMediaBlackhole} {
		register(k, buildMedia)
	}
}

func buildMedia(name string, f faultspec.FaultSpec, env Env) (Fault, error) {
	return newMediaFault(name, f.Kind, env.Media, Impairment{
		Loss: f.Loss, Delay: f.Delay.Duration, Jitter: f.Jitter.Duration, Duplicate: f.Duplicate,
		Reorder: f.Reorder, ReorderGap: f.ReorderGap.Duration, Direction: f.Direction, RTPOnly: f.RTPOnly,
	}), nil
}

// MediaFault activates an Impairment for its window.
type MediaFault struct {
	name   string
	m      *MediaImpairment
	im     Impairment
	params map[string]string
}

var (
	_ Fault = (*MediaFault)(nil)
	_ Quick = (*MediaFault)(nil)
)

// Quick: Inject only swaps an impairment table.
func (f *MediaFault) Quick() bool { return true }

// NewMediaFault builds a fault that sets im on m while injected.
func NewMediaFault(name, kind string, m *MediaImpairment, im Impairment) (*MediaFault, error) {
	if errs := im.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s: %w", faultspec.ErrInvalidProfile, name, errors.Join(errs...))
	}
	return newMediaFault(name, kind, m, im), nil
}

// newMediaFault is NewMediaFault for an impairment already validated (a
// profile's, by the scenario validator).
func newMediaFault(name, kind string, m *MediaImpairment, im Impairment) *MediaFault {
	if kind == faultspec.KindMediaBlackhole {
		im.Blackhole = true
	}
	dir := im.Direction
	if dir == "" {
		dir = DirBoth
	}
	loss := im.Loss
	if im.Blackhole {
		loss = 1
	}
	p := map[string]string{ParamKind: kind, ParamDirection: dir}
	if loss > 0 {
		p[ParamLoss] = strconv.FormatFloat(loss, 'g', -1, 64)
	}
	if tail := im.Delay + im.Jitter; tail > 0 {
		p[ParamTail] = tail.String()
	}
	if im.Delay > 0 {
		p["delay"] = im.Delay.String()
	}
	if im.Jitter > 0 {
		p["jitter"] = im.Jitter.String()
	}
	if im.Duplicate > 0 {
		p["duplicate"] = strconv.FormatFloat(im.Duplicate, 'g', -1, 64)
	}
	if im.Reorder > 0 {
		p["reorder"] = strconv.FormatFloat(im.Reorder, 'g', -1, 64)
	}
	if im.RTPOnly {
		p["rtp_only"] = "true"
	}
	return &MediaFault{name: name, m: m, im: im, params: p}
}

func (f *MediaFault) Name() string              { return f.name }
func (f *MediaFault) Params() map[string]string { return f.params }

func (f *MediaFault) Available(env Env) error {
	if f.m == nil || env.Media == nil {
		return fmt.Errorf("%s: %w: the clients' media does not go through the impaired net (MediaImpairment.Net)", f.name, ErrUnavailable)
	}
	return nil
}

func (f *MediaFault) Inject(context.Context) error { return f.m.Set(f.name, f.im) }

func (f *MediaFault) Heal(context.Context) error {
	f.m.Clear(f.name)
	return nil
}

// RegisterMetrics exports the counters of Stats as
// telechaos_media_impaired_packets_total{direction,action} (action: seen,
// dropped, duplicated, delayed, reordered, overflow).
func (m *MediaImpairment) RegisterMetrics(reg prometheus.Registerer) error {
	for d, dir := range []string{DirUp, DirDown} {
		c := &m.stats[d]
		for _, a := range []struct {
			action string
			v      *atomic.Int64
		}{{"seen", &c.packets}, {"dropped", &c.dropped}, {"duplicated", &c.duplicated}, {"delayed", &c.delayed}, {"reordered", &c.reordered}, {"overflow", &c.overflow}} {
			v := a.v
			cf := prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "telechaos_media_impaired_packets_total",
				Help:        "Packets through the clients' impaired UDP sockets, by direction and what the impairment did.",
				ConstLabels: prometheus.Labels{"direction": dir, "action": a.action},
			}, func() float64 { return float64(v.Load()) })
			if err := reg.Register(cf); err != nil {
				return fmt.Errorf("register media impairment metrics: %w", err)
			}
		}
	}
	return nil
}
