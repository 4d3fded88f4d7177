package driver

import (
	"testing"

	"github.com/telechaos/telechaos/models"
)

// A 20 s call's tracks: 1,000 audio frames of 60 bytes, 300 video frames of
// 800 bytes, watermarked as the harness sends them.
func benchTracks(b *testing.B) (ogg, ivf []byte) {
	var audio, video [][]byte
	for i := range 1000 {
		audio = append(audio, models.AudioFrame(models.Tag{Consultation: 1, Sender: 2, Seq: uint32(i)}, 60))
	}
	for i := range 300 {
		video = append(video, models.VideoFrame(models.Tag{Consultation: 1, Sender: 2, Seq: uint32(i)}, 800))
	}
	return writeOgg(b, audio), writeIVF(b, video)
}

// BenchmarkReadOgg parses one 20 s audio track (frames/op reported).
func BenchmarkReadOgg(b *testing.B) {
	ogg, _ := benchTracks(b)
	b.SetBytes(int64(len(ogg)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f, err := ReadOgg(ogg)
		if err != nil {
			b.Fatal(err)
		}
		n = len(f)
	}
	b.ReportMetric(float64(n), "frames/op")
}

// BenchmarkReadIVF parses one 20 s video track.
func BenchmarkReadIVF(b *testing.B) {
	_, ivf := benchTracks(b)
	b.SetBytes(int64(len(ivf)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f, err := ReadIVF(ivf)
		if err != nil {
			b.Fatal(err)
		}
		n = len(f)
	}
	b.ReportMetric(float64(n), "frames/op")
}
