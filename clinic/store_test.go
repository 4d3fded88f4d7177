package clinic

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/clinic/media"
)

// BenchmarkTrackProgress measures the single writer under the engine's
// steady load (one progress update per track per second).
func BenchmarkTrackProgress(b *testing.B) {
	st, err := openStore(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const tracks = 64
	for i := range tracks {
		if err := st.TrackOpened(media.TrackRecord{ID: fmt.Sprint("t", i), RecordingID: "r", Owner: "u", Kind: "audio",
			Codec: "opus", Format: "ogg", Segment: 1, Path: "/x", Started: time.Now()}); err == nil {
			b.Fatal("track without its recording was accepted (foreign keys off?)")
		}
	}
	if _, err := st.w.Exec(`PRAGMA foreign_keys = OFF`); err != nil {
		b.Fatal(err)
	}
	for i := range tracks {
		if err := st.TrackOpened(media.TrackRecord{ID: fmt.Sprint("t", i), RecordingID: "r", Owner: "u", Kind: "audio",
			Codec: "opus", Format: "ogg", Segment: 1, Path: "/x", Started: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/8 + 1
	for g := range 8 {
		wg.Go(func() {
			for i := range per {
				if err := st.TrackProgress(fmt.Sprint("t", (g*per+i)%tracks), int64(i), int64(i*100)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
