package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// WebM recording uses github.com/at-wat/ebml-go, the EBML library pion's
// own save-to-webm example uses, with its webm element types. Its
// mkvcore/webm.NewSimpleBlockWriter is not used: it hands every frame to a
// goroutine (three per track) and panics on a write error by default, so a
// frame could not be counted as written when it reached the file. Here each
// element is marshalled by ebml.Marshal straight into the sink, in the
// caller's goroutine: what a crash leaves is every block written so far.

// Record formats the engine accepts (Config.RecordFormat).
const (
	FormatNative = ""     // Ogg/Opus for audio, IVF/VP8 for video (the default)
	FormatWebM   = "webm" // WebM (Matroska) for both kinds
)

// webmMaxClusterSpan is how far (ms) a block may be from its cluster's
// timecode: a block's relative timecode is an int16.
const webmMaxClusterSpan = 30000

// webmWriter writes one track (track number 1) of RTP payloads as WebM
// SimpleBlocks: Opus packets as they come, VP8 frames reassembled from their
// RTP packets and started at a keyframe, as pion's ivfwriter does. Segment
// and clusters have unknown sizes, so the file is valid at every block end.
type webmWriter struct {
	w       io.Writer
	video   bool
	rate    uint32 // RTP clock rate
	started bool
	ts0     uint32 // RTP timestamp of the first frame
	last    int64  // ms of the last block written
	cluster int64  // ms of the open cluster; -1: none
	frame   []byte // VP8 frame being reassembled
	seenKey bool
}

func newWebMWriter(w io.Writer, k kind) (*webmWriter, error) {
	te := webm.TrackEntry{Name: k.String(), TrackNumber: 1, TrackUID: 1}
	ww := &webmWriter{w: w, cluster: -1}
	if k == kindVideo {
		ww.video, ww.rate = true, 90000
		te.CodecID, te.TrackType = "V_VP8", 1
		te.Video = &webm.Video{PixelWidth: 640, PixelHeight: 480}
	} else {
		ww.rate = opusRate
		te.CodecID, te.TrackType = "A_OPUS", 2
		te.Audio = &webm.Audio{SamplingFrequency: opusRate, Channels: opusChannels}
	}
	header := struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment struct {
			Info   webm.Info   `ebml:"Info"`
			Tracks webm.Tracks `ebml:"Tracks"`
		} `ebml:"Segment,size=unknown"`
	}{Header: *webm.DefaultEBMLHeader}
	header.Segment.Info = webm.Info{TimecodeScale: 1000000, MuxingApp: "clinic", WritingApp: "clinic"}
	header.Segment.Tracks.TrackEntry = []webm.TrackEntry{te}
	if err := ebml.Marshal(&header, w); err != nil {
		return nil, err
	}
	return ww, nil
}

// WriteRTP writes the frame pkt completes, if any.
func (ww *webmWriter) WriteRTP(pkt *rtp.Packet) error {
	if len(pkt.Payload) == 0 {
		return nil
	}
	if !ww.video {
		return ww.block(pkt.Timestamp, true, pkt.Payload)
	}
	var vp codecs.VP8Packet
	if _, err := vp.Unmarshal(pkt.Payload); err != nil {
		return err
	}
	if len(vp.Payload) == 0 {
		return nil
	}
	key := vp.Payload[0]&0x01 == 0
	switch {
	case !ww.seenKey && !key && ww.frame == nil:
		return nil // wait for a keyframe
	case ww.frame == nil && vp.S != 1:
		return nil // a frame's middle whose start was lost
	}
	if ww.frame == nil {
		ww.seenKey = ww.seenKey || key
	}
	ww.frame = append(ww.frame, vp.Payload...)
	if !pkt.Marker {
		return nil
	}
	f := ww.frame
	ww.frame = nil
	return ww.block(pkt.Timestamp, f[0]&0x01 == 0, f)
}

// block writes one SimpleBlock, opening a cluster first when there is none
// or the block would not fit the open one's int16 span. Timestamps never go
// backwards in the file.
func (ww *webmWriter) block(ts uint32, key bool, data []byte) error {
	if !ww.started {
		ww.started, ww.ts0 = true, ts
	}
	ms := int64(ts-ww.ts0) / int64(ww.rate/1000)
	ms = max(ms, ww.last)
	if ww.cluster < 0 || ms-ww.cluster > webmMaxClusterSpan {
		c := struct {
			Cluster struct {
				Timecode uint64 `ebml:"Timecode"`
			} `ebml:"Cluster,size=unknown"`
		}{}
		c.Cluster.Timecode = uint64(ms)
		if err := ebml.Marshal(&c, ww.w); err != nil {
			return err
		}
		ww.cluster = ms
	}
	b := struct {
		Block ebml.Block `ebml:"SimpleBlock"`
	}{ebml.Block{TrackNumber: 1, Timecode: int16(ms - ww.cluster), Keyframe: key, Data: [][]byte{data}}}
	// Marshalled whole, then written in one Write: the sink sees a block
	// entirely or (on a failed write) not at all.
	var buf bytes.Buffer
	if err := ebml.Marshal(&b, &buf); err != nil {
		return err
	}
	if _, err := ww.w.Write(buf.Bytes()); err != nil {
		return err
	}
	ww.last = ms
	return nil
}

// Close ends nothing: unknown-size elements need no trailer.
func (ww *webmWriter) Close() error { return nil }

// scanWebM counts the SimpleBlocks/Blocks of a WebM track file the recorder
// wrote and the length of its valid prefix (the end of the last whole
// block, or of the header when there is none). A torn tail is not an error.
func scanWebM(data []byte) (frames, valid int64, err error) {
	if !bytes.HasPrefix(data, []byte("\x1a\x45\xdf\xa3")) {
		if bytes.HasPrefix([]byte("\x1a\x45\xdf\xa3"), data) {
			return 0, 0, nil // header torn
		}
		return 0, 0, fmt.Errorf("%w: no EBML header", ErrCorruptMedia)
	}
	cr := &countReader{r: bytes.NewReader(data)}
	var doc struct {
		Segment struct {
			Tracks  webm.Tracks `ebml:"Tracks"`
			Cluster []struct {
				SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
			} `ebml:"Cluster"`
		} `ebml:"Segment"`
	}
	tracksEnd := int64(0)
	hook := func(e *ebml.Element) {
		switch e.Type {
		case ebml.ElementSimpleBlock:
			// A block cut right after its header comes back with no
			// frame at all (the library's unlacer meets EOF at once).
			if blk, ok := e.Value.(ebml.Block); ok && len(blk.Data) > 0 {
				frames++
				valid = cr.n
			}
		case ebml.ElementTracks:
			tracksEnd = cr.n
		}
	}
	uerr := ebml.Unmarshal(cr, &doc, ebml.WithMaxLeafElementSize(uint64(len(data))), ebml.WithElementReadHooks(hook))
	if frames == 0 {
		valid = tracksEnd
	}
	if uerr != nil && !torn(uerr, cr.n, int64(len(data))) {
		return frames, valid, fmt.Errorf("%w: webm at offset %d: %v", ErrCorruptMedia, cr.n, uerr)
	}
	return frames, valid, nil
}

// torn reports whether an EBML parse error is the file ending mid-element.
func torn(err error, consumed, total int64) bool {
	if errors.Is(err, ebml.ErrTooLargeElement) {
		return true
	}
	return consumed >= total && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, ebml.ErrInvalidElementSize))
}

type countReader struct {
	r *bytes.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
