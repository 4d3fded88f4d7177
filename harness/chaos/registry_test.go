package chaos

import (
	"slices"
	"strings"
	"testing"

	"github.com/telechaos/telechaos/harness/embedded"
	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// TestEveryKindHasABuilder: the spec's kind table and the builders
// registered by the implementation files name the same kinds, so a kind
// added to one side only fails here rather than at a user's run.
func TestEveryKindHasABuilder(t *testing.T) {
	spec := faultspec.Kinds()
	for _, k := range spec {
		if _, ok := builders[k]; !ok {
			t.Errorf("fault kind %q is in the spec (scenarios/faultspec) but no file of harness/chaos registers a builder for it", k)
		}
	}
	for _, k := range registeredKinds() {
		if !slices.Contains(spec, k) {
			t.Errorf("harness/chaos registers a builder for %q, which the spec (scenarios/faultspec) does not list", k)
		}
	}
}

// TestEveryKindBuilds: each kind's spec example builds, against a full
// environment, into an available fault named as asked.
func TestEveryKindBuilds(t *testing.T) {
	env := Env{Proxy: newProxy(t, upstream(t, "a", 0).URL), Media: newImpairment(t, 1), Target: &embedded.Clinic{}}
	for _, name := range faultspec.Kinds() {
		k, _ := faultspec.LookupKind(name)
		b, ok := builders[name]
		if !ok {
			continue // TestEveryKindHasABuilder reports it
		}
		f, err := b("x-"+name, k.Example, env)
		if err != nil {
			t.Errorf("%s: build: %v", name, err)
			continue
		}
		if f.Name() != "x-"+name {
			t.Errorf("%s: named %q", name, f.Name())
		}
		if err := f.Available(env); err != nil {
			t.Errorf("%s: unavailable: %v", name, err)
		}
		if p, ok := f.(Parameterised); ok && !strings.HasPrefix(name, faultspec.ClientPrefix) && p.Params()[ParamKind] != name {
			t.Errorf("%s: params kind %q", name, p.Params()[ParamKind])
		}
	}
}

// A profile naming a kind without a builder fails to build with an error,
// not a panic (a profile built in Go may skip validation).
func TestBuildUnknownKind(t *testing.T) {
	_, _, err := Build(faultspec.Profile{Faults: []faultspec.FaultSpec{{Kind: "disk-full"}}}, Env{})
	if err == nil || !strings.Contains(err.Error(), `unknown kind "disk-full"`) {
		t.Fatalf("err %v", err)
	}
}
