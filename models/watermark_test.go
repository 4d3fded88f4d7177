package models

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenTags are fixed tags whose encoding must never change: recordings made by
// one version of telechaos are read by the next.
var goldenTags = []struct {
	name string
	tag  Tag
}{
	{"audio-zero", Tag{Kind: Audio}},
	{"audio-ids", Tag{Kind: Audio, Consultation: TagOf("con_1"), Sender: TagOf("usr_patient_1"), Seq: 1}},
	{"video-ids", Tag{Kind: Video, Consultation: TagOf("con_1"), Sender: TagOf("usr_clinician_1"), Seq: 4242}},
	{"video-max", Tag{Kind: Video, Consultation: ^uint64(0), Sender: ^uint64(0), Seq: ^uint32(0)}},
}

func goldenCheck(t *testing.T, file string, got string) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./models -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s changed:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestGoldenTags(t *testing.T) {
	var b strings.Builder
	for _, g := range goldenTags {
		enc := AppendTag(nil, g.tag)
		if len(enc) != TagSize {
			t.Errorf("%s: encoded %d bytes, want %d", g.name, len(enc), TagSize)
		}
		fmt.Fprintf(&b, "%s %s\n", g.name, hex.EncodeToString(enc))
		back, err := DecodeTag(enc)
		if err != nil || back != g.tag {
			t.Errorf("%s: round trip = %+v, %v; want %+v", g.name, back, err, g.tag)
		}
	}
	goldenCheck(t, "tags.golden", b.String())
}

// TagOf is FNV-1a 64: pinned values, so an "optimisation" cannot change it.
func TestTagOfGolden(t *testing.T) {
	for id, want := range map[string]uint64{
		"":  0xcbf29ce484222325,
		"a": 0xaf63dc4c8601ec8c,
	} {
		if got := TagOf(id); got != want {
			t.Errorf("TagOf(%q) = %#x, want %#x", id, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { TagOf("con_0123456789abcdef") }); n != 0 {
		t.Errorf("TagOf allocates %v times", n)
	}
}

func TestGoldenFrames(t *testing.T) {
	tg := Tag{Consultation: TagOf("con_1"), Sender: TagOf("usr_patient_1"), Seq: 7}
	a := AudioFrame(tg, 48)
	v := VideoFrame(tg, 64)
	goldenCheck(t, "frames.golden", fmt.Sprintf("audio %s\nvideo %s\n", hex.EncodeToString(a), hex.EncodeToString(v)))
}

func TestAudioFrameLayout(t *testing.T) {
	tg := Tag{Kind: Video /* overridden */, Consultation: 1, Sender: 2, Seq: 3}
	for _, size := range []int{0, TagSize - 1, TagSize, 100, 1200} {
		f := AudioFrame(tg, size)
		if want := max(size, TagSize); len(f) != want {
			t.Errorf("size %d: len %d, want %d", size, len(f), want)
		}
		got, off, err := FindTag(f)
		want := tg
		want.Kind = Audio
		if err != nil || off != 0 || got != want {
			t.Errorf("size %d: FindTag = %+v, %d, %v", size, got, off, err)
		}
	}
	// Deterministic filler: the same tag makes the same bytes.
	if !bytes.Equal(AudioFrame(tg, 200), AudioFrame(tg, 200)) {
		t.Error("AudioFrame is not deterministic")
	}
}

func TestVideoFrameLayout(t *testing.T) {
	tg := Tag{Consultation: 1, Sender: 2, Seq: 3}
	for _, size := range []int{0, 20, VideoHeaderSize + TagSize, 1000} {
		f := VideoFrame(tg, size)
		if want := max(size, VideoHeaderSize+TagSize); len(f) != want {
			t.Errorf("size %d: len %d, want %d", size, len(f), want)
		}
		if f[0]&1 != 0 {
			t.Errorf("size %d: first byte %#x has bit 0 set (not a VP8 keyframe)", size, f[0])
		}
		if !bytes.Equal(f[3:6], []byte{0x9d, 0x01, 0x2a}) {
			t.Errorf("size %d: no VP8 start code: % x", size, f[:6])
		}
		got, off, err := FindTag(f)
		want := tg
		want.Kind = Video
		if err != nil || off != VideoHeaderSize || got != want {
			t.Errorf("size %d: FindTag = %+v, %d, %v", size, got, off, err)
		}
	}
}

func TestFindTagScans(t *testing.T) {
	tg := Tag{Kind: Audio, Consultation: 9, Sender: 8, Seq: 7}
	for _, prefix := range []int{1, 5, 11, 40, scanLimit} {
		f := append(bytes.Repeat([]byte{0xff}, prefix), AppendTag(nil, tg)...)
		got, off, err := FindTag(f)
		if err != nil || off != prefix || got != tg {
			t.Errorf("prefix %d: FindTag = %+v, %d, %v", prefix, got, off, err)
		}
	}
	f := append(bytes.Repeat([]byte{0xff}, scanLimit+1), AppendTag(nil, tg)...)
	if _, _, err := FindTag(f); !errors.Is(err, ErrNoWatermark) {
		t.Errorf("tag past the scan limit: err = %v, want ErrNoWatermark", err)
	}
}

func TestDecodeTagErrors(t *testing.T) {
	good := AppendTag(nil, Tag{Kind: Video, Consultation: 1, Sender: 2, Seq: 3})
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrShortFrame},
		{"one short", good[:TagSize-1], ErrShortFrame},
		{"no magic", mut(func(b []byte) { b[0] = 'X' }), ErrNoWatermark},
		{"bad version", mut(func(b []byte) { b[4] = 2; resealCRC(b) }), ErrVersion},
		{"bad version, bad crc", mut(func(b []byte) { b[4] = 2 }), ErrVersion},
		{"bad kind", mut(func(b []byte) { b[5] = 'x'; resealCRC(b) }), ErrKind},
		{"flipped payload bit", mut(func(b []byte) { b[10] ^= 0x40 }), ErrChecksum},
		{"flipped crc bit", mut(func(b []byte) { b[29] ^= 1 }), ErrChecksum},
		{"kind changed without crc", mut(func(b []byte) { b[5] = 'a' }), ErrChecksum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeTag(tc.in)
			if !errors.Is(err, tc.want) {
				t.Errorf("DecodeTag err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFindTagErrors(t *testing.T) {
	damaged := AudioFrame(Tag{Seq: 1}, 60)
	damaged[8] ^= 1
	cases := []struct {
		name    string
		in      []byte
		want    error
		wantOff int
	}{
		{"empty", nil, ErrShortFrame, -1},
		{"short", []byte("TCWM"), ErrShortFrame, -1},
		{"no magic", bytes.Repeat([]byte{0}, 200), ErrNoWatermark, -1},
		{"damaged tag at 0", damaged, ErrChecksum, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, off, err := FindTag(tc.in)
			if !errors.Is(err, tc.want) || off != tc.wantOff {
				t.Errorf("FindTag = off %d, err %v; want off %d, %v", off, err, tc.wantOff, tc.want)
			}
		})
	}
}

// resealCRC recomputes the checksum of an encoded tag after a mutation.
func resealCRC(b []byte) { binary.BigEndian.PutUint32(b[26:30], crc32.ChecksumIEEE(b[:26])) }

func FuzzDecodeTag(f *testing.F) {
	for _, g := range goldenTags {
		f.Add(AppendTag(nil, g.tag))
	}
	f.Add([]byte("TCWM"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tg, err := DecodeTag(b)
		if err != nil {
			return
		}
		if enc := AppendTag(nil, tg); !bytes.Equal(enc, b[:TagSize]) {
			t.Fatalf("decoded %+v re-encodes to %x, input %x", tg, enc, b[:TagSize])
		}
	})
}

func FuzzFindTag(f *testing.F) {
	tg := Tag{Consultation: TagOf("c"), Sender: TagOf("u"), Seq: 1}
	f.Add(AudioFrame(tg, 60))
	f.Add(VideoFrame(tg, 60))
	f.Add(append([]byte("xyz"), AppendTag(nil, tg)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, off, err := FindTag(b)
		if err != nil {
			if off != -1 && (off < 0 || off+TagSize > len(b)) {
				t.Fatalf("error %v with offset %d out of range (len %d)", err, off, len(b))
			}
			return
		}
		if off < 0 || off+TagSize > len(b) {
			t.Fatalf("offset %d out of range (len %d)", off, len(b))
		}
		if enc := AppendTag(nil, got); !bytes.Equal(enc, b[off:off+TagSize]) {
			t.Fatalf("found %+v at %d re-encodes to %x, frame has %x", got, off, enc, b[off:off+TagSize])
		}
	})
}
