package gate

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/scenarios"
)

// TestMeasureContainerFault measures what one container fault does to a
// small release gate (not part of the suite): GATE_MEASURE=container-kill
// (or -stop, -pause, -disconnect, or none for the baseline), GATE_LONG=1 for
// calls of 6-9 s that straddle the outage, GATE_DEBUG=1 for the runner's
// debug log (every failed step).
func TestMeasureContainerFault(t *testing.T) {
	kind := os.Getenv("GATE_MEASURE")
	if kind == "" {
		t.Skip("set GATE_MEASURE=container-kill|container-stop|container-pause|container-disconnect|none")
	}
	img := testImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cfg := Config{
		Image: img,
		Edit: func(sc *scenarios.Scenario) {
			small(sc)
			sc.Thresholds = nil
			if os.Getenv("GATE_LONG") != "" {
				sc.Behaviour.CallMin.Duration, sc.Behaviour.CallMax.Duration = 6*time.Second, 9*time.Second
			}
		},
	}
	if kind != "none" {
		cfg.Faults = []Fault{{Kind: kind, Trigger: chaos.Trigger{At: chaos.D(6 * time.Second), For: chaos.D(2 * time.Second)}}}
	}
	if os.Getenv("GATE_DEBUG") != "" {
		cfg.RunConfig = harness.RunConfig{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	}
	start := time.Now()
	res, err := Run(ctx, t, cfg)
	if res == nil {
		t.Fatal(err)
	}
	t.Logf("run %v, err %v", time.Since(start).Round(time.Millisecond), err)
	describe(t, res)
}
