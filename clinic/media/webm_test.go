package media

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/at-wat/ebml-go"
	"github.com/pion/rtp"
)

// readBack decodes the SimpleBlocks of a WebM file with the library's
// unmarshaller (independently of scanWebM's hook counting).
func readBack(t *testing.T, b []byte) (codec string, frames [][]byte) {
	t.Helper()
	var doc struct {
		Header struct {
			DocType string `ebml:"EBMLDocType"`
		} `ebml:"EBML"`
		Segment struct {
			Tracks struct {
				TrackEntry []struct {
					CodecID string `ebml:"CodecID"`
				} `ebml:"TrackEntry"`
			} `ebml:"Tracks"`
			Cluster []struct {
				SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
			} `ebml:"Cluster"`
		} `ebml:"Segment"`
	}
	if err := ebml.Unmarshal(bytes.NewReader(b), &doc); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if doc.Header.DocType != "webm" || len(doc.Segment.Tracks.TrackEntry) != 1 {
		t.Fatalf("doctype %q, %d tracks", doc.Header.DocType, len(doc.Segment.Tracks.TrackEntry))
	}
	for _, c := range doc.Segment.Cluster {
		for _, blk := range c.SimpleBlock {
			frames = append(frames, blk.Data...)
		}
	}
	return doc.Segment.Tracks.TrackEntry[0].CodecID, frames
}

func TestWebMWriterAudio(t *testing.T) {
	var buf bytes.Buffer
	w, err := newWebMWriter(&buf, kindAudio)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	// 2000 packets of 20 ms: 40 s, so more than one cluster.
	for i := range 2000 {
		p := []byte(fmt.Sprintf("opus frame %d", i))
		want = append(want, p)
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: uint32(1<<32 - 48000 + i*960)}, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRTP(&rtp.Packet{}); err != nil { // empty: dropped
		t.Fatal(err)
	}
	codec, got := readBack(t, buf.Bytes())
	if codec != "A_OPUS" || len(got) != len(want) {
		t.Fatalf("codec %q, %d frames, want %d", codec, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	frames, valid, err := scanWebM(buf.Bytes())
	if err != nil || frames != int64(len(want)) || valid != int64(buf.Len()) {
		t.Fatalf("scan: %d frames, valid %d of %d, %v", frames, valid, buf.Len(), err)
	}
}

func TestWebMWriterVideoReassemblesFromAKeyframe(t *testing.T) {
	var buf bytes.Buffer
	w, err := newWebMWriter(&buf, kindVideo)
	if err != nil {
		t.Fatal(err)
	}
	pkt := func(ts uint32, start, marker bool, payload ...byte) *rtp.Packet {
		desc := byte(0x00)
		if start {
			desc = 0x10
		}
		return &rtp.Packet{Header: rtp.Header{Timestamp: ts, Marker: marker}, Payload: append([]byte{desc}, payload...)}
	}
	for _, p := range []*rtp.Packet{
		pkt(0, true, true, 0x01, 'd'),          // an interframe before any keyframe: dropped
		pkt(3000, true, false, 0x00, 'k', '1'), // keyframe, first half
		pkt(3000, false, true, 'k', '2'),       // second half
		pkt(6000, true, true, 0x01, 'p'),       // interframe
		pkt(9000, false, true, 'x'),            // a middle whose start was lost: dropped
	} {
		if err := w.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	codec, got := readBack(t, buf.Bytes())
	want := [][]byte{{0x00, 'k', '1', 'k', '2'}, {0x01, 'p'}}
	if codec != "V_VP8" || len(got) != len(want) || !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
		t.Fatalf("codec %q frames %q, want %q", codec, got, want)
	}
}

// A file cut anywhere (a crash) scans without error, counting the blocks
// before the cut, and its valid prefix reads back as exactly those blocks.
func TestScanWebMCutAnywhere(t *testing.T) {
	var buf bytes.Buffer
	w, err := newWebMWriter(&buf, kindAudio)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: uint32(i * 960)}, Payload: bytes.Repeat([]byte{byte(i)}, 30+i)}); err != nil {
			t.Fatal(err)
		}
	}
	b := buf.Bytes()
	prev := int64(0)
	for cut := 1; cut <= len(b); cut++ {
		frames, valid, err := scanWebM(b[:cut])
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if frames < prev || valid > int64(cut) {
			t.Fatalf("cut %d: %d frames (before %d), valid %d", cut, frames, prev, valid)
		}
		if frames > 0 {
			if _, got := readBack(t, b[:valid]); int64(len(got)) != frames {
				t.Fatalf("cut %d: valid prefix %d holds %d frames, scan said %d", cut, valid, len(got), frames)
			}
		}
		prev = frames
	}
	if prev != 12 {
		t.Fatalf("whole file: %d frames", prev)
	}
	if _, _, err := scanWebM([]byte("OggS not webm")); !errors.Is(err, ErrCorruptMedia) {
		t.Fatalf("ogg bytes: %v, want ErrCorruptMedia", err)
	}
	if _, _, err := scanWebM(append(append([]byte(nil), b...), "\xff\xffjunk"...)); !errors.Is(err, ErrCorruptMedia) {
		t.Fatalf("junk tail: %v, want ErrCorruptMedia", err)
	}
}
