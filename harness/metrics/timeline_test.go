package metrics

import (
	"testing"

	"github.com/telechaos/telechaos/reports"
)

// A long run keeps its whole shape: the first and the last sample, and at
// most MaxSamples in between.
func TestTimelineThinsButKeepsBothEnds(t *testing.T) {
	var tl Timeline
	n := 3*MaxSamples + 7
	for i := range n {
		tl.Add(reports.Sample{T: float64(i)})
	}
	s := tl.Samples()
	if len(s) > MaxSamples || len(s) < MaxSamples/4 {
		t.Fatalf("%d samples kept of %d, want at most %d and not too few", len(s), n, MaxSamples)
	}
	if s[0].T != 0 || s[len(s)-1].T != float64(n-1) {
		t.Errorf("ends %v..%v, want 0..%d", s[0].T, s[len(s)-1].T, n-1)
	}
	for i := 1; i < len(s); i++ {
		if s[i].T <= s[i-1].T {
			t.Fatalf("samples out of order at %d: %v after %v", i, s[i].T, s[i-1].T)
		}
	}
}
