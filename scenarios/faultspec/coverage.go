package faultspec

// Coverage fault labels beyond fault names.
const (
	// NoFault labels hits made while no fault was active.
	NoFault = "none"
	// AnyFault in a requirement matches hits made under at least one fault
	// (counted once per hit, however many faults were active).
	AnyFault = "any"
)

// The risky paths the runner counts (harness/chaos.Coverage).
const (
	PathSwitch   = "switch"   // a switch to video answered
	PathEnd      = "end"      // an end answered (the recording finalised)
	PathJoin     = "join"     // a join answered
	PathRejoin   = "rejoin"   // a join after a drop or restart (segment > 1)
	PathFetch    = "fetch"    // a replay's media fetched
	PathAbandon  = "abandon"  // a call abandoned without end
	PathRetry    = "retry"    // a request retried
	PathRecovery = "recovery" // a call that survived a restart (ended after it)
)

// Paths lists the paths the runner counts: a scenario's coverage requirement
// on any other path could never be met.
func Paths() []string {
	return []string{PathSwitch, PathEnd, PathJoin, PathRejoin, PathFetch, PathAbandon, PathRetry, PathRecovery}
}

// Requirement is a minimum count for (Path, Fault).
type Requirement struct {
	Path  string `yaml:"path" json:"path"`
	Fault string `yaml:"fault" json:"fault"` // a fault name, NoFault or AnyFault
	Min   int64  `yaml:"min" json:"min"`
}

// Requirer takes coverage minimums (harness/chaos.Coverage does).
type Requirer interface {
	Require(path, fault string, min int64)
}

// ApplyCoverage adds the profile's coverage requirements to c.
func (p Profile) ApplyCoverage(c Requirer) {
	for _, r := range p.Coverage {
		c.Require(r.Path, r.Fault, r.Min)
	}
}
