package deploy

import (
	"context"
	"errors"
	"testing"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/internal/dockertest"
)

func TestContainerFaultChecks(t *testing.T) {
	if _, err := NewContainerFault("container-explode", &Deployment{}, nil, ""); !errors.Is(err, ErrUnknownFault) {
		t.Errorf("unknown kind: %v, want ErrUnknownFault", err)
	}
	if _, err := NewContainerFault(FaultKill, nil, nil, ""); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("nil deployment: %v, want ErrInvalidOption", err)
	}
	d := &Deployment{} // no container: as good as terminated
	f, err := NewContainerFault(FaultPause, d, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != FaultPause || f.Params()[chaos.ParamKind] != FaultPause || f.Params()[chaos.ParamLoss] != "1" {
		t.Errorf("name %q params %v", f.Name(), f.Params())
	}
	for name, env := range map[string]chaos.Env{
		"no target":          {},
		"another deployment": {Target: (&Deployment{}).ChaosTarget()},
		"no container":       {Target: d.ChaosTarget()},
	} {
		if err := f.Available(env); !errors.Is(err, chaos.ErrUnavailable) {
			t.Errorf("%s: Available = %v, want ErrUnavailable", name, err)
		}
	}
	// Heal without a successful Inject does nothing (and touches no engine).
	if err := f.Heal(context.Background()); err != nil {
		t.Errorf("heal before inject: %v", err)
	}
	if err := f.Inject(context.Background()); !errors.Is(err, ErrTerminated) {
		t.Errorf("inject without a container: %v, want ErrTerminated", err)
	}
}

// Faults that publish the HTTP port anew need a proxy to retarget.
func TestContainerFaultNeedsProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("Docker: slow; make test runs it")
	}
	dockertest.Require(t, DockerAvailable)
	d := runClinic(t)
	env := chaos.Env{Target: d.ChaosTarget()}
	for _, kind := range FaultKinds {
		f, err := NewContainerFault(kind, d, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		err = f.Available(env)
		if kind == FaultPause {
			if err != nil {
				t.Errorf("%s without proxy: %v", kind, err)
			}
		} else if !errors.Is(err, chaos.ErrUnavailable) {
			t.Errorf("%s without proxy: %v, want ErrUnavailable", kind, err)
		}
	}
	p, err := chaos.NewHTTPProxy(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, _ := NewContainerFault(FaultKill, d, p, "")
	if err := f.Available(env); err != nil {
		t.Errorf("kill with proxy: %v", err)
	}
	// Kill and heal: the proxy follows the container to its new port.
	ctx := context.Background()
	before := d.URL()
	if err := f.Inject(ctx); err != nil {
		t.Fatalf("inject: %v", err)
	}
	if st, _ := d.State(ctx); st == "running" {
		t.Errorf("after kill: state %s", st)
	}
	if err := f.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	t.Logf("url %s -> %s, proxy upstream %s", before, d.URL(), p.Upstream())
	if "http://"+p.Upstream() != d.URL() {
		t.Errorf("proxy upstream %s, deployment %s", p.Upstream(), d.URL())
	}
	if err := getHealth(&Deployment{url: p.URL()}, 10e9); err != nil {
		t.Errorf("health through the proxy after the restart: %v", err)
	}
}
