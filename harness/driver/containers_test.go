package driver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v3/pkg/media/oggwriter"

	"github.com/telechaos/telechaos/models"
)

// Frames as virtual users send them: watermarked, assorted sizes.
func testAudioFrames(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = models.AudioFrame(models.Tag{Consultation: 1, Sender: 2, Seq: uint32(i)}, 40+i%200)
	}
	return out
}

func testVideoFrames(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = models.VideoFrame(models.Tag{Consultation: 1, Sender: 2, Seq: uint32(i)}, 60+i*37%900)
	}
	return out
}

// writeOgg writes packets the way the clinic does: pion's oggwriter on a
// file, closed at the end (Close rewrites the last page as end of stream).
func writeOgg(t testing.TB, packets [][]byte) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.ogg")
	w, err := oggwriter.New(path, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range packets {
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: uint32(i * 960), SequenceNumber: uint16(i)}, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeIVF(t testing.TB, frames [][]byte) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.ivf")
	w, err := ivfwriter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		pl := append([]byte{vp8Descriptor}, f...)
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{Marker: true, Timestamp: uint32(i * 3000), SequenceNumber: uint16(i)}, Payload: pl}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalFrames(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d frames, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: frame %d differs: %x vs %x", what, i, got[i], want[i])
			return
		}
	}
}

// isPrefix checks that got is want cut after some frame.
func isPrefix(got, want [][]byte) bool {
	if len(got) > len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			return false
		}
	}
	return true
}

func TestReadOggRoundTrip(t *testing.T) {
	want := testAudioFrames(60)
	b := writeOgg(t, want)
	got, err := ReadOgg(b)
	if err != nil {
		t.Fatal(err)
	}
	equalFrames(t, "ogg", got, want)
	for i, p := range got {
		if tag, _, err := models.FindTag(p); err != nil || tag.Seq != uint32(i) {
			t.Errorf("packet %d: tag %+v, %v", i, tag, err)
		}
	}
	// Header-only stream (a call that carried no audio).
	if got, err := ReadOgg(writeOgg(t, nil)); err != nil || len(got) != 0 {
		t.Errorf("empty stream: %d packets, %v", len(got), err)
	}
}

// Packets larger than a segment and spanning pages, built by hand.
func TestReadOggLacingAndSpanning(t *testing.T) {
	head := append([]byte("OpusHead"), 1, 2, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 0)
	big := bytes.Repeat([]byte{7}, 600)
	exact := bytes.Repeat([]byte{8}, 510)
	small := []byte("small")
	var b []byte
	b = append(b, oggPage(0x02, 0, [][]byte{head}, false)...)
	b = append(b, oggPage(0, 1, [][]byte{[]byte("OpusTags-x"), small}, false)...)
	// big starts on page 2 (510 bytes, unfinished) and ends on page 3.
	b = append(b, oggPage(0, 2, [][]byte{exact, big[:510]}, true)...)
	b = append(b, oggPage(0x01, 3, [][]byte{big[510:], small}, false)...)
	got, err := ReadOgg(b)
	if err != nil {
		t.Fatal(err)
	}
	equalFrames(t, "hand-made ogg", got, [][]byte{small, exact, big, small})

	// An orphan continuation at the start is skipped, not glued.
	orphan := append(oggPage(0x02, 0, [][]byte{head}, false), oggPage(0x01, 1, [][]byte{[]byte("tail"), small}, false)...)
	got, err = ReadOgg(orphan)
	if err != nil {
		t.Fatal(err)
	}
	equalFrames(t, "orphan continuation", got, [][]byte{small})
}

// oggPage builds one page; when open is set the last packet does not end on
// this page (its final lacing value is 255, so its length must be a multiple
// of 255).
func oggPage(flags byte, seq uint32, packets [][]byte, open bool) []byte {
	var lacing, body []byte
	for i, p := range packets {
		n := len(p)
		for n >= 255 {
			lacing = append(lacing, 255)
			n -= 255
		}
		if !(open && i == len(packets)-1) {
			lacing = append(lacing, byte(n))
		}
		body = append(body, p...)
	}
	page := make([]byte, 27, 27+len(lacing)+len(body))
	copy(page, "OggS")
	page[5] = flags
	binary.LittleEndian.PutUint32(page[14:], 42)
	binary.LittleEndian.PutUint32(page[18:], seq)
	page[26] = byte(len(lacing))
	page = append(append(page, lacing...), body...)
	binary.LittleEndian.PutUint32(page[22:], oggCRC(page))
	return page
}

func TestReadOggTruncated(t *testing.T) {
	want := testAudioFrames(20)
	b := writeOgg(t, want)
	prev := 0
	for n := 0; n <= len(b); n++ {
		got, err := ReadOgg(b[:n])
		if err != nil {
			t.Fatalf("prefix %d of %d: %v", n, len(b), err)
		}
		if !isPrefix(got, want) || len(got) < prev {
			t.Fatalf("prefix %d: %d packets, not a growing prefix of the stream", n, len(got))
		}
		prev = len(got)
	}
	if prev != len(want) {
		t.Errorf("full stream gave %d packets", prev)
	}
}

func TestReadOggGarbage(t *testing.T) {
	good := writeOgg(t, testAudioFrames(5))
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-3] ^= 0xff // payload byte of the last page
	badVersion := bytes.Clone(good)
	badVersion[4] = 1
	notOpus := oggPage(0x02, 0, [][]byte{[]byte("hello")}, false)
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"text":          {[]byte("this is not an ogg stream at all"), "offset 0"},
		"short junk":    {[]byte("xyz"), "offset 0"},
		"checksum":      {corrupt, "checksum"},
		"version":       {badVersion, "version"},
		"trailing junk": {append(bytes.Clone(good), "junkjunkjunkjunkjunkjunkjunkjunk"...), "offset " + fmtInt(len(good))},
		"not opus":      {notOpus, "OpusHead"},
		"ivf":           {writeIVF(t, testVideoFrames(2)), "offset 0"},
	}
	for name, c := range cases {
		_, err := ReadOgg(c.b)
		if !errors.Is(err, ErrContainer) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrContainer naming %q", name, err, c.want)
		}
	}
}

func fmtInt(n int) string { return strconv.Itoa(n) }

func TestReadIVFRoundTrip(t *testing.T) {
	want := testVideoFrames(40)
	got, err := ReadIVF(writeIVF(t, want))
	if err != nil {
		t.Fatal(err)
	}
	equalFrames(t, "ivf", got, want)
	if got, err := ReadIVF(writeIVF(t, nil)); err != nil || len(got) != 0 {
		t.Errorf("empty file: %d frames, %v", len(got), err)
	}
}

func TestReadIVFTruncated(t *testing.T) {
	want := testVideoFrames(10)
	b := writeIVF(t, want)
	prev := 0
	for n := 0; n <= len(b); n++ {
		got, err := ReadIVF(b[:n])
		if err != nil {
			t.Fatalf("prefix %d of %d: %v", n, len(b), err)
		}
		if !isPrefix(got, want) || len(got) < prev {
			t.Fatalf("prefix %d: %d frames, not a growing prefix", n, len(got))
		}
		prev = len(got)
	}
}

func TestReadIVFGarbage(t *testing.T) {
	good := writeIVF(t, testVideoFrames(3))
	av1 := bytes.Clone(good)
	copy(av1[8:], "AV01")
	small := bytes.Clone(good)
	small[6] = 4
	huge := append(bytes.Clone(good), 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0)
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"text":        {[]byte("this is not an ivf file, no, not at all"), "offset 0"},
		"short junk":  {[]byte("xy"), "offset 0"},
		"fourcc":      {av1, "offset 8"},
		"header size": {small, "offset 6"},
		"huge frame":  {huge, "offset " + fmtInt(len(good))},
		"ogg":         {writeOgg(t, testAudioFrames(2)), "offset 0"},
	}
	for name, c := range cases {
		_, err := ReadIVF(c.b)
		if !errors.Is(err, ErrContainer) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrContainer naming %q", name, err, c.want)
		}
	}
}

func FuzzReadOgg(f *testing.F) {
	f.Add(writeOgg(f, testAudioFrames(3)))
	f.Add(writeOgg(f, nil))
	f.Add(oggPage(0x01, 0, [][]byte{bytes.Repeat([]byte{1}, 255)}, true))
	f.Add([]byte("OggS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		packets, err := ReadOgg(b)
		total := 0
		for _, p := range packets {
			total += len(p)
		}
		if total > len(b) {
			t.Errorf("%d packet bytes from %d input bytes", total, len(b))
		}
		if err != nil && packets != nil {
			t.Errorf("packets with an error")
		}
	})
}

func FuzzReadIVF(f *testing.F) {
	f.Add(writeIVF(f, testVideoFrames(3)))
	f.Add(writeIVF(f, nil))
	f.Add([]byte("DKIF"))
	r := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 64)
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	f.Add(junk)
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := ReadIVF(b)
		total := 0
		for _, p := range frames {
			total += len(p)
		}
		if total > len(b) {
			t.Errorf("%d frame bytes from %d input bytes", total, len(b))
		}
		if err != nil && frames != nil {
			t.Errorf("frames with an error")
		}
	})
}

// The packets and frames before a corruption come back with the error, so
// the oracle can still judge them.
func TestReadersReturnWhatCameBeforeTheCorruption(t *testing.T) {
	want := testAudioFrames(5)
	junk := append(writeOgg(t, want), "junkjunkjunkjunkjunkjunkjunkjunk"...)
	got, err := ReadOgg(junk)
	if !errors.Is(err, ErrContainer) {
		t.Fatalf("err %v, want ErrContainer", err)
	}
	equalFrames(t, "ogg before junk", got, want)

	vwant := testVideoFrames(3)
	bad := writeIVF(t, vwant)
	bad = binary.LittleEndian.AppendUint32(bad, 1<<31) // an impossible frame size
	bad = append(bad, make([]byte, 8)...)
	vgot, err := ReadIVF(bad)
	if !errors.Is(err, ErrContainer) {
		t.Fatalf("ivf err %v, want ErrContainer", err)
	}
	equalFrames(t, "ivf before the bad frame", vgot, vwant)
}
