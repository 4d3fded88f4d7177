package chaos

import (
	"fmt"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// Coverage counts how often each risky path ran under each fault: the "did
// this really happen" check ("sometimes" assertions). Exported as
// telechaos_coverage_total{path,fault}. Safe for concurrent use.
type Coverage struct {
	mu     sync.Mutex
	counts map[[2]string]int64
	reqs   []faultspec.Requirement
	vec    *prometheus.CounterVec
}

// Shortfall is an unmet Requirement with the count reached.
type Shortfall struct {
	faultspec.Requirement
	Got int64 `json:"got"`
}

func (s Shortfall) String() string {
	return fmt.Sprintf("coverage %s under %s: %d, want >= %d", s.Path, s.Fault, s.Got, s.Min)
}

// NewCoverage registers telechaos_coverage_total with reg (nil: no metrics).
func NewCoverage(reg prometheus.Registerer) (*Coverage, error) {
	c := &Coverage{counts: map[[2]string]int64{}}
	if reg != nil {
		c.vec = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "telechaos_coverage_total",
			Help: "Times a risky path ran, by the fault active at the time (none: no fault).",
		}, []string{"path", "fault"})
		if err := reg.Register(c.vec); err != nil {
			return nil, fmt.Errorf("register coverage metrics: %w", err)
		}
	}
	return c, nil
}

// Hit counts one run of path (faultspec.Path*) under fault ("" means
// faultspec.NoFault). faultspec.AnyFault hits are kept in the snapshot but
// not exported, so sums over the metric stay honest.
func (c *Coverage) Hit(path, underFault string) {
	if underFault == "" {
		underFault = faultspec.NoFault
	}
	c.mu.Lock()
	c.counts[[2]string{path, underFault}]++
	c.mu.Unlock()
	if c.vec != nil && underFault != faultspec.AnyFault {
		c.vec.WithLabelValues(path, underFault).Inc()
	}
}

// HitUnder counts one run of path under each of the active faults (e.g.
// Recorder.Active()), once under AnyFault if there is any, or under NoFault.
func (c *Coverage) HitUnder(path string, active []string) {
	if len(active) == 0 {
		c.Hit(path, faultspec.NoFault)
		return
	}
	for _, f := range active {
		c.Hit(path, f)
	}
	c.Hit(path, faultspec.AnyFault)
}

// Require adds a minimum; Check reports it if unmet. min <= 0 is ignored.
func (c *Coverage) Require(path, fault string, min int64) {
	if min <= 0 {
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, faultspec.Requirement{Path: path, Fault: fault, Min: min})
	c.mu.Unlock()
}

// Requirements returns the minimums added so far.
func (c *Coverage) Requirements() []faultspec.Requirement {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]faultspec.Requirement(nil), c.reqs...)
}

// Check returns the unmet requirements, in the order they were added. A
// non-empty result fails the run with exit code 4.
func (c *Coverage) Check() []Shortfall {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Shortfall
	for _, r := range c.reqs {
		if got := c.counts[[2]string{r.Path, r.Fault}]; got < r.Min {
			out = append(out, Shortfall{Requirement: r, Got: got})
		}
	}
	return out
}

// Snapshot returns path -> fault -> count, for the report.
func (c *Coverage) Snapshot() map[string]map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]map[string]int64{}
	for k, n := range c.counts {
		m := out[k[0]]
		if m == nil {
			m = map[string]int64{}
			out[k[0]] = m
		}
		m[k[1]] = n
	}
	return out
}

// Paths lists the paths hit so far, sorted.
func (c *Coverage) Paths() []string {
	snap := c.Snapshot()
	out := make([]string, 0, len(snap))
	for p := range snap {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
