package faultspec

import (
	"fmt"
	"slices"
	"time"
)

// Fault kinds. A kind is one row of kindTable below; harness/chaos
// registers one builder per kind.
const (
	KindHTTPLatency   = "http-latency"
	KindHTTPBandwidth = "http-bandwidth"
	KindHTTPReset     = "http-reset"
	KindHTTPTimeout   = "http-timeout"
	KindHTTPSlicer    = "http-slicer"

	KindMediaLoss      = "media-loss"
	KindMediaDelay     = "media-delay"
	KindMediaJitter    = "media-jitter"
	KindMediaDuplicate = "media-duplicate"
	KindMediaReorder   = "media-reorder"
	KindMediaBlackhole = "media-blackhole"

	KindClinicRestart = "clinic-restart"
	KindClinicCrash   = "clinic-crash"

	// ClientPrefix starts every client fault kind: client-<misbehaviour>.
	ClientPrefix = "client-"
)

// Media directions (FaultSpec.Direction).
const (
	DirUp   = "up"   // client to target: what the target records
	DirDown = "down" // target to client: what the client receives live
	DirBoth = "both"
)

// Kind is one fault kind of the spec: what a FaultSpec of that kind may set
// and must satisfy.
type Kind struct {
	Name string
	Doc  string // one line, for docs and errors
	// Fields are the kind-specific FaultSpec fields (YAML names) the kind
	// takes; any other one set is an error.
	Fields []string
	// Check reports what the kind requires of its values beyond the ranges
	// every kind shares (probabilities in 0..1, durations >= 0, ...).
	Check func(f FaultSpec, bad func(field, format string, args ...any))
	// Instant: the fault is one event (a restart), so it needs a trigger
	// and takes no trigger.for.
	Instant bool
	// Example is a valid FaultSpec of the kind (tests build every kind from it).
	Example FaultSpec
}

var (
	httpCommon  = []string{"stream", "toxicity"}
	mediaFields = []string{"jitter", "delay", "loss", "duplicate", "reorder", "reorder_gap", "direction", "rtp_only"}
)

// need makes a Check that requires ok(f) of field.
func need(field, what string, ok func(FaultSpec) bool) func(FaultSpec, func(string, string, ...any)) {
	return func(f FaultSpec, bad func(string, string, ...any)) {
		if !ok(f) {
			bad(field, "%s needs %s", f.Kind, what)
		}
	}
}

func mediaKind(name, doc, field, what string, ok func(FaultSpec) bool, ex FaultSpec) Kind {
	ex.Kind = name
	k := Kind{Name: name, Doc: doc, Fields: mediaFields, Example: ex}
	if ok != nil {
		k.Check = need(field, what, ok)
	}
	return k
}

func clinicKind(name, doc string) Kind {
	return Kind{Name: name, Doc: doc, Fields: []string{"down", "tail"}, Instant: true,
		Example: FaultSpec{Kind: name, Trigger: Trigger{At: D(time.Second)}}}
}

func clientKind(misbehaviour, doc string) Kind {
	name := ClientPrefix + misbehaviour
	return Kind{Name: name, Doc: doc, Fields: []string{"probability"},
		Check:   need("probability", "probability > 0", func(f FaultSpec) bool { return f.Probability > 0 }),
		Example: FaultSpec{Kind: name, Probability: 0.5}}
}

// kindTable is every fault kind, in the order Kinds lists them.
var kindTable = []Kind{
	{Name: KindHTTPLatency, Doc: "latency ± jitter on responses (and requests with stream both)",
		Fields: append([]string{"latency", "jitter"}, httpCommon...),
		Check: need("latency", "latency > 0 (or jitter)", func(f FaultSpec) bool {
			return f.Latency.Duration > 0 || f.Jitter.Duration > 0
		}),
		Example: FaultSpec{Kind: KindHTTPLatency, Latency: D(100 * time.Millisecond)}},
	{Name: KindHTTPBandwidth, Doc: "bandwidth capped at rate KB/s",
		Fields:  append([]string{"rate"}, httpCommon...),
		Check:   need("rate", "rate > 0 (KB/s)", func(f FaultSpec) bool { return f.Rate > 0 }),
		Example: FaultSpec{Kind: KindHTTPBandwidth, Rate: 64}},
	{Name: KindHTTPReset, Doc: "TCP RST after timeout (0: on the first bytes)",
		Fields:  append([]string{"timeout"}, httpCommon...),
		Example: FaultSpec{Kind: KindHTTPReset}},
	{Name: KindHTTPTimeout, Doc: "data stops; closed after timeout (0: held until healed)",
		Fields:  append([]string{"timeout"}, httpCommon...),
		Example: FaultSpec{Kind: KindHTTPTimeout, Timeout: D(time.Second)}},
	{Name: KindHTTPSlicer, Doc: "writes sliced into small pieces, delay apart",
		Fields: append([]string{"average_size", "size_variation", "delay"}, httpCommon...),
		Check: func(f FaultSpec, bad func(string, string, ...any)) {
			if f.AverageSize <= 0 {
				bad("average_size", "%s needs average_size > 0 (bytes)", f.Kind)
			}
			if f.SizeVariation < 0 || (f.AverageSize > 0 && f.SizeVariation >= f.AverageSize) {
				bad("size_variation", "%d must be within 0..average_size-1", f.SizeVariation)
			}
		},
		Example: FaultSpec{Kind: KindHTTPSlicer, AverageSize: 64, SizeVariation: 16, Delay: D(time.Millisecond)}},

	mediaKind(KindMediaLoss, "the clients' UDP packets lost with probability loss", "loss", "loss > 0",
		func(f FaultSpec) bool { return f.Loss > 0 }, FaultSpec{Loss: 0.1}),
	mediaKind(KindMediaDelay, "the clients' UDP packets delayed by delay (± jitter)", "delay", "delay > 0",
		func(f FaultSpec) bool { return f.Delay.Duration > 0 }, FaultSpec{Delay: D(20 * time.Millisecond)}),
	mediaKind(KindMediaJitter, "the clients' UDP packets delayed by up to jitter", "jitter", "jitter > 0",
		func(f FaultSpec) bool { return f.Jitter.Duration > 0 }, FaultSpec{Jitter: D(20 * time.Millisecond)}),
	mediaKind(KindMediaDuplicate, "the clients' UDP packets duplicated with probability duplicate", "duplicate", "duplicate > 0",
		func(f FaultSpec) bool { return f.Duplicate > 0 }, FaultSpec{Duplicate: 0.1}),
	mediaKind(KindMediaReorder, "the clients' UDP packets held back reorder_gap with probability reorder", "reorder", "reorder > 0",
		func(f FaultSpec) bool { return f.Reorder > 0 }, FaultSpec{Reorder: 0.1}),
	mediaKind(KindMediaBlackhole, "every UDP packet of the clients dropped", "", "", nil, FaultSpec{Direction: DirUp}),

	clinicKind(KindClinicRestart, "graceful close, start on the same data (down: time stopped)"),
	clinicKind(KindClinicCrash, "crash (nothing finalised), start on the same data (down: time stopped)"),

	clientKind("abandon", "a user leaves mid-call without calling end (the app is killed)"),
	clientKind("double-switch", "a user sends the switch-to-video re-offer twice (a double tap)"),
	clientKind("switch-racing-end", "a user sends the switch and the end concurrently"),
	clientKind("switch-during-ice", "a user switches before the connection is up"),
	clientKind("reconnect", "a user drops the PeerConnection mid-call and joins again with a new one"),
	clientKind("retry", "a user sends a request again after it succeeded (a retry after a lost answer)"),
}

var kindIndex = func() map[string]int {
	m := make(map[string]int, len(kindTable))
	for i, k := range kindTable {
		if _, dup := m[k.Name]; dup {
			panic(fmt.Sprintf("faultspec: kind %q listed twice", k.Name)) // a programming error in the table
		}
		m[k.Name] = i
	}
	return m
}()

// Kinds lists every fault kind a Profile accepts, in table order.
func Kinds() []string {
	out := make([]string, len(kindTable))
	for i, k := range kindTable {
		out[i] = k.Name
	}
	return out
}

// LookupKind returns the row of kind name.
func LookupKind(name string) (Kind, bool) {
	i, ok := kindIndex[name]
	if !ok {
		return Kind{}, false
	}
	k := kindTable[i]
	k.Fields = slices.Clone(k.Fields)
	return k, true
}
