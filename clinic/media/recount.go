package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

const (
	oggHeaderLen      = 27
	ivfHeaderLen      = 32
	ivfFrameHeaderLen = 12
)

// Recount counts the frames in a track file written by the recorder ("ogg":
// one Opus packet per page after the two header pages; "ivf": one VP8 frame per
// IVF frame) and returns them with the length of the file's valid prefix. A
// truncated last frame, as a crash leaves it, is not counted and not an error;
// anything else that is not Ogg/IVF is ErrCorruptMedia.
func Recount(path, format string) (frames, bytes int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("media: recount: %w", err)
	}
	frames, bytes, err = scan(data, format)
	if err != nil {
		return frames, bytes, fmt.Errorf("media: recount %s: %w", path, err)
	}
	return frames, bytes, nil
}

// Repair recounts a track file and cuts off a truncated last frame, so readers
// that insist on whole frames can serve it after a crash.
func Repair(path, format string) (frames, bytes int64, err error) {
	frames, bytes, err = Recount(path, format)
	if err != nil {
		return frames, bytes, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return frames, bytes, fmt.Errorf("media: repair: %w", err)
	}
	if st.Size() > bytes {
		if err := os.Truncate(path, bytes); err != nil {
			return frames, bytes, fmt.Errorf("media: repair: %w", err)
		}
	}
	return frames, bytes, nil
}

func scan(data []byte, format string) (frames, valid int64, err error) {
	switch format {
	case "ogg":
		return scanOgg(data)
	case "ivf":
		return scanIVF(data)
	case FormatWebM:
		return scanWebM(data)
	}
	return 0, 0, fmt.Errorf("unknown format %q (want ogg, ivf or webm)", format)
}

// scanOgg walks Ogg pages. Only the tail may be incomplete or torn.
func scanOgg(data []byte) (frames, valid int64, err error) {
	off, pages := 0, 0
	for off < len(data) {
		rest := data[off:]
		if len(rest) < oggHeaderLen {
			if !bytes.HasPrefix([]byte("OggS"), rest[:min(4, len(rest))]) {
				return oggFrames(pages), int64(off), fmt.Errorf("%w: no ogg page at offset %d", ErrCorruptMedia, off)
			}
			break
		}
		if string(rest[:4]) != "OggS" {
			return oggFrames(pages), int64(off), fmt.Errorf("%w: no ogg page at offset %d", ErrCorruptMedia, off)
		}
		nseg := int(rest[26])
		if len(rest) < oggHeaderLen+nseg {
			break
		}
		n := oggHeaderLen + nseg
		for _, l := range rest[oggHeaderLen : oggHeaderLen+nseg] {
			n += int(l)
		}
		if len(rest) < n {
			break
		}
		if oggCRC(rest[:n]) != binary.LittleEndian.Uint32(rest[22:26]) {
			if off+n == len(data) {
				break // a torn last page
			}
			return oggFrames(pages), int64(off), fmt.Errorf("%w: bad ogg page checksum at offset %d", ErrCorruptMedia, off)
		}
		if pages == 0 && !bytes.HasPrefix(rest[oggHeaderLen+nseg:n], []byte("OpusHead")) {
			return 0, 0, fmt.Errorf("%w: first ogg page is not an OpusHead", ErrCorruptMedia)
		}
		pages++
		off += n
	}
	return oggFrames(pages), int64(off), nil
}

// oggFrames discounts the OpusHead and OpusTags pages.
func oggFrames(pages int) int64 { return int64(max(pages-2, 0)) }

func scanIVF(data []byte) (frames, valid int64, err error) {
	if len(data) < ivfHeaderLen {
		if !bytes.HasPrefix([]byte("DKIF"), data[:min(4, len(data))]) {
			return 0, 0, fmt.Errorf("%w: no ivf signature", ErrCorruptMedia)
		}
		return 0, 0, nil // header torn
	}
	if string(data[:4]) != "DKIF" {
		return 0, 0, fmt.Errorf("%w: no ivf signature", ErrCorruptMedia)
	}
	hl := int64(binary.LittleEndian.Uint16(data[6:8]))
	if hl < ivfHeaderLen {
		return 0, 0, fmt.Errorf("%w: ivf header length %d", ErrCorruptMedia, hl)
	}
	off, size := hl, int64(len(data))
	if off > size {
		return 0, 0, nil
	}
	for size-off >= ivfFrameHeaderLen {
		n := int64(binary.LittleEndian.Uint32(data[off:]))
		if size-off-ivfFrameHeaderLen < n {
			break
		}
		frames++
		off += ivfFrameHeaderLen + n
	}
	return frames, off, nil
}

// oggCRCTable is the Ogg CRC-32 (polynomial 0x04c11db7, unreflected, zero init).
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

// oggCRC is the checksum of a page, computed with its checksum field as zero.
func oggCRC(page []byte) uint32 {
	var c uint32
	for i, b := range page {
		if i >= 22 && i < 26 {
			b = 0
		}
		c = c<<8 ^ oggCRCTable[byte(c>>24)^b]
	}
	return c
}
