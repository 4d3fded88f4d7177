package load

import (
	"strings"
	"testing"
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
