package client

import (
	"bytes"
	"errors"
	"testing"

	"github.com/at-wat/ebml-go/webm"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/models"
)

type closeBuf struct{ *bytes.Buffer }

func (closeBuf) Close() error { return nil }

// webmTrack writes tagged audio frames as WebM with the library's writer.
func webmTrack(t *testing.T, n int) ([]byte, [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	ws, err := webm.NewSimpleBlockWriter(closeBuf{&buf}, []webm.TrackEntry{{
		Name: "a", TrackNumber: 1, TrackUID: 1, CodecID: "A_OPUS", TrackType: 2,
		Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := range n {
		f := models.AudioFrame(models.Tag{Consultation: 3, Sender: 4, Seq: uint32(i)}, 80)
		frames = append(frames, f)
		if _, err := ws[0].Write(true, int64(i*20), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws[0].Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), frames
}

func TestReadTrackWebM(t *testing.T) {
	b, want := webmTrack(t, 9)
	for _, format := range []string{"webm", "mka", "mkv", "matroska"} {
		got, err := ReadTrack(driver.TrackInfo{ID: "t", Kind: "audio", Format: format}, b)
		if err != nil || len(got) != len(want) {
			t.Fatalf("%s: %d frames, %v", format, len(got), err)
		}
		for i := range want {
			if tag, _, err := models.FindTag(got[i]); err != nil || tag.Seq != uint32(i) {
				t.Fatalf("%s: frame %d: tag %+v, %v", format, i, tag, err)
			}
		}
	}
	tr := driver.TrackInfo{ID: "t", Kind: "audio", Format: "webm"}
	// Cut mid-file (a crash): the whole frames before the cut, no error.
	got, err := ReadTrack(tr, b[:len(b)*2/3])
	if err != nil || len(got) == 0 || len(got) >= len(want) {
		t.Fatalf("cut file: %d frames, %v", len(got), err)
	}
	// No EBML header: unreadable, whatever follows.
	for name, body := range map[string][]byte{"empty": nil, "three bytes": b[:3], "ogg": []byte("OggS\x00\x02 and the rest"), "html": []byte("<html>oops</html>")} {
		if _, err := ReadTrack(tr, body); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
	// The hostile front's junk suffix is garbage, reported with the frames
	// before it.
	got, err = ReadTrack(tr, append(append([]byte(nil), b...), 0xde, 0xad, 0xbe, 0xef, 0x00))
	if !errors.Is(err, driver.ErrContainer) || len(got) != len(want) {
		t.Fatalf("junk suffix: %d frames, err %v; want %d and ErrContainer", len(got), err, len(want))
	}
}
