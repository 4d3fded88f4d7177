package media

import (
	"sync"

	"github.com/pion/rtp"

	"github.com/telechaos/telechaos/clinic/bugs"
)

// videoSlot is a reusable video recorder slot: which recording a participant's
// video goes to. Slots are pooled per engine and reused across calls (a switch
// used to allocate a recorder per call); a released slot keeps its last owner
// until it is re-armed.
type videoSlot struct {
	consultationID string
	recordingID    string
	warm           bool // armed by an earlier call before
}

// reset arms the slot for a call's recording.
func (s *videoSlot) reset(c *call) {
	s.consultationID, s.recordingID = c.ConsultationID, c.RecordingID
}

// slotPool is a LIFO free list of video slots.
type slotPool struct {
	mu   sync.Mutex
	free []*videoSlot
}

func (p *slotPool) get() *videoSlot {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		return s
	}
	return &videoSlot{}
}

func (p *slotPool) put(s *videoSlot) {
	s.warm = true
	p.mu.Lock()
	p.free = append(p.free, s)
	p.mu.Unlock()
}

// acquireSlot takes a slot from the pool and arms it with c's recording.
func (e *Engine) acquireSlot(c *call, p *peer) *videoSlot {
	s := e.slots.get()
	// switch-reuse (incident 2020-06-09): warm slots skipped this reset, so
	// the video went to, and the participant was granted, the recording the
	// slot served last.
	if !s.warm || !e.bugs.Fire(bugs.SwitchReuse) {
		s.reset(c)
	}
	e.log.Debug("media: video slot armed", "consultation", c.ConsultationID, "user", p.user, "recording", s.recordingID, "warm", s.warm)
	return s
}

// prerollCap bounds a pre-roll buffer (frames); opening a track normally takes
// a few milliseconds, this is about 1.3 s of audio. A full buffer makes the
// reader wait for the file instead of dropping frames.
const prerollCap = 64

// preroll holds the frames of a track that arrive before its file is ready.
type preroll struct {
	pkts []*rtp.Packet
}

func (b *preroll) add(pkt *rtp.Packet, m *metrics) {
	if len(b.pkts) == prerollCap {
		copy(b.pkts, b.pkts[1:])
		b.pkts = b.pkts[:prerollCap-1]
		m.prerollDropped.Inc()
	}
	b.pkts = append(b.pkts, pkt)
}

// prerollPool reuses pre-roll buffers across recordings.
type prerollPool struct {
	mu   sync.Mutex
	free []*preroll
}

func (p *prerollPool) get() *preroll {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	return &preroll{pkts: make([]*rtp.Packet, 0, prerollCap)}
}

// put returns a flushed buffer to the pool, emptied for the next recording.
func (p *prerollPool) put(b *preroll, set *bugs.Set) {
	// preroll-leak: the buffer went back without being emptied, so the next
	// recording began with this one's frames.
	if !set.Fire(bugs.PrerollLeak) {
		clear(b.pkts)
		b.pkts = b.pkts[:0]
	}
	p.mu.Lock()
	p.free = append(p.free, b)
	p.mu.Unlock()
}

// parkedSwitch is the engine-wide "call being switched" of the switch-race bug.
// The mutex keeps it free of memory races; the logical race remains.
type parkedSwitch struct {
	mu sync.Mutex
	c  *call
}

func (s *parkedSwitch) park(c *call) {
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
}

func (s *parkedSwitch) take() *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// route says where a published video track goes: to sub in call c.
type route struct {
	c   *call
	pub *peer
	sub string
}

// routeTable maps published video tracks to their subscriber.
type routeTable struct {
	mu sync.RWMutex
	m  map[string]route
}

func (t *routeTable) set(key string, r route) {
	t.mu.Lock()
	t.m[key] = r
	t.mu.Unlock()
}

func (t *routeTable) get(key string) (route, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.m[key]
	return r, ok
}

// remove deletes key if it still routes pub's track.
func (t *routeTable) remove(key string, pub *peer) {
	t.mu.Lock()
	if r, ok := t.m[key]; ok && r.pub == pub {
		delete(t.m, key)
	}
	t.mu.Unlock()
}
