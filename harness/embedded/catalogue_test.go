package embedded

import (
	"slices"
	"testing"

	"github.com/telechaos/telechaos/clinic/bugs"
)

// BugIDs is the clinic's catalogue, in its order, and a copy.
func TestBugIDs(t *testing.T) {
	got := BugIDs()
	if len(got) != len(bugs.All) || len(got) == 0 {
		t.Fatalf("BugIDs() = %v, want the %d of bugs.All", got, len(bugs.All))
	}
	for i, id := range bugs.All {
		if got[i] != string(id) {
			t.Errorf("BugIDs()[%d] = %q, want %q", i, got[i], id)
		}
	}
	got[0] = "mutated"
	if slices.Contains(BugIDs(), "mutated") {
		t.Error("BugIDs shares its slice with callers")
	}
}
