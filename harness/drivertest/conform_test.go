package drivertest_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/drivertest"
	_ "github.com/telechaos/telechaos/harness/embedded" // registers the embedded scheme
	"github.com/telechaos/telechaos/harness/target"
)

// TestConformEmbedded: the reference clinic, opened through the registry,
// satisfies every clause.
func TestConformEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls against the embedded clinic")
	}
	st := time.Now()
	drivertest.Run(t, drivertest.OpenRef("embedded", target.Options{}))
	t.Logf("conformance against embedded: %s", time.Since(st).Round(time.Millisecond))
}

// broken opens the embedded clinic with its driver wrapped by wrap.
func broken(wrap func(driver.Target) driver.Target) drivertest.Opener {
	return func(ctx context.Context) (*target.Opened, error) {
		op, err := target.Open(ctx, "embedded", target.Options{})
		if err != nil {
			return nil, err
		}
		op.Target = wrap(op.Target)
		return op, nil
	}
}

// secondEndAccepted answers a second end with the first end's answer.
type secondEndAccepted struct {
	driver.Target
	mu    sync.Mutex
	ended map[string]driver.EndResult
}

func (b *secondEndAccepted) End(ctx context.Context, s driver.Session, cid string) (driver.EndResult, error) {
	b.mu.Lock()
	prev, ok := b.ended[cid]
	b.mu.Unlock()
	if ok {
		return prev, nil
	}
	res, err := b.Target.End(ctx, s, cid)
	if err == nil {
		b.mu.Lock()
		b.ended[cid] = res
		b.mu.Unlock()
	}
	return res, err
}

// foreignReplayServed serves a replay a user is denied with the session of
// the last user who could read it (a broken access check).
type foreignReplayServed struct {
	driver.Target
	mu     sync.Mutex
	reader map[string]driver.Session
}

func (b *foreignReplayServed) GetReplay(ctx context.Context, s driver.Session, rid string) (driver.Replay, error) {
	rep, err := b.Target.GetReplay(ctx, s, rid)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.reader[rid] = s
		return rep, nil
	}
	if r, ok := b.reader[rid]; ok && driver.IsDenied(err) {
		return b.Target.GetReplay(ctx, r, rid)
	}
	return rep, err
}

// listMissesRecordings lists nothing.
type listMissesRecordings struct{ driver.Target }

func (listMissesRecordings) ListReplays(context.Context, driver.Session) ([]driver.ReplaySummary, error) {
	return nil, nil
}

// garbageAnswer answers every join with an SDP that is not one.
type garbageAnswer struct{ driver.Target }

func (b garbageAnswer) Join(ctx context.Context, s driver.Session, cid, offer string) (string, int, error) {
	_, seg, err := b.Target.Join(ctx, s, cid, offer)
	return "v=0\r\nthis is not an answer\r\n", seg, err
}

// sameSegment rejoins answer the first segment a user was given again.
type sameSegment struct {
	driver.Target
	mu    sync.Mutex
	first map[string]int
}

func (b *sameSegment) Join(ctx context.Context, s driver.Session, cid, offer string) (string, int, error) {
	a, seg, err := b.Target.Join(ctx, s, cid, offer)
	b.mu.Lock()
	defer b.mu.Unlock()
	if f, ok := b.first[s.ID]; ok {
		seg = f
	} else {
		b.first[s.ID] = seg
	}
	return a, seg, err
}

func TestConformBroken(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls against the embedded clinic")
	}
	for _, tc := range []struct {
		name   string
		wrap   func(driver.Target) driver.Target
		clause string
		want   []string // in the failure's detail, request or answer
		notRun []string // clauses that must be reported not run
		settle time.Duration
	}{
		{"second end accepted", func(t driver.Target) driver.Target {
			return &secondEndAccepted{Target: t, ended: map[string]driver.EndResult{}}
		}, drivertest.ClauseSecondEnd, []string{"want 409", "end "}, nil, 0},
		{"foreign replay served", func(t driver.Target) driver.Target {
			return &foreignReplayServed{Target: t, reader: map[string]driver.Session{}}
		}, drivertest.ClauseDeny, []string{"were not denied", "replay (", "get replay", "other patient"}, nil, 0},
		{"list misses the recording", func(t driver.Target) driver.Target { return listMissesRecordings{t} },
			drivertest.ClauseList, []string{"not in the list", "list replays as patient", "ok: 0 replays"}, nil,
			time.Second}, // it never lists: waiting longer proves nothing more
		{"garbage answer SDP", func(t driver.Target) driver.Target { return garbageAnswer{t} },
			drivertest.ClauseJoin, []string{"accept join answer", "join ", "not an answer"},
			[]string{drivertest.ClauseForward, drivertest.ClauseSwitch, drivertest.ClauseEnd, drivertest.ClauseFetch, drivertest.ClauseSecondEnd}, 0},
		{"rejoin reuses the segment", func(t driver.Target) driver.Target { return &sameSegment{Target: t, first: map[string]int{}} },
			drivertest.ClauseRejoin, []string{"segment", "again"}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := drivertest.Check(t.Context(), broken(tc.wrap), drivertest.Options{Settle: tc.settle})
			var failed []string
			for _, r := range res {
				if r.Result == drivertest.Fail {
					failed = append(failed, r.Clause)
				}
			}
			if len(failed) == 0 || failed[0] != tc.clause {
				t.Fatalf("failing clauses %v, want %s first; results:\n%s", failed, tc.clause, dump(res))
			}
			var r drivertest.ClauseResult
			for _, x := range res {
				if x.Clause == tc.clause {
					r = x
				}
			}
			text := r.String()
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("the %s failure does not say %q:\n%s", tc.clause, w, text)
				}
			}
			if r.Request == "" || r.Answer == "" {
				t.Errorf("the %s failure names no request and answer:\n%s", tc.clause, text)
			}
			for _, n := range tc.notRun {
				for _, x := range res {
					if x.Clause == n && x.Result != drivertest.NotRun {
						t.Errorf("clause %s is %s, want not run after %s failed", n, x.Result, tc.clause)
					}
				}
			}
			t.Logf("%s", text)
		})
	}
}

func dump(res []drivertest.ClauseResult) string {
	var b strings.Builder
	for _, r := range res {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// TestCheckOpenFails: a target that cannot be opened fails the open clause
// and runs nothing else; nothing is reported passed.
func TestCheckOpenFails(t *testing.T) {
	res := drivertest.Check(t.Context(), drivertest.OpenRef("nosuchscheme:x", target.Options{}), drivertest.Options{})
	if len(res) != len(drivertest.Clauses()) {
		t.Fatalf("%d results for %d clauses", len(res), len(drivertest.Clauses()))
	}
	if res[0].Clause != drivertest.ClauseOpen || res[0].Result != drivertest.Fail || !strings.Contains(res[0].Detail, "nosuchscheme") {
		t.Fatalf("open: %s", res[0])
	}
	for _, r := range res[1:] {
		if r.Result != drivertest.NotRun {
			t.Errorf("%s is %s after open failed, want not run", r.Clause, r.Result)
		}
	}
}

// TestCheckFakeHasNoMedia: the in-memory Fake registers, books and answers
// health, but cannot join (no media): join fails naming the request, and
// what needs a call is not run.
func TestCheckFakeHasNoMedia(t *testing.T) {
	fake := drivertest.New(nil)
	res := drivertest.Check(t.Context(), drivertest.OpenTarget(func(context.Context) (driver.Target, error) { return fake, nil }), drivertest.Options{})
	want := map[string]drivertest.Result{
		drivertest.ClauseOpen: drivertest.Pass, drivertest.ClauseHealth: drivertest.Pass, drivertest.ClauseRegister: drivertest.Pass,
		drivertest.ClauseBook: drivertest.Pass, drivertest.ClauseJoin: drivertest.Fail,
	}
	for _, r := range res {
		w, ok := want[r.Clause]
		if !ok {
			w = drivertest.NotRun
		}
		if r.Result != w {
			t.Errorf("%s: %s, want %s\n%s", r.Clause, r.Result, w, r)
		}
		if r.Clause == drivertest.ClauseJoin && (!strings.Contains(r.Request, "join ") || !strings.Contains(r.Answer, "no media")) {
			t.Errorf("join failure does not quote the join and its answer:\n%s", r)
		}
	}
}
