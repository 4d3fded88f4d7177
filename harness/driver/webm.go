package driver

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/at-wat/ebml-go"
)

// Matroska/WebM is read with github.com/at-wat/ebml-go: a maintained EBML
// library (the one pion's own WebM examples use) that knows the whole
// Matroska element table, unlaces Xiph/EBML/fixed lacing, bounds nesting
// depth and, with WithMaxLeafElementSize, the size of any leaf it allocates.
// github.com/remko/go-mkvparse, the other candidate, is not available from
// the module proxy here. Its mkvcore.NewSimpleBlockReader is not used: it
// runs goroutines and panics (onFatal) on a block for an undeclared track;
// ebml.Unmarshal with read hooks is synchronous and reports blocks in file
// order, SimpleBlock and BlockGroup alike.

// ebmlMagic is the EBML header element's ID, the first four bytes of any
// Matroska or WebM file.
const ebmlMagic = "\x1a\x45\xdf\xa3"

// errParserPanic marks a panic inside the EBML library, turned into an
// error so hostile bytes never crash the harness (the fuzz test fails on it).
var errParserPanic = errors.New("ebml parser panicked")

// webmTrack is the part of a TrackEntry the reader checks.
type webmTrack struct {
	TrackNumber uint64 `ebml:"TrackNumber"`
	CodecID     string `ebml:"CodecID"`
}

// webmDoc is what ebml.Unmarshal fills; the hooks see its blocks in order.
type webmDoc struct {
	Header struct {
		DocType string `ebml:"EBMLDocType"`
	} `ebml:"EBML"`
	Segment struct {
		Tracks struct {
			TrackEntry []webmTrack `ebml:"TrackEntry"`
		} `ebml:"Tracks"`
		Cluster []struct {
			SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
			BlockGroup  []struct {
				Block []ebml.Block `ebml:"Block"`
			} `ebml:"BlockGroup"`
		} `ebml:"Cluster"`
	} `ebml:"Segment"`
}

// countingReader counts what the library consumed: it reads no further ahead
// than it decodes, so the count is the offset of the parse.
type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// webmCodecs are the codecs the content oracle reads from Matroska.
var webmCodecs = map[string]bool{"A_OPUS": true, "V_VP8": true}

// ReadWebM returns the frames of a Matroska/WebM file (.webm, .mka, .mkv;
// Opus A_OPUS and VP8 V_VP8 tracks) in file order, from SimpleBlocks and
// BlockGroups alike, every laced frame on its own. A file cut short (a
// crash mid-write: an element that runs past the end of b) yields the frames
// that were complete and no error (a cut inside a laced block, which WebRTC
// recorders do not write, keeps that block's frames only when it falls
// between two of them: the library drops a block with a partial frame).
// Anything else that is not such a file (no
// EBML header, a DocType other than webm/matroska, an unknown element, a
// child larger than its parent, a codec other than Opus/VP8, a block for an
// undeclared track) is an error wrapping ErrContainer that names the byte
// offset, returned with the frames before it. No element can make it
// allocate more than len(b) bytes at once: the library's leaf cap is len(b),
// which an element that fits in b cannot exceed.
func ReadWebM(b []byte) (frames [][]byte, err error) {
	if len(b) < len(ebmlMagic) {
		if truncatedPrefix(b, ebmlMagic) {
			return nil, nil
		}
		return nil, fmt.Errorf("webm: %w: no EBML header at offset 0", ErrContainer)
	}
	if string(b[:len(ebmlMagic)]) != ebmlMagic {
		return nil, fmt.Errorf("webm: %w: no EBML header at offset 0", ErrContainer)
	}
	type blockAt struct {
		block ebml.Block
		end   int // offset just past the block
	}
	var (
		blocks []blockAt
		cr     = &countingReader{r: bytes.NewReader(b)}
		doc    webmDoc
	)
	// The hook runs as each block is decoded, in file order; the counting
	// reader then stands just past the block.
	hook := func(e *ebml.Element) {
		if e.Type != ebml.ElementSimpleBlock && e.Type != ebml.ElementBlock {
			return
		}
		if blk, ok := e.Value.(ebml.Block); ok {
			blocks = append(blocks, blockAt{blk, cr.n})
		}
	}
	perr := func() (perr error) {
		defer func() {
			if p := recover(); p != nil {
				perr = fmt.Errorf("%w: %v", errParserPanic, p)
			}
		}()
		return ebml.Unmarshal(cr, &doc,
			ebml.WithMaxLeafElementSize(uint64(len(b))),
			ebml.WithElementReadHooks(hook))
	}()
	if dt := doc.Header.DocType; dt != "webm" && dt != "matroska" {
		if len(blocks) == 0 && dt == "" && cr.n >= len(b) && (perr == nil || cut(perr, cr.n, len(b))) {
			return nil, nil // cut inside the EBML header, before its DocType
		}
		return nil, fmt.Errorf("webm: %w: DocType %q in the EBML header at offset 0 (want webm or matroska)", ErrContainer, dt)
	}
	if len(blocks) == 0 && cr.n >= len(b) && (perr == nil || cut(perr, cr.n, len(b))) {
		// No block at all (perhaps cut before the first one, the tracks
		// half-read): no frames, and nothing that says this is not WebM.
		return nil, nil
	}
	declared := map[uint64]bool{}
	for _, t := range doc.Segment.Tracks.TrackEntry {
		if !webmCodecs[t.CodecID] {
			return nil, fmt.Errorf("webm: %w: track %d has codec %q (want A_OPUS or V_VP8)", ErrContainer, t.TrackNumber, t.CodecID)
		}
		declared[t.TrackNumber] = true
	}
	prev := 0
	for _, ba := range blocks {
		if !declared[ba.block.TrackNumber] {
			return frames, fmt.Errorf("webm: %w: block for undeclared track %d in %d..%d", ErrContainer, ba.block.TrackNumber, prev, ba.end)
		}
		frames = append(frames, ba.block.Data...)
		prev = ba.end
	}
	switch {
	case perr == nil:
		return frames, nil
	case errors.Is(perr, errParserPanic):
		return frames, fmt.Errorf("webm: %w: %w after offset %d", ErrContainer, perr, prev)
	case cut(perr, cr.n, len(b)):
		return frames, nil
	}
	return frames, fmt.Errorf("webm: %w: %v at offset %d (last whole block ends at %d)", ErrContainer, perr, cr.n, prev)
}

// cut reports whether a parse error is the file ending early: the library
// ran out of input with all of b consumed, or met an element larger than all
// of b (the leaf cap), which can only run past its end. With all of b
// consumed, ErrInvalidElementSize is a cut too: the library reads a size
// field cut off by the end as "unknown size", which a leaf cannot have.
func cut(err error, consumed, total int) bool {
	if errors.Is(err, ebml.ErrTooLargeElement) {
		return true
	}
	return consumed >= total && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, ebml.ErrInvalidElementSize))
}
