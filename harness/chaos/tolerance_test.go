package chaos

import (
	"math"
	"testing"
	"time"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

func TestLossTolerance(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	win := func(start, end float64, params map[string]string) Window {
		w := Window{Fault: "f", Params: params, Start: at(start)}
		if end >= 0 {
			w.End = at(end)
		}
		return w
	}
	loss := func(p string) map[string]string { return map[string]string{ParamLoss: p, ParamDirection: DirBoth} }
	crash := map[string]string{ParamLoss: "1", ParamTail: "500ms", ParamDirection: DirBoth}
	cases := []struct {
		name    string
		windows []Window
		s, e    float64 // call start and end (seconds)
		want    float64
	}{
		{"no faults", nil, 0, 10, 0},
		{"http faults carry no loss", []Window{win(0, 10, map[string]string{ParamKind: faultspec.KindHTTPLatency})}, 0, 10, 0},
		{"loss over the whole call", []Window{win(0, 10, loss("0.2"))}, 0, 10, 0.2},
		{"loss over half the call", []Window{win(5, 20, loss("0.2"))}, 0, 10, 0.1},
		{"loss before the call", []Window{win(0, 5, loss("0.2"))}, 6, 10, 0},
		{"loss after the call", []Window{win(11, 15, loss("0.2"))}, 0, 10, 0},
		{"open window counts to the call's end", []Window{win(8, -1, loss("0.5"))}, 0, 10, 0.1},
		{"down-only loss costs no recording", []Window{win(0, 10, map[string]string{ParamLoss: "0.5", ParamDirection: DirDown})}, 0, 10, 0},
		{"up loss", []Window{win(0, 10, map[string]string{ParamLoss: "0.5", ParamDirection: DirUp})}, 0, 10, 0.5},
		{"crash mid-call: outage plus in-flight tail", []Window{win(4, 5, crash)}, 0, 10, 0.15},
		{"crash just before the call: its tail reaches in", []Window{win(0, 1, crash)}, 1.2, 11.2, 0.03},
		{"crash at the end: tail and in-flight both", []Window{win(9, 9.5, crash)}, 0, 10, 0.1 + 0.05},
		{"delay holding the last frames", []Window{win(0, 10, map[string]string{ParamTail: "200ms", ParamDirection: DirBoth})}, 0, 10, 0.02},
		{"delay healed long before the end", []Window{win(0, 2, map[string]string{ParamTail: "200ms"})}, 0, 10, 0},
		{"two windows add up", []Window{win(0, 5, loss("0.2")), win(5, 10, loss("0.4"))}, 0, 10, 0.3},
		{"capped at 1", []Window{win(0, 10, loss("1")), win(0, 10, crash)}, 0, 10, 1},
		{"zero-length call", []Window{win(0, 10, loss("1"))}, 5, 5, 0},
		{"garbage params ignored", []Window{win(0, 10, map[string]string{ParamLoss: "lots", ParamTail: "forever"})}, 0, 10, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := LossTolerance(c.windows, at(c.s), at(c.e))
			if math.Abs(got-c.want) > 1e-9 {
				t.Errorf("LossTolerance = %v, want %v", got, c.want)
			}
		})
	}
}

// TestAllowedMissing: the count bound covers the binomial spread of a
// partial loss (checked against simulated loss) and is 0 without faults.
func TestAllowedMissing(t *testing.T) {
	t0 := time.Now()
	call := []time.Time{t0, t0.Add(10 * time.Second)}
	if n := AllowedMissing(nil, call[0], call[1], 500); n != 0 {
		t.Errorf("no faults: %d allowed", n)
	}
	ws := []Window{{Fault: "media-loss", Params: map[string]string{ParamLoss: "0.05"}, Start: t0.Add(4 * time.Second), End: t0.Add(5 * time.Second)}}
	allowed := AllowedMissing(ws, call[0], call[1], 500) // 50 frames under 5% loss
	if allowed < 3 || allowed > 20 {
		t.Errorf("allowed %d for 50 frames at 5%%, want a few", allowed)
	}
	// Simulate: how often does 5% loss over 50 frames exceed the bound?
	over := 0
	seed := uint64(1)
	for trial := 0; trial < 10000; trial++ {
		lost := 0
		for i := 0; i < 50; i++ {
			seed = seed*6364136223846793005 + 1442695040888963407
			if float64(seed>>11)/(1<<53) < 0.05 {
				lost++
			}
		}
		if lost > allowed {
			over++
		}
	}
	if over > 1 {
		t.Errorf("5%% loss over 50 frames exceeded the bound of %d in %d of 10000 trials", allowed, over)
	}
	full := []Window{{Params: map[string]string{ParamLoss: "1"}, Start: t0, End: t0.Add(time.Hour)}}
	if n := AllowedMissing(full, call[0], call[1], 500); n != 500 {
		t.Errorf("total outage allows %d of 500", n)
	}
}

func TestBaselineAllowed(t *testing.T) {
	for _, c := range []struct{ sent, want int }{{0, 0}, {-1, 0}, {1, 4}, {100, 4}, {101, 5}, {1000, 13}} {
		if got := BaselineAllowed(c.sent); got != c.want {
			t.Errorf("BaselineAllowed(%d) = %d, want %d", c.sent, got, c.want)
		}
	}
}
