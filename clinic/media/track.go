package media

import (
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"

	"github.com/telechaos/telechaos/clinic/bugs"
)

// onTrack runs in its own pion goroutine per incoming track: it forwards the
// track to the other participant and records it until the PeerConnection closes.
func (e *Engine) onTrack(p *peer, t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	if !p.enter() {
		return
	}
	defer p.wg.Done()
	p.spawn(func() { drainRTCP(r.ReadRTCP) })
	mime := t.Codec().MimeType
	switch {
	case t.Kind() == webrtc.RTPCodecTypeAudio && strings.EqualFold(mime, webrtc.MimeTypeOpus):
		e.recvAudio(p, t)
	case t.Kind() == webrtc.RTPCodecTypeVideo && strings.EqualFold(mime, webrtc.MimeTypeVP8):
		e.recvVideo(p, t)
	default:
		e.log.Warn("media: ignoring track with unsupported codec", "consultation", p.c.ConsultationID, "user", p.user, "codec", mime)
		for {
			if _, _, err := t.ReadRTP(); err != nil {
				return
			}
		}
	}
}

// recvAudio forwards audio at once and records it. Opening the track file
// (a file plus a catalog row) must not hold up the forwarding, so packets that
// arrive before the file is ready wait in a pre-roll buffer and are flushed
// into the recording first.
func (e *Engine) recvAudio(p *peer, t *webrtc.TrackRemote) {
	pre := e.prerolls.get()
	opened := make(chan *recorder, 1)
	if !p.spawn(func() { opened <- e.openTrack(p, kindAudio, p.c.RecordingID) }) {
		return
	}
	// The buffer lives as long as the track and goes back to the pool when
	// the track ends (emptied, unless preroll-leak fires).
	defer e.prerolls.put(pre, e.bugs)
	var rec *recorder
	waiting := true
	flush := func() {
		for _, pkt := range pre.pkts {
			rec.write(pkt)
		}
		waiting = false
	}
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			break
		}
		e.m.received[kindAudio].Inc()
		e.forwardAudio(p, pkt)
		if waiting {
			pre.add(pkt, e.m)
			if len(pre.pkts) >= prerollCap {
				// The file is slow to open: wait for it rather than drop.
				rec = <-opened
				flush()
				continue
			}
			select {
			case rec = <-opened:
				flush()
			default:
			}
			continue
		}
		rec.write(pkt)
	}
	if waiting {
		rec = <-opened
		flush()
	}
}

func (e *Engine) forwardAudio(p *peer, pkt *rtp.Packet) {
	to := p.c.peer(p.c.other(p.user))
	if to == nil {
		return
	}
	if err := to.audioOut.forward(pkt); err == nil {
		e.m.forwarded[kindAudio].Inc()
	}
}

// recvVideo records the participant's video into the slot armed at the switch
// and forwards it through the route table.
func (e *Engine) recvVideo(p *peer, t *webrtc.TrackRemote) {
	p.mu.Lock()
	slot := p.slot
	p.mu.Unlock()
	if slot == nil {
		// Video offered without a switch (at join): arm a slot now.
		slot = e.acquireSlot(p.c, p)
		p.mu.Lock()
		p.slot = slot
		p.mu.Unlock()
	}
	key := e.routeKey(p, t)
	e.routes.set(key, route{c: p.c, pub: p, sub: p.c.other(p.user)})
	defer e.routes.remove(key, p)

	rec := e.openTrack(p, kindVideo, slot.recordingID)
	if rec != nil {
		// The recorder attaches this participant to the recording the slot
		// is armed with, so it shows in their replay list.
		if err := e.cat.GrantAccess(slot.recordingID, p.user); err != nil {
			e.log.Warn("media: grant access", "recording", slot.recordingID, "user", p.user, "err", err)
		}
	}
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		e.m.received[kindVideo].Inc()
		if r, ok := e.routes.get(key); ok {
			if to := r.c.peer(r.sub); to != nil {
				if out := to.video(); out != nil && out.forward(pkt) == nil {
					e.m.forwarded[kindVideo].Inc()
				}
			}
		}
		rec.write(pkt)
	}
}

// routeKey names a published video track in the forwarding table.
func (e *Engine) routeKey(p *peer, t *webrtc.TrackRemote) string {
	if e.bugs.Fire(bugs.LiveCrosstalk) {
		// live-crosstalk: keyed by the client's MediaStream/track id, which the
		// same client software repeats in every call (and on both sides).
		return "msid:" + t.StreamID() + "/" + t.ID()
	}
	return p.c.ConsultationID + "/" + p.user
}
