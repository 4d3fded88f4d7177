package driver

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
)

// nopCloser makes a bytes.Buffer the io.WriteCloser the writer closes.
type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// writeWebM writes frames as one track with the library's own WebM writer
// (webm.NewSimpleBlockWriter, as a pion-based recorder does), SimpleBlocks in
// clusters.
func writeWebM(t testing.TB, codec string, frames [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	te := webm.TrackEntry{Name: "t", TrackNumber: 1, TrackUID: 7, CodecID: codec, TrackType: 2}
	if codec == "V_VP8" {
		te.TrackType = 1
		te.Video = &webm.Video{PixelWidth: 320, PixelHeight: 240}
	} else {
		te.Audio = &webm.Audio{SamplingFrequency: 48000, Channels: 2}
	}
	ws, err := webm.NewSimpleBlockWriter(nopCloser{&buf}, []webm.TrackEntry{te})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if _, err := ws[0].Write(i == 0, int64(i*20), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws[0].Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeMKVBlockGroups writes a Matroska (DocType matroska) file with known
// sizes whose frames alternate between SimpleBlocks and BlockGroups, the
// third block Xiph-laced with two frames.
func writeMKVBlockGroups(t testing.TB, frames [][]byte) []byte {
	t.Helper()
	type blockGroup struct {
		Block ebml.Block `ebml:"Block"`
	}
	type cluster struct {
		Timecode    uint64       `ebml:"Timecode"`
		SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
		BlockGroup  []blockGroup `ebml:"BlockGroup"`
	}
	// The marshaller writes struct fields in order, so to interleave the two
	// kinds each cluster holds one kind.
	var clusters []cluster
	for i := 0; i < len(frames); {
		blk := ebml.Block{TrackNumber: 1, Timecode: 0, Keyframe: true, Data: [][]byte{frames[i]}}
		i++
		if len(clusters)%3 == 2 && i < len(frames) {
			blk.Lacing = ebml.LacingXiph
			blk.Data = append(blk.Data, frames[i])
			i++
		}
		c := cluster{Timecode: uint64(len(clusters) * 20)}
		if len(clusters)%2 == 0 {
			c.SimpleBlock = []ebml.Block{blk}
		} else {
			c.BlockGroup = []blockGroup{{blk}}
		}
		clusters = append(clusters, c)
	}
	doc := struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment struct {
			Info    webm.Info   `ebml:"Info"`
			Tracks  webm.Tracks `ebml:"Tracks"`
			Cluster []cluster   `ebml:"Cluster"`
		} `ebml:"Segment"`
	}{Header: webm.EBMLHeader{EBMLVersion: 1, EBMLReadVersion: 1, EBMLMaxIDLength: 4, EBMLMaxSizeLength: 8, DocType: "matroska", DocTypeVersion: 4, DocTypeReadVersion: 2}}
	doc.Segment.Info = webm.Info{TimecodeScale: 1000000, MuxingApp: "test", WritingApp: "test"}
	doc.Segment.Tracks.TrackEntry = []webm.TrackEntry{{TrackNumber: 1, TrackUID: 1, CodecID: "A_OPUS", TrackType: 2, Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2}}}
	doc.Segment.Cluster = clusters
	var buf bytes.Buffer
	if err := ebml.Marshal(&doc, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sameFrames(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d frames, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: frame %d differs", what, i)
		}
	}
}

func TestReadWebMRoundTrip(t *testing.T) {
	audio := testAudioFrames(60)
	got, err := ReadWebM(writeWebM(t, "A_OPUS", audio))
	if err != nil {
		t.Fatal(err)
	}
	sameFrames(t, "webm opus", got, audio)

	video := testVideoFrames(40)
	got, err = ReadWebM(writeWebM(t, "V_VP8", video))
	if err != nil {
		t.Fatal(err)
	}
	sameFrames(t, "webm vp8", got, video)

	mixed := testAudioFrames(11)
	got, err = ReadWebM(writeMKVBlockGroups(t, mixed))
	if err != nil {
		t.Fatal(err)
	}
	sameFrames(t, "mkv blockgroups", got, mixed)

	got, err = ReadWebM(writeWebM(t, "A_OPUS", nil))
	if err != nil || len(got) != 0 {
		t.Fatalf("empty recording: %d frames, err %v", len(got), err)
	}
}

// A file cut anywhere yields the frames whose blocks were complete, in
// order, with no error: that is what a crash mid-write leaves.
func TestReadWebMCutShort(t *testing.T) {
	for _, name := range []string{"webm", "mkv"} {
		frames := testAudioFrames(25)
		var b []byte
		if name == "webm" {
			b = writeWebM(t, "A_OPUS", frames)
		} else {
			b = writeMKVBlockGroups(t, frames)
		}
		full, err := ReadWebM(b)
		if err != nil || len(full) != len(frames) {
			t.Fatalf("%s: full file: %d frames, %v", name, len(full), err)
		}
		prev := 0
		for cut := 0; cut <= len(b); cut++ {
			got, err := ReadWebM(b[:cut:cut])
			if err != nil {
				t.Fatalf("%s: cut at %d of %d: %v", name, cut, len(b), err)
			}
			// Laced blocks (the mkv file) are the exception: the library
			// keeps a laced block's leading frames when the cut falls on a
			// frame boundary inside it, and drops the block when it falls
			// inside a frame. Recorders of WebRTC calls do not lace.
			if len(got) < prev && name == "webm" {
				t.Fatalf("%s: cut at %d: %d frames, fewer than %d at a shorter cut", name, cut, len(got), prev)
			}
			for i := range got {
				if !bytes.Equal(got[i], frames[i]) {
					t.Fatalf("%s: cut at %d: frame %d is not the recorded one", name, cut, i)
				}
			}
			prev = len(got)
		}
		if prev != len(frames) {
			t.Fatalf("%s: whole file gave %d frames", name, prev)
		}
	}
}

func TestReadWebMRejects(t *testing.T) {
	good := writeWebM(t, "A_OPUS", testAudioFrames(5))
	h264 := writeWebM(t, "V_MPEG4/ISO/AVC", testVideoFrames(2))
	doctype := bytes.Replace(good, []byte("webm"), []byte("wxyz"), 1)
	cases := map[string]struct {
		b      []byte
		frames int
		want   string
	}{
		"text":       {[]byte("this is not a webm file at all"), 0, "no EBML header at offset 0"},
		"short junk": {[]byte("xy"), 0, "no EBML header at offset 0"},
		"ogg":        {writeOgg(t, testAudioFrames(2)), 0, "no EBML header"},
		"ivf":        {writeIVF(t, testVideoFrames(2)), 0, "no EBML header"},
		"codec":      {h264, 0, `codec "V_MPEG4/ISO/AVC"`},
		"doctype":    {doctype, 0, `DocType "wxyz"`},
		"junk tail":  {append(append([]byte(nil), good...), "\xff\xffjunkjunk"...), 5, "offset"},
	}
	for name, c := range cases {
		got, err := ReadWebM(c.b)
		if !errors.Is(err, ErrContainer) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrContainer naming %q", name, err, c.want)
		}
		if len(got) != c.frames {
			t.Errorf("%s: %d frames with the error, want %d", name, len(got), c.frames)
		}
	}
}

// A hostile size field (a block claiming 2^56 bytes, or just more than the
// whole body) is a cut, not an allocation: the reader allocates at most
// about the body's size.
func TestReadWebMHostileSizes(t *testing.T) {
	good := writeWebM(t, "A_OPUS", testAudioFrames(3))
	// A SimpleBlock (0xA3) with the largest 8-byte size, then a little data.
	huge := append(append([]byte(nil), good...), 0xa3, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x81, 0, 0, 0x80, 1, 2, 3)
	// A Binary element (CodecPrivate, 0x63A2) claiming 100 MiB.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	got, err := ReadWebM(huge)
	runtime.ReadMemStats(&ms)
	if err != nil {
		t.Fatalf("huge block: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("huge block: %d frames, want the 3 before it", len(got))
	}
	if alloc := ms.TotalAlloc - before; alloc > 1<<20 {
		t.Fatalf("huge block: allocated %d bytes for a %d-byte body", alloc, len(huge))
	}
	// Deep nesting of unknown-size master elements is bounded by the library.
	deep := append([]byte(nil), good[:len(good)-0]...)
	for range 5000 {
		deep = append(deep, 0xa0, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) // BlockGroup, unknown size
	}
	if _, err := ReadWebM(deep); err == nil {
		t.Log("deep nesting read as a cut")
	} else if errors.Is(err, errParserPanic) {
		t.Fatalf("deep nesting: %v", err)
	}
}

func FuzzReadWebM(f *testing.F) {
	f.Add(writeWebM(f, "A_OPUS", testAudioFrames(3)))
	f.Add(writeWebM(f, "V_VP8", testVideoFrames(2)))
	f.Add(writeMKVBlockGroups(f, testAudioFrames(4)))
	f.Add(writeWebM(f, "A_OPUS", nil))
	f.Add([]byte(ebmlMagic))
	// Tracks the clinic recorded as WebM in a real call (--record-format webm).
	seeds, _ := filepath.Glob("testdata/webm/*.webm")
	if len(seeds) == 0 {
		f.Fatal("no recorded WebM seeds in testdata/webm")
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if fr, err := ReadWebM(b); err != nil || len(fr) == 0 {
			f.Fatalf("%s: %d frames, %v", p, len(fr), err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := ReadWebM(b)
		if errors.Is(err, errParserPanic) {
			t.Fatalf("parser panicked: %v", err)
		}
		if err != nil && !errors.Is(err, ErrContainer) {
			t.Errorf("error not ErrContainer: %v", err)
		}
		total := 0
		for _, p := range frames {
			total += len(p)
		}
		if total > len(b) {
			t.Errorf("%d frame bytes from %d input bytes", total, len(b))
		}
	})
}
