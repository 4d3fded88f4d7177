package chaos

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/telechaos/telechaos/harness/embedded"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

const exampleProfile = `
faults:
  - {kind: http-latency, latency: 200ms, jitter: 50ms, trigger: {every: 5s, for: 2s}}
  - {kind: media-loss, loss: 0.05, trigger: {on: switch, nth: 3, for: 3s}}
  - {kind: clinic-crash, trigger: {on: end, nth: 10}}
  - {kind: media-loss, loss: 0.5, direction: down, rtp_only: true}
  - {kind: client-double-switch, probability: 0.2}
coverage:
  - {path: switch, fault: media-loss, min: 1}
  - {path: end, fault: any, min: 2}
`

// TestProfileParseAndBuild: the documented example parses, names repeated
// kinds, and builds every fault against a full environment.
func TestProfileParseAndBuild(t *testing.T) {
	p, err := faultspec.ParseProfile([]byte(exampleProfile))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Faults[0].Trigger.Every.Duration; got != 5*time.Second {
		t.Errorf("every %s", got)
	}
	wantNames := []string{"http-latency", "media-loss", "clinic-crash", "media-loss#2", "client-double-switch"}
	if got := p.Names(); strings.Join(got, ",") != strings.Join(wantNames, ",") {
		t.Errorf("names %v, want %v", got, wantNames)
	}
	proxy := newProxy(t, upstream(t, "a", 0).URL)
	m := newImpairment(t, 1)
	env := Env{Proxy: proxy, Media: m, Target: &embedded.Clinic{}}
	faults, s, err := Build(p, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(faults) != 5 || s == nil {
		t.Fatalf("%d faults", len(faults))
	}
	for i, f := range faults {
		if f.Name() != wantNames[i] {
			t.Errorf("fault %d named %s, want %s", i, f.Name(), wantNames[i])
		}
	}
	if mf := faults[3].(*MediaFault); mf.Params()[ParamDirection] != DirDown || mf.Params()[ParamLoss] != "0.5" {
		t.Errorf("media-loss#2 params %v", mf.Params())
	}
	cf := ClientFaultsOf(faults)
	if cf[DoubleSwitch] == nil || cf[DoubleSwitch].Probability() != 0.2 {
		t.Errorf("client faults %v", cf)
	}
	cov, _ := NewCoverage(nil)
	p.ApplyCoverage(cov)
	if r := cov.Requirements(); len(r) != 2 || r[1].Fault != faultspec.AnyFault {
		t.Errorf("requirements %v", r)
	}

	// The same profile without a proxy, media net or restartable target.
	_, _, err = Build(p, Env{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("build without env: %v", err)
	}
	for _, want := range []string{"faults[0]: http-latency", "faults[1]: media-loss", "faults[2]: clinic-crash"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}

// TestCoverage: hits by fault, HitUnder, requirements and shortfalls, metrics.
func TestCoverage(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := NewCoverage(reg)
	if err != nil {
		t.Fatal(err)
	}
	c.HitUnder(faultspec.PathSwitch, nil)
	c.HitUnder(faultspec.PathSwitch, []string{"media-loss", "http-latency"})
	c.HitUnder(faultspec.PathSwitch, []string{"media-loss"})
	c.Hit(faultspec.PathEnd, "")
	c.Require(faultspec.PathSwitch, "media-loss", 2)
	c.Require(faultspec.PathSwitch, faultspec.AnyFault, 3)
	c.Require(faultspec.PathEnd, "clinic-crash", 1)
	c.Require(faultspec.PathFetch, faultspec.NoFault, 0) // ignored
	short := c.Check()
	if len(short) != 2 || short[0].Fault != faultspec.AnyFault || short[0].Got != 2 || short[1].Path != faultspec.PathEnd || short[1].Got != 0 {
		t.Errorf("shortfalls %v", short)
	}
	if s := short[1].String(); s != "coverage end under clinic-crash: 0, want >= 1" {
		t.Errorf("shortfall text %q", s)
	}
	snap := c.Snapshot()
	if snap[faultspec.PathSwitch]["media-loss"] != 2 || snap[faultspec.PathSwitch][faultspec.NoFault] != 1 || snap[faultspec.PathSwitch][faultspec.AnyFault] != 2 || snap[faultspec.PathEnd][faultspec.NoFault] != 1 {
		t.Errorf("snapshot %v", snap)
	}
	if n := testutil.ToFloat64(c.vec.WithLabelValues(faultspec.PathSwitch, "media-loss")); n != 2 {
		t.Errorf("metric %v", n)
	}
	if n := testutil.CollectAndCount(c.vec); n != 4 {
		t.Errorf("%d series, want 4 (no %q series)", n, faultspec.AnyFault)
	}
}

// TestClientFaultDecide: one draw per call whatever the state; no outside
// the fault's windows; nil says no.
func TestClientFaultDecide(t *testing.T) {
	f, err := NewClientFault(DoubleSwitch, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, b := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	if f.Decide(a) {
		t.Error("inactive fault decided yes")
	}
	_ = f.Inject(t.Context())
	if !f.Decide(a) {
		t.Error("active fault with p=1 decided no")
	}
	var none *ClientFault
	if none.Decide(a) || (ClientFaults{}).Decide(Abandon, a) {
		t.Error("absent fault decided yes")
	}
	for i := 0; i < 4; i++ {
		b.Float64()
	}
	if a.Uint64() != b.Uint64() {
		t.Error("Decide did not draw exactly once per call")
	}
	_ = f.Heal(t.Context())
	if f.Decide(a) || f.Decisions() != 1 {
		t.Errorf("healed fault decided yes, or decisions %d != 1", f.Decisions())
	}
	half, _ := NewClientFault(Retry, 0.3)
	_ = half.Inject(t.Context())
	yes := 0
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 10000; i++ {
		if half.Decide(r) {
			yes++
		}
	}
	if yes < 2700 || yes > 3300 {
		t.Errorf("p=0.3 said yes %d of 10000 times", yes)
	}
	if _, err := NewClientFault("teleport", 0.5); !errors.Is(err, faultspec.ErrInvalidProfile) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := NewClientFault(Abandon, 2); err == nil {
		t.Error("probability 2 accepted")
	}
}
