package media

import (
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// outTrack is a track the clinic sends to a subscriber, carrying the other
// participant's media. Its RTP numbering stays continuous when the source
// changes (the publisher rejoined with a new PeerConnection): a new source
// starts at arbitrary sequence numbers, and the subscriber's SRTP replay
// window would drop whatever looks older than what it has seen.
type outTrack struct {
	*webrtc.TrackLocalStaticRTP
	step uint32 // timestamp step assumed across a source change (one frame)

	mu      sync.Mutex
	started bool
	src     uint32 // SSRC of the current source
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
}

func newOutTrack(c webrtc.RTPCodecCapability, id, streamID string, step uint32) (*outTrack, error) {
	t, err := webrtc.NewTrackLocalStaticRTP(c, id, streamID)
	if err != nil {
		return nil, err
	}
	return &outTrack{TrackLocalStaticRTP: t, step: step}, nil
}

// forward sends a copy of pkt renumbered into this track's sequence space.
func (o *outTrack) forward(pkt *rtp.Packet) error {
	h := pkt.Header
	o.mu.Lock()
	if !o.started || h.SSRC != o.src {
		if o.started {
			o.seqOff = o.lastSeq + 1 - h.SequenceNumber
			o.tsOff = o.lastTS + o.step - h.Timestamp
		}
		o.started, o.src = true, h.SSRC
	}
	h.SequenceNumber += o.seqOff
	h.Timestamp += o.tsOff
	o.lastSeq, o.lastTS = h.SequenceNumber, h.Timestamp
	o.mu.Unlock()
	return o.WriteRTP(&rtp.Packet{Header: h, Payload: pkt.Payload})
}
