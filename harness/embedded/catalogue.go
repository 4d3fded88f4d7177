package embedded

import "github.com/telechaos/telechaos/clinic/bugs"

// BugIDs lists the embedded clinic's catalogue of bugs (the IDs a scenario's
// bugs: field and --bug take, each with a bug-<ID> scenario) in the
// catalogue's stable order. The slice is the caller's.
func BugIDs() []string {
	out := make([]string, len(bugs.All))
	for i, id := range bugs.All {
		out[i] = string(id)
	}
	return out
}
