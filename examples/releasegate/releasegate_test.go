// Package releasegate is the release gate a team copies into its own
// repository: build your service's image in the pipeline, point
// RELEASE_IMAGE at it, and `go test ./releasegate/` stands it up in Docker,
// attacks it with telechaos' release-gate scenario (real WebRTC through the
// container's published UDP port, a SIGKILL of the container in the middle),
// and fails the build on any invariant violation, threshold or
// infrastructure failure. The report (summary.json, junit.xml, index.html)
// lands in the test's artifact directory: run with
// `go test -artifacts -outputdir OUT` to keep it for the CI job.
//
// Your image must speak docs/api.md and take the reference clinic's flags
// (--addr, --data, --udp-port, --listen-ip, --advertised-ip); bugs and seed
// arrive as CLINIC_BUGS and CLINIC_SEED, which it may ignore. Outside this
// repository, require the telechaos module (a replace directive to a
// checkout works: the module path is
// "github.com/telechaos/telechaos").
package releasegate

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/deploy"
	"github.com/telechaos/telechaos/harness/deploy/gate"
	"github.com/telechaos/telechaos/scenarios"
)

func TestReleaseGate(t *testing.T) {
	image := os.Getenv("RELEASE_IMAGE") // e.g. registry.local/clinic:1.4.2, or "clinic" for the reference one
	if image == "" {
		t.Skip("set RELEASE_IMAGE to the image under test (RELEASE_IMAGE=clinic builds the reference clinic)")
	}
	res, err := gate.Run(t.Context(), t, gate.Config{
		Image:    image,
		Scenario: "release-gate",
		// Sized for a CI runner: about 30 patients in 15 s.
		Sets: []string{
			"population.patients=30", "population.clinicians=5",
			"executor.rate=2", "duration=15s", "settle=8s",
			"behaviour.call_min=2s", "behaviour.call_max=3s",
		},
		// A kill makes requests fail by design: under chaos the gate judges
		// the invariants and the latencies, not the error rate.
		Edit: func(sc *scenarios.Scenario) {
			sc.Thresholds = slices.DeleteFunc(sc.Thresholds, func(th scenarios.Threshold) bool { return th.Metric == "error_rate" })
		},
		// The container is killed 7 s in and started again 1 s later, on
		// the same data; the harness follows it through its own proxy.
		Faults: []gate.Fault{{Kind: deploy.FaultKill, Trigger: chaos.Trigger{At: chaos.D(7 * time.Second), For: chaos.D(time.Second)}}},
	})
	if err != nil {
		t.Fatalf("release gate could not judge the release: %v", err)
	}
	for _, v := range res.Violations {
		t.Errorf("%s: %s", v.Invariant, v.Detail)
	}
	if res.ExitCode != harness.ExitPass {
		t.Fatalf("release gate: verdict %s (exit %d); report in %s", res.Verdict(), res.ExitCode, res.ReportDir)
	}
	t.Logf("release gate passed: %d calls, %d frames checked; report in %s",
		res.Summary.Counts.CallsConnected, res.Summary.Counts.FramesChecked, res.ReportDir)
}
