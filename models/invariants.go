package models

// Invariant ids: stable, used in metrics, reports, scenario files and exit
// codes.
const (
	ReplayListOwnership    = "replay-list-ownership"
	ReplayContentOwnership = "replay-content-ownership"
	ReplayAccessControl    = "replay-access-control"
	LiveMediaIsolation     = "live-media-isolation"
	RecordingDurability    = "recording-durability"
)

// Invariant is one property the oracle judges every run by.
type Invariant struct {
	ID        string
	Statement string
	// Unit is what one judgement of the invariant is about (a list answer, a
	// fetched track...): the denominator of its judged share.
	Unit string
}

// Invariants is the one table of invariants, in report order.
var Invariants = []Invariant{
	{ReplayListOwnership, "everything offered in a user's replay list belongs to a consultation they took part in", "replay list answer"},
	{ReplayContentOwnership, "every frame of a fetched replay carries the watermark of that consultation and one of its participants", "fetched track"},
	{ReplayAccessControl, "reading or writing another user's consultation or recording by a real id is denied, with no bytes, whatever the route, credential or identity override", "probe"},
	{LiveMediaIsolation, "during a call a user receives frames only from the other participant", "participant in a call"},
	{RecordingDurability, "every acknowledged recording is listed for both participants and holds the acknowledged frames", "participant's look at a recording"},
}

// InvariantIDs lists the ids of Invariants, in report order.
func InvariantIDs() []string {
	ids := make([]string, len(Invariants))
	for i, inv := range Invariants {
		ids[i] = inv.ID
	}
	return ids
}

// LookupInvariant returns the invariant with id, or false.
func LookupInvariant(id string) (Invariant, bool) {
	for _, inv := range Invariants {
		if inv.ID == id {
			return inv, true
		}
	}
	return Invariant{}, false
}
