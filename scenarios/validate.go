package scenarios

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// Embedded is the Target value that starts the reference clinic in-process.
const Embedded = "embedded"

// ExpectPass is the Expect value of a run that must find no violation.
const ExpectPass = "pass"

// Defaults applied to omitted fields (see applyDefaults).
const (
	DefaultSeed        = 1
	DefaultSettle      = 10 * time.Second
	DefaultMaxInFlight = 200
)

// Bounds on a scenario's sizes: a run past them would exhaust the harness's
// memory or file descriptors long before it proved anything (design: one
// process drives at most about 10^4 concurrent patients; shard a larger run).
// A scenario over one is refused with the bound named.
const (
	MaxPatients    = 1_000_000 // population.patients (a whole run, all shards together)
	MaxClinicians  = 100_000   // population.clinicians
	MaxConcurrency = 100_000   // executor.vus and executor.max_in_flight
	MaxReplays     = 1_000     // behaviour.replays (rounds per replaying patient)
)

// CoveragePaths are the risky paths the runner counts (faultspec.Paths): a
// coverage requirement on any other path could never be met, so it is
// refused as a typo.
var CoveragePaths = faultspec.Paths()

// KnownBugs is the clinic's bug catalogue (docs/design.md section 7), in its order.
var KnownBugs = []string{"switch-reuse", "list-scope", "bola-media", "cache-key", "preroll-leak", "switch-race", "lost-on-crash", "live-crosstalk"}

// LatencyOps are the operations with a latency.<op> threshold metric.
var LatencyOps = []string{"book", "join", "switch", "end", "list", "replay", "media"}

// LatencyStats are the statistics a latency threshold may bound.
var LatencyStats = []string{"p50", "p90", "p95", "p99", "max"}

// ApplyDefaults fills the fields that were not given (Parse calls it; call it
// on a scenario built in Go, where a zero field counts as not given, except
// media and seed whose zero values are meaningful):
//
//	target embedded, media true, seed 1, settle 10s, executor.max_in_flight 200,
//	expect pass, behaviour.* = models.DefaultBehaviour field by field,
//	and, recomputed by Validate after every --set:
//	population.clinicians = max(1, patients/10),
//	duration of a ramping-arrival-rate run = the sum of its stages (the
//	executor type's ExecutorKind.Duration).
func (s *Scenario) ApplyDefaults() {
	if s.Target == "" {
		s.Target = Embedded
	}
	if s.src != nil && !s.src.built && !s.src.has("media") {
		s.Media = true
	}
	if s.src != nil && !s.src.built && !s.src.has("seed") {
		s.Seed = DefaultSeed
	}
	if !s.given("settle", s.Settle.Duration != 0) {
		s.Settle = Duration{DefaultSettle}
	}
	if !s.given("executor.max_in_flight", s.Executor.MaxInFlight != 0) {
		s.Executor.MaxInFlight = DefaultMaxInFlight
	}
	if s.Expect == "" {
		s.Expect = ExpectPass
	}
	d := models.DefaultBehaviour
	b := &s.Behaviour
	for _, f := range []struct {
		name    string
		nonZero bool
		set     func()
	}{
		{"switch_to_video", b.SwitchToVideo != 0, func() { b.SwitchToVideo = d.SwitchToVideo }},
		{"replay", b.Replay != 0, func() { b.Replay = d.Replay }},
		{"abandon", b.Abandon != 0, func() { b.Abandon = d.Abandon }},
		{"probe_other", b.ProbeOther != 0, func() { b.ProbeOther = d.ProbeOther }},
		{"call_min", b.CallMin.Duration != 0, func() { b.CallMin = Duration{d.CallMin} }},
		{"call_max", b.CallMax.Duration != 0, func() { b.CallMax = Duration{d.CallMax} }},
		{"switch_min", b.SwitchMin != 0, func() { b.SwitchMin = d.SwitchMin }},
		{"switch_max", b.SwitchMax != 0, func() { b.SwitchMax = d.SwitchMax }},
		{"think_min", b.ThinkMin.Duration != 0, func() { b.ThinkMin = Duration{d.ThinkMin} }},
		{"think_max", b.ThinkMax.Duration != 0, func() { b.ThinkMax = Duration{d.ThinkMax} }},
		{"replays", b.Replays != 0, func() { b.Replays = max(1, d.Replays) }},
	} {
		if !s.given("behaviour."+f.name, f.nonZero) {
			f.set()
		}
	}
	s.applyDerived()
}

// applyDerived recomputes the defaults that depend on other fields.
func (s *Scenario) applyDerived() {
	if !s.given("population.clinicians", s.Population.Clinicians != 0) {
		s.Population.Clinicians = max(1, s.Population.Patients/10)
	}
	if k, ok := LookupExecutor(s.Executor.Type); ok && k.Duration != nil && !s.given("duration", s.Duration.Duration != 0) {
		s.Duration = Duration{k.Duration(s.Executor)}
	}
}

// given reports whether a field was given: by its source if the scenario came
// from a file, else (a scenario built in Go) by being non-zero.
func (s *Scenario) given(path string, nonZero bool) bool {
	if s.src == nil {
		return nonZero
	}
	if s.src.built {
		return nonZero || s.src.set[path]
	}
	return s.src.has(path)
}

// Validate applies the derived defaults and checks the whole scenario,
// returning a *ValidationError with every problem, or nil.
func (s *Scenario) Validate() error {
	s.applyDerived()
	var probs []Problem
	bad := func(path, format string, args ...any) {
		probs = append(probs, s.src.problem(path, format, args...))
	}

	if strings.TrimSpace(s.Name) == "" {
		bad("name", "required")
	}
	if s.Target != Embedded && s.Target != "" && !registeredTarget(s.Target) { // "" (a Go-built scenario): embedded
		u, err := url.Parse(s.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("target", "want %q or an http(s) base URL, got %q", Embedded, s.Target)
		}
	}
	for i, a := range s.ICEAllow {
		if _, err := parseAllow(a); err != nil {
			bad(fmt.Sprintf("ice_allow[%d]", i), "%v", err)
		}
	}
	s.validateNetwork(bad)
	// Bugs are the embedded clinic's: a run against a URL cannot switch them
	// on. A target a driver registered says itself whether it takes them
	// (harness/target.Validate).
	if len(s.Bugs) > 0 && (strings.HasPrefix(s.Target, "http://") || strings.HasPrefix(s.Target, "https://")) {
		bad("bugs", "%v apply only to the embedded clinic, not to %s", s.Bugs, s.Target)
	}
	// A bug listed twice is not an error: the clinic takes the last probability,
	// which is how --bug overrides a scenario's own.
	for i, spec := range s.Bugs {
		for part := range strings.SplitSeq(spec, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				bad(fmt.Sprintf("bugs[%d]", i), "empty bug (want ID or ID:PROBABILITY)")
				continue
			}
			id, p, hasP := strings.Cut(part, ":")
			path := fmt.Sprintf("bugs[%d]", i)
			if !slices.Contains(KnownBugs, id) {
				bad(path, "unknown bug %q (known: %s)", id, strings.Join(KnownBugs, ", "))
				continue
			}
			if hasP {
				v, err := strconv.ParseFloat(p, 64)
				if err != nil || !(v > 0 && v <= 1) {
					bad(path, "probability %q of %s must be a number in (0,1]", p, id)
				}
			}
		}
	}

	if s.Population.Patients <= 0 {
		bad("population.patients", "must be > 0, got %d", s.Population.Patients)
	} else if s.Population.Patients > MaxPatients {
		bad("population.patients", "%d is over the bound of %d (MaxPatients)", s.Population.Patients, MaxPatients)
	}
	if s.Population.Clinicians <= 0 {
		bad("population.clinicians", "must be > 0, got %d", s.Population.Clinicians)
	} else if s.Population.Clinicians > MaxClinicians {
		bad("population.clinicians", "%d is over the bound of %d (MaxClinicians)", s.Population.Clinicians, MaxClinicians)
	}

	s.validateExecutor(bad)
	if s.Duration.Duration <= 0 {
		bad("duration", "must be > 0 (the bound on the arrival phase), got %v", s.Duration.Duration)
	}
	if s.Settle.Duration < 0 {
		bad("settle", "must be >= 0, got %v", s.Settle.Duration)
	}

	s.validateBehaviour(bad)

	for i, inv := range s.Invariants {
		path := fmt.Sprintf("invariants[%d]", i)
		if !slices.Contains(models.InvariantIDs(), inv) {
			bad(path, "unknown invariant %q (known: %s)", inv, strings.Join(models.InvariantIDs(), ", "))
		} else if slices.Index(s.Invariants, inv) < i {
			bad(path, "invariant %s listed twice", inv)
		}
	}
	for i, th := range s.Thresholds {
		for _, p := range th.problems() {
			bad(fmt.Sprintf("thresholds[%d]%s", i, p.field), "%s", p.msg)
		}
	}
	// The fault profile names its fields from its own root (faults[2].loss);
	// prefixed with chaos. they find their line in the file.
	for i, r := range s.Chaos.Coverage {
		if r.Path != "" && !slices.Contains(CoveragePaths, r.Path) {
			bad(fmt.Sprintf("chaos.coverage[%d].path", i), "unknown path %q (the runner counts %s)", r.Path, strings.Join(CoveragePaths, ", "))
		}
	}
	for _, err := range s.Chaos.Validate() {
		var fe *faultspec.FieldError
		if errors.As(err, &fe) {
			bad("chaos."+fe.Field, "%s", fe.Msg)
		} else {
			bad("chaos", "%v", err)
		}
	}
	switch {
	case s.Expect == ExpectPass || s.Expect == "":
	case !slices.Contains(models.InvariantIDs(), s.Expect):
		bad("expect", "want %q or an invariant id (%s), got %q", ExpectPass, strings.Join(models.InvariantIDs(), ", "), s.Expect)
	case len(s.Invariants) > 0 && !slices.Contains(s.Invariants, s.Expect):
		bad("expect", "expects %s, which invariants does not check", s.Expect)
	}

	if len(probs) == 0 {
		return nil
	}
	sortProblems(probs)
	return &ValidationError{Problems: probs}
}

func (s *Scenario) validateBehaviour(bad func(path, format string, args ...any)) {
	b := s.Behaviour
	for _, p := range []struct {
		name string
		v    float64
	}{{"switch_to_video", b.SwitchToVideo}, {"replay", b.Replay}, {"abandon", b.Abandon}, {"probe_other", b.ProbeOther}, {"switch_min", b.SwitchMin}, {"switch_max", b.SwitchMax}} {
		if !(p.v >= 0 && p.v <= 1) {
			bad("behaviour."+p.name, "must be in [0,1], got %g", p.v)
		}
	}
	if b.SwitchMin > b.SwitchMax {
		bad("behaviour.switch_min", "%g is after switch_max %g", b.SwitchMin, b.SwitchMax)
	}
	if b.CallMin.Duration <= 0 {
		bad("behaviour.call_min", "must be > 0, got %v", b.CallMin.Duration)
	} else if b.CallMin.Duration > b.CallMax.Duration {
		bad("behaviour.call_min", "%v is longer than call_max %v", b.CallMin.Duration, b.CallMax.Duration)
	}
	if b.ThinkMin.Duration < 0 {
		bad("behaviour.think_min", "must be >= 0, got %v", b.ThinkMin.Duration)
	} else if b.ThinkMin.Duration > b.ThinkMax.Duration {
		bad("behaviour.think_min", "%v is longer than think_max %v", b.ThinkMin.Duration, b.ThinkMax.Duration)
	}
	if b.Replays < 0 {
		bad("behaviour.replays", "must be >= 0, got %d", b.Replays)
	} else if b.Replays > MaxReplays {
		bad("behaviour.replays", "%d is over the bound of %d (MaxReplays)", b.Replays, MaxReplays)
	}
}

// sortProblems orders problems by where they are (file problems by line, then
// --set ones), keeping the order of problems on one line.
func sortProblems(ps []Problem) {
	cmdline := func(p Problem) bool { return strings.HasPrefix(p.File, "--") } // --set, --users, ...
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if cmdline(a) != cmdline(b) {
			if cmdline(a) {
				return 1
			}
			return -1
		}
		return a.Line - b.Line
	})
}

type thresholdProblem struct{ field, msg string }

// problems checks one threshold; field is "" or ".metric", ".stat", ...
func (t Threshold) problems() []thresholdProblem {
	var out []thresholdProblem
	add := func(field, format string, args ...any) {
		out = append(out, thresholdProblem{field, fmt.Sprintf(format, args...)})
	}
	latency := false
	switch {
	case strings.HasPrefix(t.Metric, "latency."):
		latency = true
		if op := strings.TrimPrefix(t.Metric, "latency."); !slices.Contains(LatencyOps, op) {
			add(".metric", "unknown operation %q (want latency.<op> for op in %s)", op, strings.Join(LatencyOps, ", "))
		}
		if t.Stat != "" && !slices.Contains(LatencyStats, t.Stat) {
			add(".stat", "unknown %q (want %s)", t.Stat, strings.Join(LatencyStats, ", "))
		}
	case t.Metric == "error_rate", t.Metric == "media_loss", t.Metric == "setup_rate":
		if t.Stat != "" {
			add(".stat", "%s takes no stat, got %q", t.Metric, t.Stat)
		}
	case t.Metric == "judged" || strings.HasPrefix(t.Metric, "judged."):
		// The share of an invariant's observations judged (all invariants
		// for "judged"): a run below it is not judged (exit 3).
		if inv, one := strings.CutPrefix(t.Metric, "judged."); one {
			if _, ok := models.LookupInvariant(inv); !ok {
				add(".metric", "unknown invariant %q (want judged.<invariant> for one of %s)", inv, strings.Join(models.InvariantIDs(), ", "))
			}
		}
		if t.Stat != "" {
			add(".stat", "%s takes no stat, got %q", t.Metric, t.Stat)
		}
		if t.Max != nil {
			add(".max", "%s takes min only (the share judged, in [0,1])", t.Metric)
		}
	case t.Metric == "":
		add(".metric", "required (latency.<op>, error_rate, media_loss, setup_rate or judged[.<invariant>])")
	default:
		add(".metric", "unknown %q (want latency.<op>, error_rate, media_loss, setup_rate or judged[.<invariant>])", t.Metric)
	}
	if t.Max == nil && t.Min == nil {
		add("", "needs max or min")
	}
	maxV, errMax := t.limit(t.Max, latency)
	if errMax != nil {
		add(".max", "%v", errMax)
	}
	minV, errMin := t.limit(t.Min, latency)
	if errMin != nil {
		add(".min", "%v", errMin)
	}
	if errMax == nil && errMin == nil && t.Max != nil && t.Min != nil && minV > maxV {
		add(".min", "%s is above max %s", *t.Min, *t.Max)
	}
	return out
}

// limit reads a threshold bound: a duration or a number of seconds for
// latencies, a number otherwise; fractions (error_rate, media_loss) in [0,1].
func (t Threshold) limit(s *string, latency bool) (float64, error) {
	if s == nil {
		return 0, nil
	}
	v := strings.TrimSpace(*s)
	if latency {
		if d, err := time.ParseDuration(v); err == nil {
			if d < 0 {
				return 0, fmt.Errorf("%q must be >= 0", v)
			}
			return d.Seconds(), nil
		}
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		if latency {
			return 0, fmt.Errorf("want a duration like 500ms or a number of seconds, got %q", v)
		}
		return 0, fmt.Errorf("want a number, got %q", v)
	}
	if x < 0 {
		return 0, fmt.Errorf("%q must be >= 0", v)
	}
	if (t.Metric == "error_rate" || t.Metric == "media_loss" || t.Metric == "judged" || strings.HasPrefix(t.Metric, "judged.")) && x > 1 {
		return 0, fmt.Errorf("%q must be a fraction in [0,1]", v)
	}
	return x, nil
}

// Limits returns the threshold's bounds in base units (seconds for latencies,
// fractions for rates, calls/s for setup_rate); nil where not given. The stat
// of a latency threshold defaults to p95. A run passes a threshold when
// min <= value <= max for the bounds given.
func (t Threshold) Limits() (minV, maxV *float64, err error) {
	latency := strings.HasPrefix(t.Metric, "latency.")
	if t.Max != nil {
		v, err := t.limit(t.Max, latency)
		if err != nil {
			return nil, nil, fmt.Errorf("threshold %s max: %w", t.Metric, err)
		}
		maxV = &v
	}
	if t.Min != nil {
		v, err := t.limit(t.Min, latency)
		if err != nil {
			return nil, nil, fmt.Errorf("threshold %s min: %w", t.Metric, err)
		}
		minV = &v
	}
	return minV, maxV, nil
}

// MinJudged returns the share of inv's observations the scenario requires
// to have been judged: a judged.<invariant> min, else a judged min, else
// models.DefaultMinJudged.
func (s *Scenario) MinJudged(inv string) float64 {
	all, one := -1.0, -1.0
	for _, t := range s.Thresholds {
		minV, _, err := t.Limits()
		if err != nil || minV == nil {
			continue
		}
		switch t.Metric {
		case "judged":
			all = *minV
		case "judged." + inv:
			one = *minV
		}
	}
	switch {
	case one >= 0:
		return one
	case all >= 0:
		return all
	}
	return models.DefaultMinJudged
}

// StatOrDefault is the threshold's stat, p95 for a latency threshold without one.
func (t Threshold) StatOrDefault() string {
	if t.Stat == "" && strings.HasPrefix(t.Metric, "latency.") {
		return "p95"
	}
	return t.Stat
}

// ModelBehaviour converts the behaviour to the model's.
func (s *Scenario) ModelBehaviour() models.Behaviour {
	b := s.Behaviour
	return models.Behaviour{
		SwitchToVideo: b.SwitchToVideo, Replay: b.Replay, Abandon: b.Abandon, ProbeOther: b.ProbeOther,
		CallMin: b.CallMin.Duration, CallMax: b.CallMax.Duration,
		SwitchMin: b.SwitchMin, SwitchMax: b.SwitchMax,
		ThinkMin: b.ThinkMin.Duration, ThinkMax: b.ThinkMax.Duration,
		Replays: b.Replays,
	}
}

// validateNetwork checks the network section: gather entries are IPv4
// addresses or interface names, ICE server URLs have a known scheme and a
// host, TURN has credentials, relay_only has a TURN server.
func (s *Scenario) validateNetwork(bad func(path, format string, args ...any)) {
	n := s.Network
	for i, g := range n.Gather {
		g = strings.TrimSpace(g)
		path := fmt.Sprintf("network.gather[%d]", i)
		if a, err := netip.ParseAddr(g); err == nil {
			if !a.Unmap().Is4() || a.IsUnspecified() || a.IsMulticast() {
				bad(path, "%q: want a local IPv4 address or an interface name", g)
			}
			continue
		}
		if g == "" || len(g) > 15 || strings.ContainsAny(g, " /:") {
			bad(path, "%q: want a local IPv4 address or an interface name", g)
		}
	}
	turn := false
	for i, srv := range n.ICEServers {
		path := fmt.Sprintf("network.ice_servers[%d]", i)
		if len(srv.URLs) == 0 {
			bad(path+".urls", "required: at least one stun:, turn: or turns: url")
		}
		for j, u := range srv.URLs {
			upath := fmt.Sprintf("%s.urls[%d]", path, j)
			scheme, rest, ok := strings.Cut(strings.TrimSpace(u), ":")
			host, _, _ := strings.Cut(rest, "?")
			switch {
			case !ok || !slices.Contains([]string{"stun", "stuns", "turn", "turns"}, scheme):
				bad(upath, "%q: want stun:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT]", u)
				continue
			case host == "" || strings.HasPrefix(host, "//"):
				bad(upath, "%q: no host (write turn:host:3478, without //)", u)
				continue
			}
			if _, q, hasQ := strings.Cut(rest, "?"); hasQ && q != "transport=udp" && q != "transport=tcp" {
				bad(upath, "%q: unknown query %q (want transport=udp or transport=tcp)", u, q)
			}
			if strings.HasPrefix(scheme, "turn") {
				turn = true
				if srv.Username == "" || srv.Credential == "" {
					bad(path, "%s needs username and credential", u)
				}
			}
		}
	}
	if n.RelayOnly && !turn {
		bad("network.relay_only", "needs a turn: or turns: server in network.ice_servers")
	}
}
