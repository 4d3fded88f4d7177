package clinic

import (
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestLoadConcurrentCalls runs CLINIC_LOAD_CALLS calls at once through the real
// engine (book, join, talk, switch, talk, end, verify the replay) and logs
// latency figures. Off by default: it is a measurement, not a unit test.
//
//	CLINIC_LOAD_CALLS=20 go test -run TestLoadConcurrentCalls -v ./clinic
func TestLoadConcurrentCalls(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CLINIC_LOAD_CALLS"))
	if n <= 0 {
		t.Skip("set CLINIC_LOAD_CALLS=N to run")
	}
	s := startReal(t, t.TempDir())
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	timed := func(name string, f func()) {
		start := time.Now()
		f()
		mu.Lock()
		lat[name] = append(lat[name], time.Since(start))
		mu.Unlock()
	}
	begin := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ct := &loadT{TB: t}
			cc := newAPIClient(ct, s.URL())
			var p, d testUser
			timed("register", func() { p, d = cc.register("patient"), cc.register("clinician") })
			var b bookResp
			timed("book", func() { b = cc.book(p, d) })
			pp, dp := newRTCPeer(ct), newRTCPeer(ct)
			seg := map[string]int{}
			timed("join", func() { seg[p.ID] = cc.rtcJoin(p, b.ConsultationID, pp) })
			timed("join", func() { seg[d.ID] = cc.rtcJoin(d, b.ConsultationID, dp) })
			pp.waitConnected()
			dp.waitConnected()
			sent := map[string][][]byte{}
			talk(ct, pp, dp, p, d, seg, sent, 50, 0)
			timed("switch", func() { cc.rtcSwitch(p, b.ConsultationID, pp) })
			timed("switch", func() { cc.rtcSwitch(d, b.ConsultationID, dp) })
			talk(ct, pp, dp, p, d, seg, sent, 25, 25)
			var e endJSON
			timed("end", func() { cc.must(200, "POST", "/v1/consultations/"+b.ConsultationID+"/end", p.Token, nil, &e) })
			var l listJSON
			timed("list", func() { l = cc.list(p) })
			if !slices.Equal(listIDs(l), []string{e.RecordingID}) {
				t.Errorf("patient lists %v", listIDs(l))
			}
			checkReplay(cc, d, e.RecordingID, sent, ackedFrames(e))
		})
	}
	wg.Wait()
	t.Logf("%d concurrent calls in %v", n, time.Since(begin).Round(time.Millisecond))
	names := make([]string, 0, len(lat))
	for k := range lat {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		d := lat[k]
		slices.Sort(d)
		t.Logf("%-8s n=%4d p50=%8v p95=%8v max=%8v", k, len(d), d[len(d)/2].Round(time.Microsecond),
			d[len(d)*95/100].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
	}
}

// loadT lets helpers written for the test goroutine run on worker goroutines:
// Fatal becomes Error plus Goexit of the worker only.
type loadT struct{ testing.TB }

func (l *loadT) Fatalf(format string, args ...any) {
	l.TB.Errorf(format, args...)
	runtime.Goexit()
}

func (l *loadT) Fatal(args ...any) {
	l.TB.Error(args...)
	runtime.Goexit()
}
