package trace

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(es)
}

// wideTrace: patients booking with clinicians, ending and listing and probing,
// with no ordering between patients: nOps ops that may all run at once.
func wideTrace(patients, clinicians, rounds int) *Trace {
	tr := &Trace{Header: Header{Version: Version, Target: TargetEmbedded, Seed: 1, BugSeed: 1}}
	for c := range clinicians {
		tr.Users = append(tr.Users, User{fmt.Sprintf("c%d", c), "clinician"})
	}
	for p := range patients {
		tr.Users = append(tr.Users, User{fmt.Sprintf("p%d", p), "patient"})
	}
	for p := range patients {
		ps, k := fmt.Sprintf("p%d", p), fmt.Sprintf("k%d", p)
		book := len(tr.Ops)
		tr.Ops = append(tr.Ops, Op{Op: OpBook, User: ps, With: fmt.Sprintf("c%d", p%clinicians), Consult: k})
		end := len(tr.Ops)
		tr.Ops = append(tr.Ops, Op{Op: OpEnd, User: ps, Consult: k, After: []int{book}})
		for r := range rounds {
			other := fmt.Sprintf("p%d", (p+1+r)%patients)
			tr.Ops = append(tr.Ops, Op{Op: OpList, User: ps, After: []int{end}},
				Op{Op: OpProbe, User: other, Consult: k, After: []int{end}})
		}
	}
	return tr
}

// Replaying a trace of a few thousand independent ops keeps the open file
// descriptors bounded (one op used to be one goroutine and, at once, one
// connection: a 200,000-op trace ran out of descriptors and blamed the target).
func TestReplayKeepsOpenFDsBounded(t *testing.T) {
	tr := wideTrace(300, 30, 5) // 300*(2+10) = 3600 ops
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if n := int64(openFDs(t)); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := RunOnce(ctx, tr, Options{})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if out.OpErrors != nil {
		t.Errorf("%d ops failed, first: %v", len(out.OpErrors.Ops), out.OpErrors.Ops[0])
	}
	grew := int(peak.Load()) - before
	t.Logf("%d ops: open fds %d before, peak %d (+%d), after %d; %v", len(tr.Ops), before, peak.Load(), grew, openFDs(t), out.Duration.Round(time.Millisecond))
	if grew > 2*MaxConcurrentOps+64 {
		t.Errorf("open fds grew by %d during the replay (bound %d)", grew, 2*MaxConcurrentOps+64)
	}
	if after := openFDs(t); after > before+8 {
		t.Errorf("%d fds left open after the replay (%d before)", after, before)
	}
}
