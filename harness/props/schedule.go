package props

import (
	"fmt"
	"time"

	"pgregory.net/rapid"

	"github.com/telechaos/telechaos/harness/trace"
	"github.com/telechaos/telechaos/models"
)

// DrawSchedule draws a concurrent schedule on the test goroutine (rapid's
// Draw is not goroutine-safe): 2-3 consultations, each with its own patient
// and a clinician (2-6 users), every participant joining, maybe switching
// and sending frames, one of them ending, then everyone looking. For each
// phase rapid decides whether the consultations' ops run one after the other
// or start together (a concurrent_group); shrinking turns groups back into
// sequences and drops what the failure does not need.
func DrawSchedule(t *rapid.T, bugs []string, bugSeed uint64) *trace.Trace {
	tr := &trace.Trace{Header: trace.Header{
		Version: trace.Version, Scenario: "props-concurrent", Target: trace.TargetEmbedded,
		Bugs: bugs, BugSeed: bugSeed, Created: time.Now().UTC().Truncate(time.Second),
	}}
	nCons := rapid.IntRange(2, 3).Draw(t, "consultations")
	sharedClinician := rapid.Bool().Draw(t, "shared_clinician")
	type call struct{ k, p, c string }
	var calls []call
	for i := 1; i <= nCons; i++ {
		p := fmt.Sprintf("p%d", i)
		tr.Users = append(tr.Users, trace.User{Name: p, Role: models.Patient})
		c := "c1"
		if !sharedClinician || i == 1 {
			c = fmt.Sprintf("c%d", i)
			tr.Users = append(tr.Users, trace.User{Name: c, Role: models.Clinician})
		}
		calls = append(calls, call{k: fmt.Sprintf("k%d", i), p: p, c: c})
	}
	var books, joins, switches, sends, ends, looks []trace.Op
	for _, c := range calls {
		books = append(books, trace.Op{Op: trace.OpBook, User: c.p, With: c.c, Consult: c.k})
		joins = append(joins, trace.Op{Op: trace.OpJoin, User: c.p, Consult: c.k}, trace.Op{Op: trace.OpJoin, User: c.c, Consult: c.k})
	}
	video := rapid.Bool().Draw(t, "video")
	n := rapid.IntRange(1, 3).Draw(t, "frames")
	for _, c := range calls {
		if video {
			switches = append(switches, trace.Op{Op: trace.OpSwitch, User: c.p, Consult: c.k}, trace.Op{Op: trace.OpSwitch, User: c.c, Consult: c.k})
			sends = append(sends, trace.Op{Op: trace.OpSendVideo, User: c.p, Consult: c.k, N: n}, trace.Op{Op: trace.OpSendVideo, User: c.c, Consult: c.k, N: n})
		}
		sends = append(sends, trace.Op{Op: trace.OpSendAudio, User: c.p, Consult: c.k, N: n})
		ends = append(ends, trace.Op{Op: trace.OpEnd, User: c.p, Consult: c.k})
		looks = append(looks, trace.Op{Op: trace.OpList, User: c.p}, trace.Op{Op: trace.OpList, User: c.c}, trace.Op{Op: trace.OpFetch, User: c.p, Consult: c.k})
	}
	var prev []int
	for _, ph := range []struct {
		name string
		ops  []trace.Op
	}{{"book", books}, {"join", joins}, {"switch", switches}, {"send", sends}, {"end", ends}, {"look", looks}} {
		prev = addPhase(t, tr, ph.name, ph.ops, prev)
	}
	return tr
}

// addPhase appends one phase's ops after the ops in prev: as one concurrent
// group (released together) or as a chain, as rapid draws. It returns what
// the next phase waits for.
func addPhase(t *rapid.T, tr *trace.Trace, name string, ops []trace.Op, prev []int) []int {
	if len(ops) == 0 {
		return prev
	}
	conc := len(ops) > 1 && rapid.Bool().Draw(t, "concurrent_"+name)
	start := len(tr.Ops)
	for i, op := range ops {
		if conc || i == 0 {
			op.After = append([]int(nil), prev...)
		} else {
			op.After = []int{len(tr.Ops) - 1}
		}
		if conc {
			g := start // a group id unique in the trace
			op.Group = &g
		}
		tr.Ops = append(tr.Ops, op)
	}
	if !conc {
		return []int{len(tr.Ops) - 1}
	}
	out := make([]int, 0, len(ops))
	for j := start; j < len(tr.Ops); j++ {
		out = append(out, j)
	}
	return out
}

// ConcurrentProperty draws a schedule, executes it (trace.RunOnce: a fresh
// embedded clinic, the ops of a group released together) and fails with the
// first violation's invariant. rec keeps each check's schedule.
func ConcurrentProperty(cfg Config, rec *Recorder) func(*rapid.T) {
	return func(t *rapid.T) {
		tr := DrawSchedule(t, cfg.Bugs, cfg.BugSeed)
		if err := tr.Validate(); err != nil {
			t.Fatalf("drawn schedule invalid: %v", err)
		}
		run := &Run{Trace: tr}
		defer rec.set(run)
		for _, op := range tr.Ops {
			run.Actions = append(run.Actions, op.String())
		}
		// A race shows only sometimes: a schedule fails if any of a few
		// executions shows a violation, so that rapid's reproduction and
		// shrinking see a failing schedule fail again.
		var out trace.Outcome
		for range max(cfg.Tries, 1) {
			var err error
			out, err = trace.RunOnce(t.Context(), tr, trace.Options{Target: cfg.Target, Media: cfg.Media, DataDir: cfg.DataDir})
			if err != nil {
				t.Fatalf("execute: %v", err)
			}
			if len(out.Violations) > 0 {
				break
			}
		}
		if out.OpErrors != nil {
			for _, oe := range out.OpErrors.Ops {
				t.Logf("op error: %v", oe)
			}
		}
		if len(out.Violations) > 0 {
			v := out.Violations[0]
			run.Failure = &Failure{Invariant: v.Invariant, Detail: v.Detail}
			tr.Expect = v.Invariant
			t.Logf("%s: %s", v.Invariant, v.Detail)
			t.Fatalf("%s", v.Invariant)
		}
	}
}
