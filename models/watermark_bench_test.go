package models

import "testing"

var sinkTag Tag

// BenchmarkAppendTag encodes one tag into a reused buffer (the send path's core).
func BenchmarkAppendTag(b *testing.B) {
	buf := make([]byte, 0, 64)
	t := Tag{Kind: Audio, Consultation: 1, Sender: 2}
	b.ReportAllocs()
	for b.Loop() {
		t.Seq++
		buf = AppendTag(buf[:0], t)
	}
}

// BenchmarkAudioFrame builds one watermarked 60-byte audio frame, as the
// harness does 50 times a second per participant.
func BenchmarkAudioFrame(b *testing.B) {
	t := Tag{Consultation: 1, Sender: 2}
	b.ReportAllocs()
	for b.Loop() {
		t.Seq++
		_ = AudioFrame(t, 60)
	}
}

// BenchmarkVideoFrame builds one watermarked 800-byte video frame.
func BenchmarkVideoFrame(b *testing.B) {
	t := Tag{Consultation: 1, Sender: 2}
	b.ReportAllocs()
	for b.Loop() {
		t.Seq++
		_ = VideoFrame(t, 800)
	}
}

// BenchmarkDecodeTag decodes a tag at a known offset.
func BenchmarkDecodeTag(b *testing.B) {
	enc := AppendTag(nil, Tag{Kind: Video, Consultation: 1, Sender: 2, Seq: 3})
	b.ReportAllocs()
	for b.Loop() {
		t, err := DecodeTag(enc)
		if err != nil {
			b.Fatal(err)
		}
		sinkTag = t
	}
}

// BenchmarkFindTag finds and decodes the tag of a received frame (the live
// and replay check's core), audio and video.
func BenchmarkFindTag(b *testing.B) {
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"audio60", AudioFrame(Tag{Consultation: 1, Sender: 2, Seq: 3}, 60)},
		{"video800", VideoFrame(Tag{Consultation: 1, Sender: 2, Seq: 3}, 800)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t, _, err := FindTag(c.frame)
				if err != nil {
					b.Fatal(err)
				}
				sinkTag = t
			}
		})
	}
}
