package harness

import (
	"strings"
	"testing"

	"telechaos/scenarios"
)

func TestPathAllowance(t *testing.T) {
	k := [2]string{"u1", "audio"}
	for _, tc := range []struct {
		name          string
		sent, live    int
		allowed, want int
	}{
		// A loaded machine lost 26 of 171 on the way: the recording that lacks
		// them has not lost what it was given (baseline 5 + 26).
		{"path loss explains", 171, 145, 17, 31},
		// Forwarded live yet missing from the recording: still judged by the
		// faults alone (lost-on-crash keeps its allowance).
		{"nothing lost on the path", 171, 171, 17, 17},
		// A path that delivered almost nothing is broken, not lossy: at most
		// a quarter of what was sent is explained.
		{"capped", 200, 0, 10, 3 + 2 + 50},
		// Judged against the acknowledgement only: unchanged.
		{"ack only", 100, 0, 100, 100},
	} {
		got, why := pathAllowance(tc.sent, map[[2]string]int{k: tc.live}, k, tc.allowed, "base")
		if got != tc.want {
			t.Errorf("%s: allowed %d, want %d (%s)", tc.name, got, tc.want, why)
		}
		if got > tc.allowed && !strings.Contains(why, "live path lost") {
			t.Errorf("%s: the widening is not explained: %q", tc.name, why)
		}
	}
	if got, _ := pathAllowance(100, nil, k, 7, ""); got != 7 {
		t.Errorf("without live counts the allowance changed: %d", got)
	}
}

// A threshold bound is read once, by the scenario: what validates is what
// the run applies (" 500ms" passed validation and was then refused).
func TestThresholdBoundsReadLikeTheScenario(t *testing.T) {
	for _, tc := range []struct {
		max  string
		want float64
	}{{" 500ms", 0.5}, {"2s", 2}, {"0.25", 0.25}} {
		m := tc.max
		th, err := parseThreshold(scenarios.Threshold{Metric: "latency.join", Max: &m})
		if err != nil || th.max == nil || *th.max != tc.want {
			t.Errorf("max %q: %v %v, want %v s", tc.max, th.max, err, tc.want)
		}
	}
}
