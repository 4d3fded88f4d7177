package trace

import (
	"context"
	"slices"
	"testing"
)

func TestOpUnitsKeepSendsWithTheirJoinOrSwitch(t *testing.T) {
	tr := &Trace{Header: Header{Version: Version, Target: TargetEmbedded}, Users: []User{{"p1", "patient"}, {"c1", "clinician"}}, Ops: []Op{
		{Op: OpBook, User: "p1", With: "c1", Consult: "k1"}, // 0
		{Op: OpJoin, User: "p1", Consult: "k1"},             // 1
		{Op: OpSendAudio, User: "p1", Consult: "k1", N: 5},  // 2
		{Op: OpSwitch, User: "p1", Consult: "k1"},           // 3
		{Op: OpSendVideo, User: "p1", Consult: "k1", N: 5},  // 4
		{Op: OpSendAudio, User: "c1", Consult: "k1", N: 5},  // 5: c1 never joined
		{Op: OpSendAudio, User: "p1", Consult: "k1", N: 5},  // 6
		{Op: OpEnd, User: "p1", Consult: "k1"},              // 7
	}}
	got := opUnits(tr, true)
	want := [][]int{{0}, {1, 2}, {3, 4, 6}, {5}, {7}}
	if !slices.EqualFunc(got, want, slices.Equal[[]int]) {
		t.Errorf("units %v, want %v", got, want)
	}
	if got := opUnits(tr, false); !slices.EqualFunc(got, [][]int{{2}, {4}, {5}, {6}}, slices.Equal[[]int]) {
		t.Errorf("send units %v", got)
	}
}

// Minimise with a stub check: the violation needs p1's join and switch (and
// the book they need); the sends go in the last pass, everything else before.
func TestMinimiseGroupsSends(t *testing.T) {
	tr := &Trace{Header: Header{Version: Version, Target: TargetEmbedded, Expect: "x"}, Users: []User{{"p1", "patient"}, {"c1", "clinician"}, {"p2", "patient"}}, Ops: []Op{
		{Op: OpBook, User: "p1", With: "c1", Consult: "k1"},
		{Op: OpJoin, User: "p1", Consult: "k1"},
		{Op: OpSendAudio, User: "p1", Consult: "k1", N: 5},
		{Op: OpSwitch, User: "p1", Consult: "k1"},
		{Op: OpSendVideo, User: "p1", Consult: "k1", N: 5},
		{Op: OpBook, User: "p2", With: "c1", Consult: "k2"},
		{Op: OpList, User: "p2"},
		{Op: OpEnd, User: "p1", Consult: "k1"},
	}}
	fails := func(_ context.Context, c *Trace) (bool, error) {
		has := func(k Kind) bool { return slices.ContainsFunc(c.Ops, func(o Op) bool { return o.Op == k }) }
		return has(OpJoin) && has(OpSwitch), nil
	}
	got, st, err := Minimise(context.Background(), tr, MinOptions{Fails: fails})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []Kind
	for _, o := range got.Ops {
		kinds = append(kinds, o.Op)
	}
	if !slices.Equal(kinds, []Kind{OpBook, OpJoin, OpSwitch}) || len(got.Users) != 2 {
		t.Errorf("minimised to %v with %d users (%+v)", kinds, len(got.Users), st)
	}
}
