package models

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Watermark layout (TagSize bytes, big endian), placed after whatever header the
// codec container needs (see VideoHeaderSize):
//
//	0  magic "TCWM"
//	4  version (1)
//	5  kind ('a' audio, 'v' video)
//	6  consultation tag (uint64, TagOf(consultation id))
//	14 sender tag       (uint64, TagOf(user id))
//	22 sequence number  (uint32, per sender and kind)
//	26 CRC-32 (IEEE) of bytes 0..25
//
// The target stores payloads verbatim, so every frame of every replay and every
// frame received live says which consultation and which participant it came from:
// metadata can lie, frames cannot.
const (
	TagSize        = 30
	WatermarkMagic = "TCWM"
	WatermarkV1    = 1
	// VideoHeaderSize is the VP8 frame header written before the tag of a video
	// frame: a keyframe tag (bit 0 of the first byte clear), the VP8 start code
	// and a 16x16 size, enough for IVF writers that wait for a keyframe.
	VideoHeaderSize = 10
	// scanLimit bounds where Find looks for the magic.
	scanLimit = 64
)

// Sentinel errors of the codec.
var (
	ErrNoWatermark = errors.New("watermark: no magic in frame")
	ErrShortFrame  = errors.New("watermark: frame too short for a tag")
	ErrChecksum    = errors.New("watermark: checksum mismatch")
	ErrVersion     = errors.New("watermark: unknown version")
	ErrKind        = errors.New("watermark: unknown kind")
)

// Tag is the decoded watermark of one frame.
type Tag struct {
	Kind         Kind
	Consultation uint64
	Sender       uint64
	Seq          uint32
}

// TagOf maps an id to its 64-bit tag (FNV-1a). Collisions among the ids of one
// run are vanishingly unlikely (birthday bound ~2^32 ids).
//
// It is inlined rather than built on hash/fnv so that the oracle's hot paths
// hash ids without allocating.
func TagOf(id string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime64
	}
	return h
}

// AppendTag appends the encoded tag to dst.
func AppendTag(dst []byte, t Tag) []byte {
	var b [TagSize]byte
	copy(b[0:4], WatermarkMagic)
	b[4] = WatermarkV1
	switch t.Kind {
	case Video:
		b[5] = 'v'
	default:
		b[5] = 'a'
	}
	binary.BigEndian.PutUint64(b[6:14], t.Consultation)
	binary.BigEndian.PutUint64(b[14:22], t.Sender)
	binary.BigEndian.PutUint32(b[22:26], t.Seq)
	binary.BigEndian.PutUint32(b[26:30], crc32.ChecksumIEEE(b[0:26]))
	return append(dst, b[:]...)
}

// DecodeTag decodes a tag that starts at b[0].
func DecodeTag(b []byte) (Tag, error) {
	if len(b) < TagSize {
		return Tag{}, ErrShortFrame
	}
	if string(b[0:4]) != WatermarkMagic {
		return Tag{}, ErrNoWatermark
	}
	if b[4] != WatermarkV1 {
		return Tag{}, ErrVersion
	}
	if crc32.ChecksumIEEE(b[0:26]) != binary.BigEndian.Uint32(b[26:30]) {
		return Tag{}, ErrChecksum
	}
	t := Tag{
		Consultation: binary.BigEndian.Uint64(b[6:14]),
		Sender:       binary.BigEndian.Uint64(b[14:22]),
		Seq:          binary.BigEndian.Uint32(b[22:26]),
	}
	switch b[5] {
	case 'a':
		t.Kind = Audio
	case 'v':
		t.Kind = Video
	default:
		return Tag{}, ErrKind
	}
	return t, nil
}

// FindTag locates and decodes the tag in a frame payload. It looks at offset 0
// (audio) and VideoHeaderSize (video) first, then scans the first bytes, so a
// container that prepends a few bytes does not hide the owner. It returns the
// offset of the tag.
func FindTag(frame []byte) (Tag, int, error) {
	for _, off := range [...]int{0, VideoHeaderSize} {
		if off+TagSize <= len(frame) && string(frame[off:off+4]) == WatermarkMagic {
			t, err := DecodeTag(frame[off:])
			return t, off, err
		}
	}
	limit := min(len(frame)-TagSize, scanLimit)
	for off := 0; off <= limit; off++ {
		if string(frame[off:off+4]) == WatermarkMagic {
			t, err := DecodeTag(frame[off:])
			return t, off, err
		}
	}
	if len(frame) < TagSize {
		return Tag{}, -1, ErrShortFrame
	}
	return Tag{}, -1, ErrNoWatermark
}

// vp8KeyframeHeader: frame tag 0x10 0x02 0x00 (keyframe, version 0, show_frame),
// start code 9d 01 2a, width 16, height 16.
var vp8KeyframeHeader = [VideoHeaderSize]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x10, 0x00, 0x10, 0x00}

// AudioFrame builds an audio payload of size bytes (at least TagSize): the tag,
// then deterministic filler.
func AudioFrame(t Tag, size int) []byte {
	t.Kind = Audio
	size = max(size, TagSize)
	b := AppendTag(make([]byte, 0, size), t)
	return fill(b, size, t.Seq)
}

// VideoFrame builds a VP8 keyframe-shaped payload of size bytes: a VP8 keyframe
// header, the tag, then filler. Every frame is a keyframe so that a recording
// that starts anywhere (a rejoin, a switch) is decodable by IVF writers.
func VideoFrame(t Tag, size int) []byte {
	t.Kind = Video
	size = max(size, VideoHeaderSize+TagSize)
	b := append(make([]byte, 0, size), vp8KeyframeHeader[:]...)
	b = AppendTag(b, t)
	return fill(b, size, t.Seq)
}

func fill(b []byte, size int, seed uint32) []byte {
	x := seed*2654435761 + 1
	for len(b) < size {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b = append(b, byte(x))
	}
	return b
}
