package media

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v3/pkg/media/oggwriter"

	"github.com/telechaos/telechaos/clinic/bugs"
)

type kind int

const (
	kindAudio kind = iota
	kindVideo
)

func (k kind) String() string {
	if k == kindVideo {
		return "video"
	}
	return "audio"
}

// rtpWriter is what pion's Ogg and IVF writers have in common.
type rtpWriter interface {
	WriteRTP(*rtp.Packet) error
	Close() error
}

// sink is the file under a track writer. It tracks the writer's position and
// the file's logical size, so frame and byte counts come from what the writer
// really emitted. Normally every write goes straight to the file (streamed): a
// crash keeps whatever was written.
type sink struct {
	f         *os.File
	pos, size int64
	// held is non-nil only with the lost-on-crash bug: a write-behind buffer
	// meant to save syscalls, flushed only when the track is finalised.
	held *bytes.Buffer
	m    *metrics
	k    kind
}

func (s *sink) Write(p []byte) (int, error) {
	var n int
	var err error
	if s.held != nil {
		n, err = s.held.Write(p)
	} else {
		n, err = s.f.Write(p)
	}
	s.pos += int64(n)
	if s.pos > s.size {
		s.m.written[s.k].Add(float64(s.pos - s.size))
		s.size = s.pos
	}
	return n, err
}

// Seek is used by the IVF writer to patch the frame count at close; from
// then on writes go straight to the file.
func (s *sink) Seek(off int64, whence int) (int64, error) {
	if err := s.flush(); err != nil {
		return s.pos, err
	}
	s.held = nil
	n, err := s.f.Seek(off, whence)
	if err == nil {
		s.pos = n
	}
	return n, err
}

func (s *sink) flush() error {
	if s.held == nil || s.held.Len() == 0 {
		return nil
	}
	_, err := s.f.Write(s.held.Bytes())
	s.held.Reset()
	return err
}

// recorder writes one track file: one participant, one kind, one segment.
type recorder struct {
	e   *Engine
	rec TrackRecord // identity; counts live in frames/bytes
	k   kind

	mu       sync.Mutex // writes, finalise and abandon
	sink     *sink
	w        rtpWriter
	done     bool
	lastPage int64 // offset of the last Ogg page, for the end-of-stream flag
	failed   bool

	frames, bytes atomic.Int64

	progMu     sync.Mutex // orders TrackProgress calls; the final one is last
	final      bool
	repF, repB int64
}

// openTrack creates the track file with its container header, tells the
// catalog, and registers the recorder with the call and the progress loop.
// It returns nil (after logging) when the track cannot be recorded; the call
// goes on without it.
func (e *Engine) openTrack(p *peer, k kind, recordingID string) *recorder {
	id, err := randomID("t_")
	if err != nil {
		e.log.Error("media: track id", "err", err)
		return nil
	}
	tr := TrackRecord{ID: id, RecordingID: recordingID, Owner: p.user, Kind: k.String(), Segment: p.segment, Started: time.Now().UTC()}
	switch {
	case k == kindAudio:
		tr.Codec, tr.Format = "opus", "ogg"
	default:
		tr.Codec, tr.Format = "vp8", "ivf"
	}
	if e.cfg.RecordFormat == FormatWebM {
		tr.Format = FormatWebM
	}
	dir := filepath.Join(e.dir, recordingID)
	tr.Path = filepath.Join(dir, id+"."+tr.Format)
	r, err := e.create(tr, k)
	if err != nil {
		e.log.Error("media: open track", "consultation", p.c.ConsultationID, "user", p.user, "kind", k.String(), "err", err)
		return nil
	}
	p.addRecorder(r)
	p.c.addRecorder(r)
	e.open.add(r)
	e.m.tracks[k].Inc()
	return r
}

func (e *Engine) create(tr TrackRecord, k kind) (*recorder, error) {
	if err := os.MkdirAll(filepath.Dir(tr.Path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(tr.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	s := &sink{f: f, m: e.m, k: k}
	var w rtpWriter
	switch {
	case tr.Format == FormatWebM:
		w, err = newWebMWriter(s, k)
	case k == kindAudio:
		w, err = oggwriter.NewWith(s, opusRate, opusChannels)
	default:
		w, err = ivfwriter.NewWith(s)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tr.Path)
		return nil, fmt.Errorf("write %s header: %w", tr.Format, err)
	}
	if e.bugs.Fire(bugs.LostOnCrash) {
		// lost-on-crash: frames collect in memory and reach the file only
		// when the track is finalised; a crash loses them.
		s.held = &bytes.Buffer{}
	}
	tr.Bytes = s.size
	if err := e.cat.TrackOpened(tr); err != nil {
		_ = f.Close()
		_ = os.Remove(tr.Path)
		return nil, fmt.Errorf("catalog: track opened: %w", err)
	}
	r := &recorder{e: e, rec: tr, k: k, sink: s, w: w}
	r.bytes.Store(s.size)
	r.repB = s.size
	return r, nil
}

// write appends one RTP packet's payload as one frame. A nil recorder (the
// track could not be opened) ignores it.
func (r *recorder) write(pkt *rtp.Packet) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	before := r.sink.size
	if err := r.w.WriteRTP(pkt); err != nil {
		if !r.failed {
			r.failed = true
			r.e.log.Warn("media: write frame", "track", r.rec.ID, "err", err)
		}
		return
	}
	// The writers drop what they cannot store (empty payloads, video before
	// the first keyframe); a frame counts only if it reached the sink.
	if r.sink.size > before {
		r.lastPage = before
		r.frames.Add(1)
		r.bytes.Store(r.sink.size)
	}
}

func (r *recorder) record() TrackRecord {
	t := r.rec
	t.Frames, t.Bytes = r.frames.Load(), r.bytes.Load()
	return t
}

// finalise closes the file properly (IVF frame count, Ogg end-of-stream flag)
// and reports the final counts. Idempotent.
func (r *recorder) finalise() error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return nil
	}
	r.done = true
	err := r.sink.flush()
	r.sink.held = nil
	err = errors.Join(err, r.w.Close()) // IVF: patches the frame count through sink.Seek
	if r.k == kindAudio && r.rec.Format == "ogg" && r.frames.Load() > 0 {
		err = errors.Join(err, markOggEOS(r.sink.f, r.lastPage))
	}
	err = errors.Join(err, r.sink.f.Close())
	r.mu.Unlock()
	r.e.open.remove(r)
	r.report(true)
	if err != nil {
		return fmt.Errorf("finalise track %s: %w", r.rec.ID, err)
	}
	return nil
}

// abandon is the crash path: the descriptor is closed as the kernel would on
// SIGKILL; nothing held in memory is flushed and nothing is reported.
func (r *recorder) abandon() {
	r.mu.Lock()
	if !r.done {
		r.done = true
		_ = r.sink.f.Close()
	}
	r.mu.Unlock()
	r.progMu.Lock()
	r.final = true
	r.progMu.Unlock()
	r.e.open.remove(r)
}

// report sends the counts to the catalog if they changed (always when final).
func (r *recorder) report(final bool) {
	r.progMu.Lock()
	defer r.progMu.Unlock()
	if r.final {
		return
	}
	f, b := r.frames.Load(), r.bytes.Load()
	if final {
		r.final = true
	} else if f == r.repF && b == r.repB {
		return
	}
	r.repF, r.repB = f, b
	if err := r.e.cat.TrackProgress(r.rec.ID, f, b); err != nil {
		r.e.log.Warn("media: track progress", "track", r.rec.ID, "err", err)
	}
}

// recorderSet holds the open recorders for the progress loop.
type recorderSet struct {
	mu sync.Mutex
	m  map[*recorder]struct{}
}

func (s *recorderSet) add(r *recorder) {
	s.mu.Lock()
	s.m[r] = struct{}{}
	s.mu.Unlock()
}

func (s *recorderSet) remove(r *recorder) {
	s.mu.Lock()
	delete(s.m, r)
	s.mu.Unlock()
}

func (s *recorderSet) snapshot() []*recorder {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*recorder, 0, len(s.m))
	for r := range s.m {
		out = append(out, r)
	}
	return out
}

func (s *recorderSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// progressLoop reports every open track's counts about once a second: one
// goroutine for the engine, not one per track.
func (e *Engine) progressLoop() {
	defer e.bg.Done()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
			for _, r := range e.open.snapshot() {
				r.report(false)
			}
		}
	}
}

// markOggEOS sets the end-of-stream flag on the page at off and fixes its CRC
// (pion's oggwriter only does this for files it opened itself).
func markOggEOS(f *os.File, off int64) error {
	hdr := make([]byte, oggHeaderLen)
	if _, err := f.ReadAt(hdr, off); err != nil {
		return fmt.Errorf("ogg eos: %w", err)
	}
	nseg := int(hdr[26])
	table := make([]byte, nseg)
	if _, err := f.ReadAt(table, off+oggHeaderLen); err != nil {
		return fmt.Errorf("ogg eos: %w", err)
	}
	n := oggHeaderLen + nseg
	for _, l := range table {
		n += int(l)
	}
	page := make([]byte, n)
	if _, err := f.ReadAt(page, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("ogg eos: %w", err)
	}
	page[5] |= 0x04
	binary.LittleEndian.PutUint32(page[22:], 0)
	binary.LittleEndian.PutUint32(page[22:], oggCRC(page))
	if _, err := f.WriteAt(page[:oggHeaderLen], off); err != nil {
		return fmt.Errorf("ogg eos: %w", err)
	}
	return nil
}

func randomID(prefix string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b[:]), nil
}
