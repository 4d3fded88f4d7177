package gate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/deploy"
	"github.com/telechaos/telechaos/scenarios"
)

// Configuration mistakes are reported before anything touches Docker, and
// Close is safe on what Start returned.
func TestStartConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no image":      {},
		"unknown kind":  {Image: "x", Faults: []Fault{{Kind: "container-melt"}}},
		"bad trigger":   {Image: "x", Faults: []Fault{{Kind: deploy.FaultKill, Trigger: chaos.Trigger{On: "lunch"}}}},
		"no scenario":   {Image: "x", Scenario: "no-such-scenario"},
		"bad set":       {Image: "x", Sets: []string{"population.nope=1"}},
		"missing image": {Image: ImageClinic, RepoRoot: t.TempDir()},
	} {
		s, err := Start(context.Background(), cfg)
		if !errors.Is(err, ErrConfig) && !errors.Is(err, deploy.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
		if s == nil {
			t.Errorf("%s: nil session", name)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("%s: close: %v", name, err)
		}
		if _, err := s.Run(context.Background()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Run on a session that did not start: %v", name, err)
		}
	}
}

func TestBugsAndRepro(t *testing.T) {
	sc := &scenarios.Scenario{Bugs: []string{"list-scope", "switch-reuse:1"}}
	cfg := Config{
		Image: "team/clinic:1.2",
		Bugs:  []string{"switch-reuse:1"},
		Env:   map[string]string{EnvBugs: "cache-key", "TZ": "UTC"},
		Faults: []Fault{
			{Kind: deploy.FaultKill, Trigger: chaos.Trigger{At: chaos.D(5 * time.Second), For: chaos.D(time.Second)}},
			{Kind: deploy.FaultPause, Trigger: chaos.Trigger{On: chaos.EventSwitch, Nth: 3}}, // no flag form
		},
	}
	if got, want := bugsOf(cfg, sc), []string{"switch-reuse:1", "list-scope", "cache-key"}; !slices.Equal(got, want) {
		t.Errorf("bugs %v, want %v", got, want)
	}
	s := &Session{cfg: cfg}
	want := []string{"--deploy", "team/clinic:1.2", "--bug", "switch-reuse:1", "--bug", "list-scope", "--bug", "cache-key",
		"--deploy-env", "TZ=UTC", "--deploy-fault", "kill@5s+1s"}
	if got := s.reproArgs(sc); !slices.Equal(got, want) {
		t.Errorf("repro args\n got %q\nwant %q", got, want)
	}
}
