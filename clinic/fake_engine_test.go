package clinic

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/clinic/media"
)

// fakeEngine stands in for the SFU in API tests: each join opens one audio
// "track" file holding a fixed payload so replays have bytes to serve.
type fakeEngine struct {
	dir string
	cat media.Catalog

	mu     sync.Mutex
	calls  map[string]map[string]bool // consultation -> joined participants
	open   map[string][]media.TrackRecord
	seg    map[string]int // rid/participant -> last segment
	closed bool
}

func newFakeFactory() engineFactory {
	return func(c engineConfig, cat media.Catalog) (engine, error) {
		return &fakeEngine{dir: c.DataDir, cat: cat, calls: map[string]map[string]bool{},
			open: map[string][]media.TrackRecord{}, seg: map[string]int{}}, nil
	}
}

// fakePayload is what the fake writes for a participant's segment.
func fakePayload(owner string, seg int) []byte {
	return []byte(fmt.Sprintf("OggS-fake owner=%s segment=%d", owner, seg))
}

func (f *fakeEngine) UDPPort() int { return 0 }

func (f *fakeEngine) Join(ctx context.Context, c media.Call, participant, offer string) (string, int, error) {
	if strings.Contains(offer, "garbage") {
		return "", 0, fmt.Errorf("parse offer: %w", media.ErrBadSDP)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return "", 0, media.ErrClosed
	}
	if f.calls[c.ConsultationID] == nil {
		f.calls[c.ConsultationID] = map[string]bool{}
	}
	f.calls[c.ConsultationID][participant] = true
	k := c.RecordingID + "/" + participant
	seg := max(f.seg[k], c.SegmentBase[participant]) + 1
	f.seg[k] = seg
	tid := newID("t_")
	path := filepath.Join(f.dir, tid+".ogg")
	data := fakePayload(participant, seg)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", 0, err
	}
	rec := media.TrackRecord{ID: tid, RecordingID: c.RecordingID, Owner: participant, Kind: "audio", Codec: "opus",
		Format: "ogg", Segment: seg, Path: path, Started: time.Now()}
	if err := f.cat.TrackOpened(rec); err != nil {
		return "", 0, err
	}
	rec.Frames, rec.Bytes = 1, int64(len(data))
	f.open[c.ConsultationID] = append(f.open[c.ConsultationID], rec)
	return "v=0\r\ns=fake-answer\r\n", seg, nil
}

func (f *fakeEngine) Switch(ctx context.Context, cid, participant, offer string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.calls[cid][participant] {
		return "", media.ErrNotJoined
	}
	if !strings.Contains(offer, "m=video") {
		return "", media.ErrNoVideo
	}
	return "v=0\r\ns=fake-video-answer\r\n", nil
}

func (f *fakeEngine) End(ctx context.Context, cid string) ([]media.TrackRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls[cid] == nil {
		return nil, media.ErrNotActive
	}
	recs := f.open[cid]
	delete(f.calls, cid)
	delete(f.open, cid)
	return recs, nil
}

func (f *fakeEngine) ActiveCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeEngine) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, recs := range f.open {
		for _, r := range recs {
			f.cat.TrackProgress(r.ID, r.Frames, r.Bytes)
		}
	}
	return nil
}

func (f *fakeEngine) Crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

// startFake runs a clinic with the fake engine on a fresh (or given) data dir.
func startFake(t testing.TB, dir string, bugSpecs ...string) *Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := start(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: dir, Bugs: bugSpecs}, newFakeFactory())
	if err != nil {
		t.Fatalf("start clinic: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
