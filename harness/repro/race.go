package repro

// Race amplification. A minimised trace of a race (switches of different
// calls released together as a concurrent group) shows the violation only
// when the target happens to interleave the requests inside its window: with
// the reference clinic's switch-race, two switches released together overlap
// about one time in ten. A QA engineer needs a trace that reproduces on
// demand, so such a trace gets rounds: the group's users rejoin their calls
// (a new PeerConnection is a new participant to the target, so the next switch
// is a first switch again), switch together again and send video, before the
// calls end. Each round is another independent chance for the race, with the
// same two calls and the same users; the number of rounds doubles until the
// trace replays every time in a row of verification runs.

import (
	"context"
	"slices"
	"time"

	"github.com/telechaos/telechaos/harness/trace"
)

// Amplification bounds.
const (
	// RaceRoundsSearch is the rounds a race trace gets while it is checked
	// and minimised (a candidate then shows the race most of the times);
	// the written trace gets raceRoundsStart, doubled up to raceRoundsMax
	// until it replays raceVerifyRuns times in a row. The reference clinic's
	// switch-race shows in about one round in ten.
	RaceRoundsSearch = 16
	raceRoundsStart  = 64
	raceRoundsMax    = 128
	// raceVerifyRuns: an amplified trace is kept once it reproduces in this
	// many executions in a row.
	raceVerifyRuns = 5
	// raceAmplifyBudget bounds the amplification of one trace (an execution
	// takes about 100 ms a round).
	raceAmplifyBudget = 120 * time.Second
)

// raceGroup returns the members (op indexes) of tr's first concurrent group
// of switches on at least two consultations, and false when there is none.
func raceGroup(tr *trace.Trace) ([]int, bool) {
	groups := map[int][]int{}
	var order []int
	for i, op := range tr.Ops {
		if op.Group == nil || op.Op != trace.OpSwitch {
			continue
		}
		g := *op.Group
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	for _, g := range order {
		consults := map[string]bool{}
		for _, i := range groups[g] {
			consults[tr.Ops[i].Consult] = true
		}
		if len(consults) >= 2 {
			return groups[g], true
		}
	}
	return nil, false
}

// amplifyRace returns a copy of tr with rounds extra rounds of its first
// switch group inserted before the first op after the group that ends one of
// the group's calls: each round is a join by every member, the members'
// switches as one concurrent group, then a send_video by every member. ok is false when tr has no such group or no end after it.
func amplifyRace(tr *trace.Trace, rounds int) (*trace.Trace, bool) {
	members, ok := raceGroup(tr)
	if !ok || rounds < 1 {
		return nil, false
	}
	last := slices.Max(members)
	consults := map[string]bool{}
	for _, i := range members {
		consults[tr.Ops[i].Consult] = true
	}
	pos := -1
	for i := last + 1; i < len(tr.Ops); i++ {
		if op := tr.Ops[i]; op.Op == trace.OpEnd && consults[op.Consult] {
			pos = i
			break
		}
	}
	if pos < 0 {
		return nil, false
	}
	// New groups take ids no existing group has.
	maxGroup := 0
	for _, op := range tr.Ops {
		if op.Group != nil {
			maxGroup = max(maxGroup, *op.Group)
		}
	}
	src := tr.Clone()
	out := src.Clone()
	out.Ops = slices.Clone(src.Ops[:pos])

	// The inserted ops start once everything before pos has.
	prev := frontier(out.Ops)
	add := func(op trace.Op) int {
		op.After = slices.Clone(prev)
		out.Ops = append(out.Ops, op)
		return len(out.Ops) - 1
	}
	// Each step's ops run at once: the joins, the switches (the race) as a
	// concurrent group, the sends; a step waits for the one before.
	g := maxGroup
	step := func(k trace.Kind, n int, group bool) {
		var ids []int
		if group {
			g++
		}
		for _, m := range members {
			op := trace.Op{Op: k, User: src.Ops[m].User, Consult: src.Ops[m].Consult, N: n}
			if group {
				gg := g
				op.Group = &gg
			}
			ids = append(ids, add(op))
		}
		prev = ids
	}
	for range rounds {
		step(trace.OpJoin, 0, false)
		step(trace.OpSwitch, 0, true)
		step(trace.OpSendVideo, reproVideoFrames, false)
	}
	shift := len(out.Ops) - pos
	tail := prev
	for i := pos; i < len(src.Ops); i++ {
		op := src.Ops[i]
		var after []int
		for _, a := range op.After {
			if a >= pos {
				a += shift
			}
			after = append(after, a)
		}
		if i == pos {
			after = append(after, tail...)
		}
		slices.Sort(after)
		op.After = slices.Compact(after)
		out.Ops = append(out.Ops, op)
	}
	// Which call a race misfiles into depends on which switch the target
	// served last: every member looks at its list and its own recording at
	// the end, so either way a participant of the victim call sees it.
	ended, fetched, listed := map[string]bool{}, map[[2]string]bool{}, map[string]bool{}
	for _, op := range out.Ops {
		switch op.Op {
		case trace.OpEnd:
			ended[op.Consult] = true
		case trace.OpFetch:
			fetched[[2]string{op.User, op.Consult}] = true
		}
	}
	prev = frontier(out.Ops)
	for _, m := range members {
		u, k := src.Ops[m].User, src.Ops[m].Consult
		if !listed[u] {
			listed[u] = true
			prev = []int{add(trace.Op{Op: trace.OpList, User: u})}
		}
		if ended[k] && !fetched[[2]string{u, k}] {
			fetched[[2]string{u, k}] = true
			prev = []int{add(trace.Op{Op: trace.OpFetch, User: u, Consult: k})}
		}
	}
	return out, true
}

// frontier returns the ops no other op waits for: waiting for them is waiting
// for every op.
func frontier(ops []trace.Op) []int {
	waited := make([]bool, len(ops))
	for _, op := range ops {
		for _, a := range op.After {
			waited[a] = true
		}
	}
	var out []int
	for i := range ops {
		if !waited[i] {
			out = append(out, i)
		}
	}
	return out
}

// amplifyUntilReliable tries amplifyRace with from rounds, then twice as
// many, up to raceRoundsMax, and returns the first amplified trace
// that reproduced raceVerifyRuns times in a row (ok), or else the one that
// reproduced most often. run executes a trace once and reports whether the
// violation showed.
func amplifyUntilReliable(ctx context.Context, tr *trace.Trace, from int, run func(*trace.Trace) bool) (best *trace.Trace, rounds, verified int, ok bool) {
	for n := from; n <= raceRoundsMax && ctx.Err() == nil; n *= 2 {
		amp, can := amplifyRace(tr, n)
		if !can || amp.Validate() != nil {
			return best, rounds, verified, false
		}
		got := 0
		for range raceVerifyRuns {
			if !run(amp) {
				break
			}
			got++
		}
		if got > verified || best == nil {
			best, rounds, verified = amp, n, got
		}
		if got == raceVerifyRuns {
			return best, rounds, verified, true
		}
	}
	return best, rounds, verified, false
}
