package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// recHooks records events and retries failed requests up to tries times.
type recHooks struct {
	NopHooks
	tries   int
	mu      sync.Mutex
	events  []EventKind
	noted   []string
	stopped bool
}

func (h *recHooks) Retry(ctx context.Context, fn func() error) error {
	err := fn()
	for i := 1; i < h.tries && err != nil; i++ {
		err = fn()
	}
	return err
}

func (h *recHooks) StoppedByUs(ctx context.Context) bool { return h.stopped || ctx.Err() != nil }

func (h *recHooks) Event(e Event) {
	h.mu.Lock()
	h.events = append(h.events, e.Kind)
	h.mu.Unlock()
}

func (h *recHooks) NoteErr(_, step string, err error) {
	h.mu.Lock()
	h.noted = append(h.noted, step+": "+err.Error())
	h.mu.Unlock()
}

func (h *recHooks) saw(k EventKind) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e == k {
			n++
		}
	}
	return n
}

// world is a patient p and a clinician d with one booked consultation, a
// second patient q with one of their own (other), on a fake target.
type world struct {
	f      *fakeTarget
	ledger *models.Ledger
	or     *oracle.Oracle
	hooks  *recHooks
	cl     *Client
	p, d   driver.Session
	q      driver.Session
	cons   models.Consultation
	other  models.Consultation
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{f: newFakeTarget(), ledger: models.NewLedger(), hooks: &recHooks{tries: 1}}
	w.or = oracle.New(w.ledger, oracle.Options{DurabilityTolerance: 0.02})
	w.cl = New(w.f, nil, w.ledger, w.or, Options{Hooks: w.hooks})
	ctx := context.Background()
	var err error
	reg := func(role models.Role) driver.Session {
		s, rerr := w.cl.Register(ctx, role)
		if rerr != nil {
			t.Fatal(rerr)
		}
		return s
	}
	w.p, w.d, w.q = reg(models.Patient), reg(models.Clinician), reg(models.Patient)
	if w.cons, err = w.cl.Book(ctx, w.p, w.d.ID); err != nil {
		t.Fatal(err)
	}
	if w.other, err = w.cl.Book(ctx, w.q, w.d.ID); err != nil {
		t.Fatal(err)
	}
	return w
}

// end ends cons as its patient and returns the call and its recording.
func (w *world) end(t *testing.T, cons models.Consultation, by driver.Session) (*Call, string) {
	t.Helper()
	call := w.cl.NewCall(cons)
	res, err := call.End(context.Background(), by)
	if err != nil {
		t.Fatal(err)
	}
	call.Expect(nil)
	return call, res.RecordingID
}

func invariants(vs []oracle.Violation) map[string]int {
	out := map[string]int{}
	for _, v := range vs {
		out[v.Invariant]++
	}
	return out
}

func TestReplayForeignFrameIsViolation(t *testing.T) {
	w := newWorld(t)
	frames := append(videoFrames(w.cons.ID, w.p.ID, 3), videoFrames(w.other.ID, w.q.ID, 1)...)
	w.f.record(w.cons.ID, w.p.ID, ivf(frames, false), len(frames))
	_, rid := w.end(t, w.cons, w.p)
	if err := w.cl.Replay(context.Background(), w.p, w.cons, rid, true); err != nil {
		t.Fatalf("replay: %v", err)
	}
	got := invariants(w.or.Violations())
	if got[oracle.ReplayContentOwnership] == 0 {
		t.Errorf("a foreign frame in a replay: violations %v, want %s", got, oracle.ReplayContentOwnership)
	}
	if n := w.hooks.saw(EventFetched); n != 1 {
		t.Errorf("fetched events %d, want 1", n)
	}
}

func TestReplayOwnFramesAreClean(t *testing.T) {
	w := newWorld(t)
	w.f.record(w.cons.ID, w.p.ID, ivf(videoFrames(w.cons.ID, w.p.ID, 3), false), 3)
	w.f.record(w.cons.ID, w.d.ID, ivf(videoFrames(w.cons.ID, w.d.ID, 2), false), 2)
	_, rid := w.end(t, w.cons, w.p)
	for _, s := range []driver.Session{w.p, w.d} {
		if err := w.cl.Replay(context.Background(), s, w.cons, rid, true); err != nil {
			t.Fatalf("replay as %s: %v", s.ID, err)
		}
	}
	w.or.Finish(time.Now())
	if vs := w.or.Violations(); len(vs) != 0 {
		t.Errorf("violations on a correct recording: %+v", vs)
	}
	st := w.or.Stats()
	if st.FramesChecked != 10 || st.DurabilityChecked != 2 {
		t.Errorf("frames checked %d, durability checked %d; want 10 and 2", st.FramesChecked, st.DurabilityChecked)
	}
}

func TestReplayPartialTrackJudgedUpToCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		foreign bool
	}{{"foreign frame before the break", true}, {"own frames before the break", false}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			frames := videoFrames(w.cons.ID, w.p.ID, 2)
			if tc.foreign {
				frames = append(frames, videoFrames(w.other.ID, w.q.ID, 1)...)
			}
			w.f.record(w.cons.ID, w.p.ID, ivf(frames, true), len(frames))
			_, rid := w.end(t, w.cons, w.p)
			err := w.cl.Replay(context.Background(), w.p, w.cons, rid, true)
			if !errors.Is(err, ErrUnreadableTrack) || !errors.Is(err, driver.ErrGarbage) {
				t.Fatalf("replay of a broken track: err %v, want ErrUnreadableTrack and ErrGarbage", err)
			}
			got := invariants(w.or.Violations())
			if tc.foreign && got[oracle.ReplayContentOwnership] == 0 {
				t.Errorf("a foreign frame before the corruption: violations %v, want %s", got, oracle.ReplayContentOwnership)
			}
			if !tc.foreign && len(got) != 0 {
				t.Errorf("own frames before the corruption: violations %v, want none", got)
			}
			st := w.or.Stats()
			if st.FramesChecked != int64(len(frames)) {
				t.Errorf("frames checked %d, want the %d before the break", st.FramesChecked, len(frames))
			}
			j := st.Judgement[oracle.ReplayContentOwnership]
			if j.NotJudged != 1 || j.Reasons["unreadable track"] != 1 {
				t.Errorf("content judgement %+v, want the partial track not judged (unreadable track)", j)
			}
			if w.hooks.saw(EventUnreadable) != 1 || w.hooks.saw(EventFetched) != 0 {
				t.Errorf("events %v: want one unreadable answer and no completed fetch", w.hooks.events)
			}
			// The look failed: durability is not judged for p, never a loss.
			w.or.Finish(time.Now())
			if got := invariants(w.or.Violations()); got[oracle.RecordingDurability] != 0 {
				t.Errorf("a failed look judged as a loss: %v", got)
			}
			if j := w.or.Stats().Judgement[oracle.RecordingDurability]; j.NotJudged != 1 {
				t.Errorf("durability judgement %+v, want p's look not judged", j)
			}
		})
	}
}

func TestFailedFetchCountsAsNotJudged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      driver.Op
		stopped bool
		reason  string
	}{
		{"track answered 500", driver.OpMedia, false, "answered 5xx"},
		{"metadata unreachable", driver.OpReplay, false, "no answer"},
		{"stopped by the caller", driver.OpMedia, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.f.record(w.cons.ID, w.p.ID, ivf(videoFrames(w.cons.ID, w.p.ID, 2), false), 2)
			_, rid := w.end(t, w.cons, w.p)
			w.f.fail[tc.op] = &driver.StatusError{Op: tc.op, Code: 500}
			if tc.op == driver.OpReplay {
				w.f.fail[tc.op] = driver.ErrUnreachable
			}
			w.hooks.stopped = tc.stopped
			if err := w.cl.Replay(context.Background(), w.p, w.cons, rid, true); err == nil {
				t.Fatal("replay with a failed fetch: no error")
			}
			j := w.or.Stats().Judgement[oracle.ReplayContentOwnership]
			if tc.stopped {
				if j.NotJudged != 0 {
					t.Errorf("a failure the caller caused counted as not judged: %+v", j)
				}
				return
			}
			if j.NotJudged != 1 || j.Reasons[tc.reason] != 1 {
				t.Errorf("content judgement %+v, want 1 not judged (%s)", j, tc.reason)
			}
			w.or.Finish(time.Now())
			if len(w.or.Violations()) != 0 {
				t.Errorf("a failed fetch is not a violation: %+v", w.or.Violations())
			}
			if j := w.or.Stats().Judgement[oracle.RecordingDurability]; j.NotJudged != 1 {
				t.Errorf("durability judgement %+v, want the failed look not judged", j)
			}
		})
	}
}

func TestReplayDeniedToStrangerIsNotAFailedLook(t *testing.T) {
	w := newWorld(t)
	w.f.record(w.cons.ID, w.p.ID, ivf(videoFrames(w.cons.ID, w.p.ID, 2), false), 2)
	_, rid := w.end(t, w.cons, w.p)
	err := w.cl.Replay(context.Background(), w.q, w.cons, rid, true)
	if !driver.IsDenied(err) {
		t.Fatalf("stranger's replay: err %v, want denied", err)
	}
	if j := w.or.Stats().Judgement[oracle.ReplayContentOwnership]; j.NotJudged != 0 {
		t.Errorf("a denial counted as not judged: %+v", j)
	}
}

func TestListJudgesAndOpensOffered(t *testing.T) {
	w := newWorld(t)
	w.f.record(w.cons.ID, w.p.ID, ivf(videoFrames(w.cons.ID, w.p.ID, 2), false), 2)
	w.end(t, w.cons, w.p)
	w.f.leakList, w.f.bola = true, true
	items, err := w.cl.List(context.Background(), w.q)
	if err != nil || len(items) != 1 {
		t.Fatalf("list: %v %v", items, err)
	}
	w.cl.OpenOffered(context.Background(), w.q, items)
	got := invariants(w.or.Violations())
	if got[oracle.ReplayListOwnership] == 0 || got[oracle.ReplayContentOwnership] == 0 {
		t.Errorf("a leaked list played by a stranger: violations %v, want list and content ownership", got)
	}
	if w.f.calls[driver.OpMedia] != 1 {
		t.Errorf("offered recording's track fetched %d times, want 1", w.f.calls[driver.OpMedia])
	}
}

func TestListFailureCountsAsNotJudged(t *testing.T) {
	w := newWorld(t)
	w.f.fail[driver.OpList] = &driver.StatusError{Op: driver.OpList, Code: 503}
	if _, err := w.cl.List(context.Background(), w.p); err == nil {
		t.Fatal("list failure: no error")
	}
	j := w.or.Stats().Judgement[oracle.ReplayListOwnership]
	if j.NotJudged != 1 || j.Judged != 0 || j.Reasons["answered 5xx"] != 1 {
		t.Errorf("list judgement %+v, want 1 not judged (answered 5xx)", j)
	}
}

func TestUnlistedAfterEndIsADurabilityViolation(t *testing.T) {
	w := newWorld(t)
	call, _ := w.end(t, w.cons, w.p)
	w.f.listAfter = 1 << 30 // the target never lists it
	start := time.Now().Add(time.Millisecond)
	items, err := w.cl.List(context.Background(), w.p)
	if err != nil {
		t.Fatal(err)
	}
	call.Unlisted(w.q.ID, items, start) // not q's: nothing owed
	call.Unlisted(w.p.ID, items, start)
	w.or.Finish(time.Now())
	got := invariants(w.or.Violations())
	if got[oracle.RecordingDurability] != 1 {
		t.Errorf("a recording missing from a list after its end: violations %v, want one durability", got)
	}
}

func TestLookPollsUntilListed(t *testing.T) {
	w := newWorld(t)
	w.f.record(w.cons.ID, w.p.ID, ivf(videoFrames(w.cons.ID, w.p.ID, 3), false), 3)
	_, rid := w.end(t, w.cons, w.p)
	w.f.listAfter = 2 // listed from the third list on
	for _, s := range []driver.Session{w.p, w.d} {
		if !w.cl.Look(context.Background(), s, w.cons, rid, 5*time.Second) {
			t.Fatalf("look as %s failed", s.ID)
		}
	}
	w.or.Finish(time.Now())
	if vs := w.or.Violations(); len(vs) != 0 {
		t.Errorf("violations: %+v", vs)
	}
	if st := w.or.Stats(); st.DurabilityChecked != 2 {
		t.Errorf("durability checked %d, want 2", st.DurabilityChecked)
	}
	if n := w.f.calls[driver.OpList]; n < 3 {
		t.Errorf("lists %d, want the look to poll until the third", n)
	}
}

func TestLookNeverListed(t *testing.T) {
	w := newWorld(t)
	_, rid := w.end(t, w.cons, w.p)
	w.f.listAfter = 1 << 30
	if !w.cl.Look(context.Background(), w.p, w.cons, rid, 0) {
		t.Fatal("a look whose lists came back readable is complete")
	}
	w.or.Finish(time.Now())
	vs := w.or.Violations()
	if len(vs) != 1 || vs[0].Invariant != oracle.RecordingDurability || !strings.Contains(vs[0].Detail, "never listed") {
		t.Errorf("violations %+v, want one durability: never listed", vs)
	}
}

func TestLookWithoutReadableListIsNotJudged(t *testing.T) {
	w := newWorld(t)
	_, rid := w.end(t, w.cons, w.p)
	w.f.fail[driver.OpList] = driver.ErrUnreachable
	if w.cl.Look(context.Background(), w.p, w.cons, rid, 0) {
		t.Fatal("a look without any readable list reported complete")
	}
	w.or.Finish(time.Now())
	if vs := w.or.Violations(); len(vs) != 0 {
		t.Errorf("nothing seen is no loss: %+v", vs)
	}
	if j := w.or.Stats().Judgement[oracle.RecordingDurability]; j.NotJudged != 1 {
		t.Errorf("durability judgement %+v, want the look not judged", j)
	}
}

func TestAcknowledgedTracksMustBeDelivered(t *testing.T) {
	w := newWorld(t)
	// The target acknowledges 10 frames and serves 5: a media-free call is
	// judged against its acknowledgement.
	w.f.record(w.cons.ID, w.p.ID, ivf(videoFrames(w.cons.ID, w.p.ID, 5), false), 10)
	_, rid := w.end(t, w.cons, w.p)
	for _, s := range []driver.Session{w.p, w.d} {
		if err := w.cl.Replay(context.Background(), s, w.cons, rid, true); err != nil {
			t.Fatal(err)
		}
	}
	w.or.Finish(time.Now())
	if got := invariants(w.or.Violations()); got[oracle.RecordingDurability] != 2 {
		t.Errorf("violations %v, want durability for both participants", got)
	}
}

func TestEndWhoseAnswerWasLost(t *testing.T) {
	w := newWorld(t)
	w.hooks.tries = 3
	w.f.endLosesAnswer = true
	call := w.cl.NewCall(w.cons)
	res, err := call.End(context.Background(), w.p)
	if err != nil {
		t.Fatalf("end: %v", err)
	}
	if rid, ended := call.Recording(); !ended || rid == "" || rid != res.RecordingID {
		t.Errorf("recording %q ended %v, want the one the consultation names", rid, ended)
	}
	if w.hooks.saw(EventEndAckLost) != 1 || w.hooks.saw(EventEnded) != 1 {
		t.Errorf("events %v: want ack lost then ended", w.hooks.events)
	}
	if err := call.EndAgain(context.Background(), w.p); err != nil {
		t.Errorf("end again: %v", err)
	}
}

func TestEndWithoutRecordingIsGarbage(t *testing.T) {
	w := newWorld(t)
	w.f.consults[w.cons.ID].rid = ""
	_, err := w.cl.NewCall(w.cons).End(context.Background(), w.p)
	if !errors.Is(err, driver.ErrGarbage) {
		t.Errorf("end without a recording id: %v, want ErrGarbage", err)
	}
}

func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bola      bool
		fail      error
		violation bool
		judged    int64
		notJudged int64
		err       bool
	}{
		{name: "denied", judged: 3},
		{name: "leaked", bola: true, judged: 3, violation: true},
		{name: "unanswered", fail: driver.ErrUnreachable, judged: 2, notJudged: 1, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tid := w.f.record(w.cons.ID, w.p.ID, ivf(videoFrames(w.cons.ID, w.p.ID, 2), false), 2)
			_, rid := w.end(t, w.cons, w.p)
			w.f.bola = tc.bola
			if tc.fail != nil {
				w.f.fail[driver.OpConsultation] = tc.fail
			}
			err := w.cl.Probe(context.Background(), w.q, ProbeTarget{Recording: rid, Consultation: w.cons.ID, Tracks: []string{tid}}, 0)
			if (err != nil) != tc.err {
				t.Errorf("probe err %v, want error %v", err, tc.err)
			}
			got := invariants(w.or.Violations())
			if (got[oracle.ReplayAccessControl] > 0) != tc.violation {
				t.Errorf("violations %v, want access-control violation %v", got, tc.violation)
			}
			j := w.or.Stats().Judgement[oracle.ReplayAccessControl]
			if j.Judged != tc.judged || j.NotJudged != tc.notJudged {
				t.Errorf("access-control judgement %+v, want %d judged, %d not", j, tc.judged, tc.notJudged)
			}
			if w.hooks.saw(EventProbe) != 3 {
				t.Errorf("probe events %d, want 3", w.hooks.saw(EventProbe))
			}
		})
	}
}

func TestNoMediaFactory(t *testing.T) {
	w := newWorld(t)
	p := w.cl.NewCall(w.cons).Participant(w.p)
	if _, err := p.PrepareJoin(context.Background()); !errors.Is(err, ErrNoMedia) {
		t.Errorf("join without media: %v, want ErrNoMedia", err)
	}
	if err := p.Send(models.Audio); !errors.Is(err, ErrNoPeer) {
		t.Errorf("send without a peer: %v, want ErrNoPeer", err)
	}
	if _, err := p.PrepareSwitch(context.Background()); !errors.Is(err, ErrNoPeer) {
		t.Errorf("switch without a peer: %v, want ErrNoPeer", err)
	}
}

func TestPacing(t *testing.T) {
	// One second of steps carries AudioPerSecond audio and VideoPerSecond
	// video steps.
	video := 0
	for n := range AudioPerSecond {
		if (n+1)*VideoPerSecond/AudioPerSecond != n*VideoPerSecond/AudioPerSecond {
			video++
		}
	}
	if video != VideoPerSecond {
		t.Errorf("video steps per second %d, want %d", video, VideoPerSecond)
	}
	if got := StepsDue(time.Second, 0); got != MaxBurst {
		t.Errorf("catching up a second late sends %d steps at once, want %d", got, MaxBurst)
	}
	if got := StepsDue(45*time.Millisecond, 2); got != 3 {
		t.Errorf("steps due at 45 ms after 2: %d, want 3", got)
	}
}

func TestFrameFormat(t *testing.T) {
	// The shared frames: one RTP packet each, watermarked for the oracle.
	tag := models.Tag{Consultation: 1, Sender: 2, Seq: 3}
	a, v := models.AudioFrame(tag, AudioFrameSize), models.VideoFrame(tag, VideoFrameSize)
	if len(a) != AudioFrameSize || len(a) > 254 || len(v) != VideoFrameSize || len(v) > 1100 {
		t.Errorf("frame sizes %d/%d", len(a), len(v))
	}
	for _, f := range [][]byte{a, v} {
		got, _, err := models.FindTag(f)
		if err != nil || got.Consultation != 1 || got.Sender != 2 || got.Seq != 3 {
			t.Errorf("tag %+v, %v", got, err)
		}
	}
}

func TestReasonOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&driver.StatusError{Code: 302}, "redirected (not followed)"},
		{&driver.StatusError{Code: 502}, "answered 5xx"},
		{&driver.StatusError{Code: 418}, "answered 418"},
		{ErrUnreadableTrack, "unreadable track"},
		{ErrNoLiveMedia, "no live frame forwarded"},
		{ErrNotConnected, "call never connected"},
		{driver.ErrGarbage, "unreadable answer"},
		{driver.ErrUnreachable, "no answer"},
		{context.DeadlineExceeded, "no answer in time"},
		{errors.New("x"), "failed"},
	} {
		if got := ReasonOf(tc.err); got != tc.want {
			t.Errorf("ReasonOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
