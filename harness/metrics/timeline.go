package metrics

import (
	"sync"

	"github.com/telechaos/telechaos/reports"
)

// MaxSamples bounds a Timeline; beyond it every other sample is dropped, so
// a long run keeps its whole shape at a coarser step.
const MaxSamples = 2000

// Timeline is a run's samples over time (the HTML report's plots). The zero
// value is ready to use; safe for concurrent use.
type Timeline struct {
	mu      sync.Mutex
	samples []reports.Sample
}

// Add appends a sample, thinning the timeline once it is over MaxSamples.
func (t *Timeline) Add(s reports.Sample) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.samples = append(t.samples, s)
	if len(t.samples) > MaxSamples {
		kept := t.samples[:0]
		for i, x := range t.samples {
			if i%2 == 0 || i == len(t.samples)-1 {
				kept = append(kept, x)
			}
		}
		t.samples = kept
	}
}

// Samples returns a copy of the samples, oldest first.
func (t *Timeline) Samples() []reports.Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]reports.Sample{}, t.samples...)
}
