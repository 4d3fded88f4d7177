package media

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v3/pkg/media/oggwriter"
)

// writeSample writes n frames with pion's writers, as the recorder does.
func writeSample(t testing.TB, format string, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w rtpWriter
	var err error
	if format == "ogg" {
		w, err = oggwriter.NewWith(&buf, opusRate, opusChannels)
	} else {
		w, err = ivfwriter.NewWith(&buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := mark{call: 1, sender: 1, kind: 'a', seq: uint32(i)}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960, Marker: true}}
		if format == "ivf" {
			m.kind = 'v'
			pkt.Payload = append([]byte{0x10}, m.payload()...)
		} else {
			pkt.Payload = m.payload()
		}
		if err := w.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestRecount(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"ogg", "ivf"} {
		t.Run(format, func(t *testing.T) {
			data := writeSample(t, format, 5)
			four := writeSample(t, format, 4)
			path := filepath.Join(dir, "t."+format)
			write := func(b []byte) {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(data)
			if f, b, err := Recount(path, format); err != nil || f != 5 || b != int64(len(data)) {
				t.Errorf("whole file: %d frames %d bytes %v, want 5 %d", f, b, err, len(data))
			}
			// A crash can cut the last frame anywhere.
			for cut := len(four) + 1; cut < len(data); cut++ {
				write(data[:cut])
				f, b, err := Recount(path, format)
				if err != nil || f != 4 || b != int64(len(four)) {
					t.Fatalf("cut at %d: %d frames %d bytes %v, want 4 %d", cut, f, b, err, len(four))
				}
			}
			write(data[:len(data)-3])
			if f, b, err := Repair(path, format); err != nil || f != 4 || b != int64(len(four)) {
				t.Errorf("repair: %d frames %d bytes %v", f, b, err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, data[:len(four)]) {
				t.Errorf("repaired file is not the 4-frame prefix")
			}
			write(nil)
			if f, b, err := Recount(path, format); err != nil || f != 0 || b != 0 {
				t.Errorf("empty file: %d %d %v", f, b, err)
			}
			bad := bytes.Clone(data)
			bad[0] ^= 0xff
			write(bad)
			if _, _, err := Recount(path, format); !errors.Is(err, ErrCorruptMedia) {
				t.Errorf("bad signature: err = %v, want ErrCorruptMedia", err)
			}
		})
	}
	// A damaged page in the middle of an Ogg file is corruption, not a crash.
	data := writeSample(t, "ogg", 5)
	data[len(data)-150] ^= 0x55 // inside the third page from the end
	path := filepath.Join(dir, "mid.ogg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Recount(path, "ogg"); !errors.Is(err, ErrCorruptMedia) {
		t.Errorf("damaged middle page: err = %v, want ErrCorruptMedia", err)
	}
	if _, _, err := Recount(path, "mp4"); err == nil {
		t.Error("unknown format accepted")
	}
	if _, _, err := Recount(filepath.Join(dir, "missing"), "ogg"); err == nil {
		t.Error("missing file accepted")
	}
}

// FuzzScan: the parsers never panic, never claim more than they read, and
// agree with themselves on the valid prefix they report.
func FuzzScan(f *testing.F) {
	f.Add(writeSample(f, "ogg", 3), true)
	f.Add(writeSample(f, "ivf", 3), false)
	f.Add([]byte("OggS"), true)
	f.Add([]byte("DKIF\x00\x00\xff\xff"), false)
	f.Fuzz(func(t *testing.T, data []byte, ogg bool) {
		format := "ivf"
		if ogg {
			format = "ogg"
		}
		frames, valid, err := scan(data, format)
		if frames < 0 || valid < 0 || valid > int64(len(data)) {
			t.Fatalf("frames %d valid %d of %d bytes", frames, valid, len(data))
		}
		if err != nil {
			return
		}
		f2, v2, err := scan(data[:valid], format)
		if err != nil || f2 != frames || v2 != valid {
			t.Fatalf("prefix rescan: %d %d %v, want %d %d", f2, v2, err, frames, valid)
		}
	})
}
