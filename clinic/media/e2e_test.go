package media

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCallEndToEnd: two clients join, talk, both switch to video, and the
// engine forwards each side to the other and records exactly what it got.
func TestCallEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cat := newCatalog()
	reg := prometheus.NewRegistry()
	e, err := New(Config{DataDir: t.TempDir(), Registerer: reg}, cat)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	p := newPair(ctx, t, e, 1)
	if n := e.ActiveCalls(); n != 1 {
		t.Errorf("active calls = %d, want 1", n)
	}

	sent := map[string][][]byte{} // user+kind -> frames
	var mu sync.Mutex
	phase := func(audio, video int) {
		var wg sync.WaitGroup
		for _, c := range []*client{p.pat, p.cli} {
			wg.Go(func() {
				a := c.send('a', audio, 20*time.Millisecond)
				mu.Lock()
				sent[c.user+"audio"] = append(sent[c.user+"audio"], a...)
				mu.Unlock()
			})
			if video > 0 {
				wg.Go(func() {
					v := c.send('v', video, 66*time.Millisecond)
					mu.Lock()
					sent[c.user+"video"] = append(sent[c.user+"video"], v...)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
	}
	phase(50, 0)
	p.pat.switchVideo(ctx, e, p.call.ConsultationID)
	p.cli.switchVideo(ctx, e, p.call.ConsultationID)
	phase(30, 20)
	// A second switch (a retried request, a client renegotiating) is a plain
	// renegotiation: the same tracks go on.
	p.pat.switchVideo(ctx, e, p.call.ConsultationID)
	phase(10, 5)

	// Live forwarding: each side gets the other's frames and nothing else.
	waitFor(ctx, func() bool {
		return len(p.pat.received("video")) >= 23 && len(p.cli.received("video")) >= 23 &&
			len(p.pat.received("audio")) >= 85 && len(p.cli.received("audio")) >= 85
	})
	for _, pr := range [][2]*client{{p.pat, p.cli}, {p.cli, p.pat}} {
		rx, tx := pr[0], pr[1]
		for _, k := range []string{"audio", "video"} {
			got := rx.received(k)
			if len(got) == 0 {
				t.Errorf("%s received no %s", rx.user, k)
			}
			checkSubsequence(t, rx.user+" live "+k, got, sent[tx.user+k], 0.5)
		}
	}

	recs, err := e.End(ctx, p.call.ConsultationID)
	if err != nil {
		t.Fatalf("end: %v", err)
	}
	if len(recs) != 4 {
		t.Fatalf("end returned %d tracks, want 4: %+v", len(recs), recs)
	}
	for _, r := range recs {
		if r.RecordingID != p.call.RecordingID || r.Segment != 1 {
			t.Errorf("track %s: recording %s segment %d, want %s segment 1", r.ID, r.RecordingID, r.Segment, p.call.RecordingID)
		}
		var got [][]byte
		switch r.Kind {
		case "audio":
			got = readOgg(t, r.Path)
		case "video":
			got = readIVF(t, r.Path)
		}
		if int64(len(got)) != r.Frames {
			t.Errorf("track %s (%s %s): file holds %d frames, end says %d", r.ID, r.Owner, r.Kind, len(got), r.Frames)
		}
		checkSubsequence(t, r.Owner+" recorded "+r.Kind, got, sent[r.Owner+r.Kind], 0.1)
		if pr := cat.lastProgress(r.ID); pr != [2]int64{r.Frames, r.Bytes} {
			t.Errorf("track %s: last progress %v, end says frames %d bytes %d", r.ID, pr, r.Frames, r.Bytes)
		}
		if f, b, err := Recount(r.Path, r.Format); err != nil || f != r.Frames || b != r.Bytes {
			t.Errorf("recount %s = %d frames %d bytes %v, want %d %d", r.ID, f, b, err, r.Frames, r.Bytes)
		}
	}
	if n := e.ActiveCalls(); n != 0 {
		t.Errorf("active calls after end = %d", n)
	}
	if _, _, err := e.Join(ctx, p.call, p.call.Patient, p.pat.offer(ctx)); err == nil {
		t.Error("join after end succeeded")
	}
	checkMetrics(t, reg)
}

func checkMetrics(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				vals[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				vals[name] = m.Gauge.GetValue()
			}
		}
	}
	for _, name := range []string{
		"clinic_media_frames_received_total,audio", "clinic_media_frames_received_total,video",
		"clinic_media_frames_forwarded_total,audio", "clinic_media_bytes_written_total,video",
	} {
		if vals[name] <= 0 {
			t.Errorf("metric %s = %v, want > 0", name, vals[name])
		}
	}
	if v, ok := vals["clinic_media_calls_active"]; !ok || v != 0 {
		t.Errorf("clinic_media_calls_active = %v (present %v), want 0", v, ok)
	}
}
