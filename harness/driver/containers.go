package driver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrContainer: replay bytes that are not a well-formed Ogg or IVF stream.
// The wrapping message names the byte offset.
var ErrContainer = errors.New("malformed media container")

const (
	oggPageHeaderLen = 27
	ivfFileHeaderLen = 32
	ivfFrameHeadLen  = 12
	maxIVFFrame      = 64 << 20
)

var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(page []byte) uint32 {
	var crc uint32
	for i, c := range page {
		if i >= 22 && i < 26 { // the checksum field counts as zero
			c = 0
		}
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^c]
	}
	return crc
}

// truncatedPrefix reports whether rest could be the start of a valid unit
// beginning with magic: a stream cut short, not garbage.
func truncatedPrefix(rest []byte, magic string) bool {
	n := min(len(rest), len(magic))
	return string(rest[:n]) == magic[:n]
}

// ReadOgg returns the Opus packets of an Ogg stream in order, skipping the
// OpusHead and OpusTags header packets. Packets may span pages. A stream cut
// short (a truncated final page or packet) yields the packets that were
// complete and no error; anything else that is not Ogg (bad capture pattern,
// version, checksum, missing OpusHead) is an error wrapping ErrContainer that
// names the byte offset, returned with the packets read before it (the oracle
// still judges those). Returned packets may share b's memory.
func ReadOgg(b []byte) ([][]byte, error) {
	var (
		packets [][]byte
		cur     []byte // a packet continued across pages
		inPkt   bool
		pos     int
		bad     error
	)
	for pos < len(b) && bad == nil {
		rest := b[pos:]
		if len(rest) < oggPageHeaderLen {
			if truncatedPrefix(rest, "OggS") {
				break
			}
			bad = fmt.Errorf("ogg: %w: no page at offset %d", ErrContainer, pos)
			break
		}
		if string(rest[:4]) != "OggS" {
			bad = fmt.Errorf("ogg: %w: no capture pattern at offset %d", ErrContainer, pos)
			break
		}
		if rest[4] != 0 {
			bad = fmt.Errorf("ogg: %w: page version %d at offset %d", ErrContainer, rest[4], pos+4)
			break
		}
		nseg := int(rest[26])
		hdrLen := oggPageHeaderLen + nseg
		if len(rest) < hdrLen {
			break // truncated segment table
		}
		lacing := rest[oggPageHeaderLen:hdrLen]
		bodyLen := 0
		for _, l := range lacing {
			bodyLen += int(l)
		}
		if len(rest) < hdrLen+bodyLen {
			break // truncated page body
		}
		page := rest[:hdrLen+bodyLen]
		if got, want := oggCRC(page), binary.LittleEndian.Uint32(page[22:26]); got != want {
			bad = fmt.Errorf("ogg: %w: checksum mismatch in page at offset %d", ErrContainer, pos)
			break
		}
		continued := rest[5]&0x01 != 0
		if !continued && inPkt {
			// The previous page promised a continuation that never came:
			// drop the partial packet rather than glue unrelated bytes.
			cur, inPkt = nil, false
		}
		// A continuation of a packet whose start we never saw is skipped.
		orphan := continued && !inPkt
		packets, cur, inPkt = oggPackets(packets, cur, inPkt, orphan, lacing, page[hdrLen:])
		pos += len(page)
	}

	if len(packets) == 0 {
		return nil, bad
	}
	if !bytes.HasPrefix(packets[0], []byte("OpusHead")) {
		return nil, fmt.Errorf("ogg: %w: first packet (offset 0) is not OpusHead", ErrContainer)
	}
	packets = packets[1:]
	if len(packets) > 0 && bytes.HasPrefix(packets[0], []byte("OpusTags")) {
		packets = packets[1:]
	}
	if len(packets) == 0 {
		return nil, bad
	}
	return packets, bad
}

// oggPackets splits one page body by its lacing values: a value below 255
// ends a packet. With orphan set, the segments up to the first packet end
// are dropped.
func oggPackets(packets [][]byte, cur []byte, inPkt, orphan bool, lacing, body []byte) ([][]byte, []byte, bool) {
	start := 0
	for _, l := range lacing {
		end := start + int(l)
		seg := body[start:end:end]
		start = end
		switch {
		case orphan:
			orphan = l == 255
		case inPkt:
			cur = append(cur, seg...)
			if l < 255 {
				packets = append(packets, cur)
				cur, inPkt = nil, false
			}
		case l == 255:
			cur, inPkt = append([]byte(nil), seg...), true
		default:
			packets = append(packets, seg)
		}
	}
	return packets, cur, inPkt
}

// ReadIVF returns the frames of an IVF file (VP8, fourcc VP80) in order. A
// file cut short yields the frames that were complete and no error; a bad
// signature, header or fourcc is an error wrapping ErrContainer that names
// the byte offset; an impossible frame size is one too, returned with the
// frames before it. Returned frames share b's memory.
func ReadIVF(b []byte) ([][]byte, error) {
	if len(b) < ivfFileHeaderLen {
		if truncatedPrefix(b, "DKIF") {
			return nil, nil
		}
		return nil, fmt.Errorf("ivf: %w: no DKIF signature at offset 0", ErrContainer)
	}
	if string(b[:4]) != "DKIF" {
		return nil, fmt.Errorf("ivf: %w: no DKIF signature at offset 0", ErrContainer)
	}
	hdrLen := int(binary.LittleEndian.Uint16(b[6:8]))
	if hdrLen < ivfFileHeaderLen {
		return nil, fmt.Errorf("ivf: %w: header size %d at offset 6 (want >= %d)", ErrContainer, hdrLen, ivfFileHeaderLen)
	}
	if fourcc := string(b[8:12]); fourcc != "VP80" {
		return nil, fmt.Errorf("ivf: %w: fourcc %q at offset 8 (want VP80)", ErrContainer, fourcc)
	}
	var frames [][]byte
	pos := hdrLen
	for pos < len(b) {
		if len(b)-pos < ivfFrameHeadLen {
			break // truncated frame header
		}
		size := int(binary.LittleEndian.Uint32(b[pos : pos+4]))
		if size > maxIVFFrame {
			return frames, fmt.Errorf("ivf: %w: frame size %d at offset %d", ErrContainer, size, pos)
		}
		start := pos + ivfFrameHeadLen
		if len(b)-start < size {
			break // truncated frame
		}
		frames = append(frames, b[start:start+size:start+size])
		pos = start + size
	}
	return frames, nil
}
