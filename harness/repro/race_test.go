package repro

import (
	"github.com/telechaos/telechaos/harness/trace"
	"slices"
	"strings"
	"testing"
)

const raceBase = `{"telechaos_trace":1,"target":"embedded","bugs":["switch-race:1"],"bug_seed":1,"expect":"replay-content-ownership"}
{"user":"p1","role":"patient"}
{"user":"c1","role":"clinician"}
{"user":"p2","role":"patient"}
{"user":"c2","role":"clinician"}
{"op":"book","user":"p1","with":"c1","consult":"k1"}
{"op":"book","user":"p2","with":"c2","consult":"k2","after":[0]}
{"op":"join","user":"p1","consult":"k1","after":[1]}
{"op":"join","user":"p2","consult":"k2","after":[2]}
{"op":"switch","user":"p1","consult":"k1","after":[3],"concurrent_group":1}
{"op":"switch","user":"p2","consult":"k2","after":[3],"concurrent_group":1}
{"op":"send_video","user":"p1","consult":"k1","n":10,"after":[4,5]}
{"op":"send_video","user":"p2","consult":"k2","n":10,"after":[6]}
{"op":"end","user":"p1","consult":"k1","after":[7]}
{"op":"end","user":"p2","consult":"k2","after":[8]}
{"op":"fetch","user":"p1","consult":"k1","after":[9]}
`

func TestAmplifyRaceRepeatsTheGroupBeforeTheEnds(t *testing.T) {
	base, err := trace.Parse(strings.NewReader(raceBase))
	if err != nil {
		t.Fatal(err)
	}
	amp, ok := amplifyRace(base, 3)
	if !ok {
		t.Fatal("no race group found")
	}
	if err := amp.Validate(); err != nil {
		t.Fatalf("amplified trace is invalid: %v", err)
	}
	// 3 rounds of 2 joins, 2 switches, 2 send_video; then a list by each
	// member and the fetch p2 k2 the base lacks.
	if got, want := len(amp.Ops), len(base.Ops)+3*6+3; got != want {
		t.Fatalf("ops = %d, want %d", got, want)
	}
	if len(base.Ops) != 11 {
		t.Fatalf("the base trace was modified: %d ops", len(base.Ops))
	}
	// The rounds sit between the first group's send_video ops and the ends.
	var kinds []string
	groups := map[int]int{}
	for _, op := range amp.Ops[8:26] {
		kinds = append(kinds, string(op.Op))
		if op.Group != nil {
			groups[*op.Group]++
		}
	}
	round := "join join switch switch send_video send_video"
	if got, want := strings.Join(kinds, " "), strings.Repeat(round+" ", 3); got+" " != want {
		t.Fatalf("inserted ops = %q, want %q", got, strings.TrimSpace(want))
	}
	if len(groups) != 3 {
		t.Fatalf("inserted groups = %v, want 3 new groups of 2", groups)
	}
	for g, n := range groups {
		if g == 1 || n != 2 {
			t.Fatalf("group %d has %d switches (groups %v): want new ids with 2 each", g, n, groups)
		}
	}
	// The first end waits for the last inserted op; the later ops keep
	// their order (indexes shifted).
	end := amp.Ops[26]
	if end.Op != trace.OpEnd || !slices.Contains(end.After, 25) {
		t.Fatalf("op 26 = %v after %v: want the first end after op 25", end, end.After)
	}
	if f := amp.Ops[28]; f.Op != trace.OpFetch || !slices.Contains(f.After, 27) {
		t.Fatalf("op 28 = %v after %v: want fetch after op 27", f, f.After)
	}
	var tail []string
	for i, op := range amp.Ops[29:] {
		tail = append(tail, op.String())
		if !slices.Contains(op.After, 28+i) {
			t.Fatalf("tail op %v waits for %v, want op %d", op, op.After, 28+i)
		}
	}
	if got, want := strings.Join(tail, "; "), "list p1; list p2; fetch p2 k2"; got != want {
		t.Fatalf("tail = %q, want %q", got, want)
	}
	// A trace without a group of switches on two calls is left alone.
	seq, _ := trace.Parse(strings.NewReader(strings.ReplaceAll(raceBase, `,"concurrent_group":1`, "")))
	if _, ok := amplifyRace(seq, 3); ok {
		t.Fatal("amplified a trace without a concurrent group")
	}
}
