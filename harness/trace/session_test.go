package trace

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/client"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/models"
)

// breakingTarget appends bytes that are no container to every media body a
// correct target serves, as a corrupting front would.
type breakingTarget struct{ driver.Target }

func (b breakingTarget) FetchMedia(ctx context.Context, s driver.Session, rid, tid string) ([]byte, error) {
	body, err := b.Target.FetchMedia(ctx, s, rid, tid)
	if err != nil {
		return nil, err
	}
	return append(body, []byte("this is not a page of any container, nor a frame")...), nil
}

// execOn runs tr's ops (its bugs ignored: the correct clinic) against
// wrap(an embedded clinic's target) through a Session, and returns the oracle.
func execOn(t *testing.T, tr *Trace, wrap func(driver.Target) driver.Target) (*oracle.Oracle, *ExecError) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	op, err := target.Open(ctx, TargetEmbedded, target.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	ledger := models.NewLedger()
	or := oracle.New(ledger, oracle.Options{})
	tg := op.Target
	if wrap != nil {
		tg = wrap(tg)
	}
	_, err = execute(ctx, tr, NewSession(tg, media(t), ledger, or), or)
	var ee *ExecError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("execute: %v", err)
	}
	return or, ee
}

// callTrace: p1 and c1 in a call, p1 sends audio, the call ends and p1
// fetches the recording.
func callTrace() *Trace {
	return seq(nil, "", []User{p1, c1},
		Op{Op: OpBook, User: "p1", With: "c1", Consult: "k1"},
		Op{Op: OpJoin, User: "p1", Consult: "k1"}, Op{Op: OpJoin, User: "c1", Consult: "k1"},
		Op{Op: OpSendAudio, User: "p1", Consult: "k1", N: 10},
		Op{Op: OpEnd, User: "p1", Consult: "k1"},
		Op{Op: OpFetch, User: "p1", Consult: "k1"})
}

// TestSessionJudgesPartialTracks: a trace's fetch is the client's, as a
// run's is: a track whose bytes break is judged up to the break and counted
// as not judged (the trace used to drop it unjudged), and the fetch op fails.
func TestSessionJudgesPartialTracks(t *testing.T) {
	or, ee := execOn(t, callTrace(), func(t driver.Target) driver.Target { return breakingTarget{t} })
	if ee == nil || len(ee.Ops) != 1 || ee.Ops[0].Op.Op != OpFetch || !errors.Is(ee, client.ErrUnreadableTrack) {
		t.Fatalf("op errors %v, want the fetch to fail on an unreadable track", ee)
	}
	if vs := or.Violations(); len(vs) != 0 {
		t.Errorf("the correct clinic's frames behind a broken container: violations %+v", vs)
	}
	st := or.Stats()
	if st.FramesChecked == 0 {
		t.Errorf("frames before the break not judged: %+v", st)
	}
	j := st.Judgement[oracle.ReplayContentOwnership]
	if j.NotJudged == 0 || j.Reasons["unreadable track"] == 0 {
		t.Errorf("content judgement %+v, want the broken tracks not judged (unreadable track)", j)
	}
	if j := st.Judgement[oracle.RecordingDurability]; j.NotJudged != 1 {
		t.Errorf("durability judgement %+v, want p1's failed look not judged", j)
	}
}

// TestSessionCountsLiveJudgement: the trace counts live-media-isolation per
// participant that connected, as a run does (it used to count nothing).
func TestSessionCountsLiveJudgement(t *testing.T) {
	tr := mediaTrace()
	tr.Ops = tr.Ops[:len(tr.Ops)-1] // no probe: no third user's judgement
	or, ee := execOn(t, tr, nil)
	if ee != nil {
		t.Fatalf("op errors: %v", ee)
	}
	if vs := or.Violations(); len(vs) != 0 {
		t.Errorf("violations on the correct clinic: %+v", vs)
	}
	st := or.Stats()
	j := st.Judgement[oracle.LiveMediaIsolation]
	if j.Judged+j.NotJudged != 2 || j.Judged == 0 {
		t.Errorf("live judgement %+v, want both participants counted, at least one judged", j)
	}
	if st.DurabilityChecked != 2 || st.LiveFramesChecked == 0 {
		t.Errorf("stats %+v: want both looks judged and live frames checked", st)
	}
}
