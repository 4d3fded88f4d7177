package media

import (
	"context"
	"flag"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var loadCalls = flag.Int("media.load", 0, "run TestLoad with this many concurrent calls (0 = skip)")

// TestLoad measures the engine under many concurrent audio calls (clients in
// the same process, so the CPU figure covers both ends):
//
//	go test -run TestLoad -media.load=100 ./clinic/media/
func TestLoad(t *testing.T) {
	n := *loadCalls
	if n <= 0 {
		t.Skip("set -media.load=N to run")
	}
	const seconds = 5
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, _ := newEngine(t, nil)
	g0 := runtime.NumGoroutine()

	start := time.Now()
	pairs := make([]*pair, n)
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p := newPair(ctx, t, e, i)
			mu.Lock()
			pairs[i] = p
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("%d calls joined and connected in %v; goroutines %d -> %d (%.1f per call, both ends)",
		n, time.Since(start).Round(time.Millisecond), g0, runtime.NumGoroutine(), float64(runtime.NumGoroutine()-g0)/float64(n))

	cpu0 := cpuTime()
	t0 := time.Now()
	for _, p := range pairs {
		wg.Go(func() { p.sendBoth('a', 50*seconds, 20*time.Millisecond) })
	}
	wg.Wait()
	wall := time.Since(t0)
	cpu := cpuTime() - cpu0
	t.Logf("%d calls x 2 x 50 pkt/s for %v: cpu %v (%.0f%% of one core, both ends)", n, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds())

	var sent, got int64
	for _, p := range pairs {
		recs, err := e.End(ctx, p.call.ConsultationID)
		if err != nil {
			t.Error(err)
		}
		sent += 2 * 50 * seconds
		for _, r := range recs {
			got += r.Frames
		}
	}
	t.Logf("recorded %d of %d frames (%.2f%%)", got, sent, 100*float64(got)/float64(sent))
	if float64(got) < 0.9*float64(sent) {
		t.Errorf("recorded only %d of %d frames", got, sent)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
