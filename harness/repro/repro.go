// Package repro turns a run's violations into minimal replayable traces.
// During a run the history (harness/history) keeps a bounded log of what each
// user did. After a run with violations, the logged ops of the users
// involved in each distinct violation become a sequential trace, minimised by
// delta debugging against the same target reference (a fresh embedded
// clinic, or the URL with new users), and written to the report as
// repro-N.trace with the command that replays it. Faults that crashed or
// restarted the target become crash_target and restart_target ops between
// the ops that completed before the window opened and those after.
package repro

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/embedded"
	"github.com/telechaos/telechaos/harness/history"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/trace"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// Run is what a finished run hands over for its repro traces.
type Run struct {
	Scenario *scenarios.Scenario
	// Target is the reference the run opened and a replay opens again.
	Target  string
	Ledger  *models.Ledger
	History *history.Log
	// TargetFaults are the windows of the faults that crashed or restarted
	// the target, when the run's target had a Control (a replay opens the
	// same reference and gets its Control again); nil otherwise.
	TargetFaults  []chaos.Window
	AllowedRemote []netip.Prefix // where a replay's ICE checks may go
	Log           *slog.Logger   // nil: discard
}

func (r *Run) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// ShellQuote quotes s for a POSIX shell when it needs it.
func ShellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Minimisation bounds.
const (
	// MaxTraces: distinct invariants minimised per run.
	MaxTraces = 3
	// DefaultBudget bounds the minimisation of all a run's traces together
	// (Write's budget overrides it).
	DefaultBudget = 60 * time.Second
	// reproMaxCandidates bounds the executions of one minimisation.
	reproMaxCandidates = 200
	// Times is the --times of the repro command written to the report.
	Times = 10
	// Frame counts are not in observations: a trace sends this many frames
	// after each join (audio) and each switch (video).
	reproAudioFrames = 25
	reproVideoFrames = 10
	// seedSearch bounds the offline search for a bug seed whose firing
	// decisions all fire (see fireSeed).
	seedSearch    = 200_000
	seedRunWanted = 12
)

// userEntry is an entry with its user.
type userEntry struct {
	user string
	history.Entry
}

// Trace is one repro trace written after a run.
type Trace struct {
	Violation int    // index in Result.Violations
	Invariant string // the trace's expect
	File      string // path of repro-N.trace
	Command   string // e.g. "telechaos repro DIR/repro-1.trace --times 10"
	Stats     trace.MinStats
	BugSeed   uint64
	// Verified counts the executions of the written trace that reproduced,
	// out of VerifyRuns.
	Verified, VerifyRuns int
	// Rounds is how many times a race trace repeats its concurrent group
	// (see amplifyRace); 0 for a trace that needed none.
	Rounds int
}

// ErrNoRepro: the violation did not reproduce from the logged ops.
var ErrNoRepro = errors.New("violation did not reproduce from the logged ops")

// BuildTrace turns the logged ops of the users involved in v (the viewer, the
// owners, the consultations the violation names and the patients' own
// consultations with their clinicians) into a
// sequential trace: every op waits for the one before, in the run's
// completion order, up to the violation. concurrent: ops that overlapped in
// time in the run (switches on different consultations) go in one
// concurrent_group instead, for races a sequential replay cannot show.
// The run's target faults (see targetFaults) go in as target ops where they
// struck, while a consultation of the trace was in progress.
func (r *Run) BuildTrace(v oracle.Violation, concurrent, wide bool) (*trace.Trace, error) {
	ledger := r.Ledger
	involved := map[string]bool{}
	consults := map[string]bool{}
	addConsult := func(c models.Consultation) {
		consults[c.ID] = true
		involved[c.Patient], involved[c.Clinician] = true, true
	}
	for _, u := range append([]string{v.Viewer, v.Owner}, v.Owners...) {
		if u != "" {
			involved[u] = true
		}
	}
	if c, ok := ledger.Consultation(v.Consultation); ok {
		addConsult(c)
	}
	if c, ok := ledger.RecordingConsultation(v.Recording); ok {
		addConsult(c)
	}
	// resolve maps an entry's subject to the consultation it acts on.
	resolve := func(e history.Entry) (models.Consultation, bool) {
		switch e.Op {
		case driver.OpJoin, driver.OpSwitch, driver.OpEnd, driver.OpConsultation:
			return ledger.Consultation(e.Subject)
		case driver.OpReplay, driver.OpMedia:
			return ledger.RecordingConsultation(e.Subject)
		}
		return models.Consultation{}, false
	}
	// Frames name the consultation they came from.
	for _, f := range v.Frames {
		if c, ok := ledger.Consultation(f.Consultation); ok {
			addConsult(c)
		}
	}
	cut := v.At.UnixNano()
	// wide: the viewer's and owners' latest consultations before the
	// violation too (a clinician's: the ones around it, not all they ever
	// served), for when the narrow set does not reproduce.
	for _, u := range append([]string{v.Viewer, v.Owner}, v.Owners...) {
		if !wide {
			break
		}
		es := r.History.Of(u)
		picked := map[string]bool{}
		for i := len(es) - 1; i >= 0 && len(picked) < 2; i-- {
			if c, ok := resolve(es[i]); ok && es[i].End <= cut && c.Has(u) && !picked[c.ID] {
				picked[c.ID] = true
				addConsult(c)
			}
		}
	}
	// A patient's own consultations come with their clinicians.
	for u := range copySet(involved) {
		if role, _ := ledger.Role(u); role != models.Patient {
			continue
		}
		for _, e := range r.History.Of(u) {
			if c, ok := resolve(e); ok && c.Patient == u {
				addConsult(c)
			}
		}
	}
	var all []userEntry
	for u := range involved {
		for _, e := range r.History.Of(u) {
			if e.End <= cut {
				all = append(all, userEntry{user: u, Entry: e})
			}
		}
	}
	slices.SortFunc(all, func(a, b userEntry) int { return cmpU64(a.Seq, b.Seq) })

	b := newTraceBuilder()
	faults := r.targetFaults()
	// book observations name the clinician, not the consultation: match them
	// to the patient's consultations with that clinician, in order.
	booked := map[string]bool{}
	for _, e := range all {
		// A fault that opened before this op completed goes before it.
		for len(faults) > 0 && faults[0].e.Start < e.End {
			b.targetOp(faults[0])
			faults = faults[1:]
		}
		u := e.user
		c, hasC := resolve(e.Entry)
		if hasC && !consults[c.ID] {
			continue
		}
		switch e.Op {
		case driver.OpBook:
			if !e.OK {
				continue
			}
			for _, x := range all {
				cx, ok := resolve(x.Entry)
				if ok && consults[cx.ID] && cx.Patient == u && cx.Clinician == e.Subject && !booked[cx.ID] {
					booked[cx.ID] = true
					b.book(u, cx, e.Entry)
					break
				}
			}
		case driver.OpJoin:
			if e.OK && booked[c.ID] && !b.ended[c.ID] {
				b.media[[2]string{u, c.ID}] = trace.OpJoin
				b.op(trace.OpJoin, u, c.ID, 0, e.Entry)
				b.op(trace.OpSendAudio, u, c.ID, reproAudioFrames, e.Entry)
			}
		case driver.OpSwitch:
			if e.OK && booked[c.ID] && !b.ended[c.ID] {
				b.media[[2]string{u, c.ID}] = trace.OpSwitch
				b.op(trace.OpSwitch, u, c.ID, 0, e.Entry)
				b.op(trace.OpSendVideo, u, c.ID, reproVideoFrames, e.Entry)
			}
		case driver.OpEnd:
			// 409 to an end the trace has not made yet: the run's end went
			// through but a fault lost its answer (the runner's retry was told
			// it had ended); the trace ends the consultation there.
			if (e.OK || e.Status == 409) && booked[c.ID] && !b.ended[c.ID] {
				// Both sides send all through a call: one more round of
				// frames before the end (after the other side's switch).
				b.sendRound(c)
				b.ended[c.ID] = true
				b.op(trace.OpEnd, u, c.ID, 0, e.Entry)
			}
		case driver.OpList:
			if e.OK {
				b.op(trace.OpList, u, "", 0, e.Entry)
			}
		case driver.OpReplay, driver.OpMedia, driver.OpConsultation:
			if !hasC || !booked[c.ID] {
				continue
			}
			if c.Has(u) {
				// The run's replay and media requests are one fetch op.
				if e.Op != driver.OpConsultation && e.OK && b.ended[c.ID] && !b.lastIs(u, trace.OpFetch, c.ID) {
					b.op(trace.OpFetch, u, c.ID, 0, e.Entry)
				}
				continue
			}
			// Somebody else's consultation: a probe, denied or not.
			if !b.lastIs(u, trace.OpProbe, c.ID) {
				b.op(trace.OpProbe, u, c.ID, 0, e.Entry)
			}
		}
	}
	// Calls still live at a live-isolation violation send once more: the
	// run's frames kept flowing after the last op logged.
	for _, o := range slices.Clone(b.ops) {
		if v.Invariant == oracle.LiveMediaIsolation && o.kind == trace.OpBook && !b.ended[o.consult] {
			b.ended[o.consult] = true
			b.sendRound(b.booked[o.consult])
		}
	}
	tr := b.finish(ledger, concurrent)
	tr.Header = trace.Header{
		Version: trace.Version, Scenario: r.Scenario.Name, Seed: r.Scenario.Seed, Target: r.Target,
		BugSeed: r.Scenario.Seed, Expect: v.Invariant, Created: time.Now().UTC(),
	}
	// The target was opened with the scenario's bugs seeded by the run seed
	// (setup's target.Options; only the embedded clinic, or a registered
	// driver, takes any): a replay opens it with the same.
	tr.Bugs = slices.Clone(r.Scenario.Bugs)
	if len(tr.Ops) == 0 {
		return nil, fmt.Errorf("%w: no logged ops of the users involved", ErrNoRepro)
	}
	if err := tr.Validate(); err != nil {
		return nil, fmt.Errorf("built trace: %w", err)
	}
	return tr, nil
}

// targetFaults are the run's target faults as target ops in the order they
// struck.
func (r *Run) targetFaults() []builtOp {
	var out []builtOp
	for _, w := range r.TargetFaults {
		k := trace.OpCrashTarget
		if w.Params[chaos.ParamKind] == chaos.KindClinicRestart {
			k = trace.OpRestartTarget
		}
		e := history.Entry{Start: w.Start.UnixNano()}
		if !w.End.IsZero() {
			e.End = w.End.UnixNano()
		}
		out = append(out, builtOp{kind: k, e: e})
	}
	slices.SortStableFunc(out, func(a, b builtOp) int { return cmpU64(uint64(a.e.Start), uint64(b.e.Start)) })
	return out
}

func copySet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// traceBuilder collects ops with real ids and names them with symbols.
type traceBuilder struct {
	ops    []builtOp
	ended  map[string]bool
	media  map[[2]string]trace.Kind // user, consultation -> join or switch (what they send)
	last   map[string]int           // user -> index of their last op
	booked map[string]models.Consultation
}

type builtOp struct {
	kind          trace.Kind
	user, consult string // real ids; "" for target ops
	with          string
	n             int
	e             history.Entry
}

func newTraceBuilder() *traceBuilder {
	return &traceBuilder{ended: map[string]bool{}, media: map[[2]string]trace.Kind{}, last: map[string]int{}, booked: map[string]models.Consultation{}}
}

func (b *traceBuilder) op(k trace.Kind, user, consult string, n int, e history.Entry) {
	b.last[user] = len(b.ops)
	b.ops = append(b.ops, builtOp{kind: k, user: user, consult: consult, n: n, e: e})
}

// targetOp adds a target op (a crash or restart of the target) if a
// consultation of the trace is in progress (booked, not ended): a fault
// outside every consultation's lifetime cannot matter to the trace. The
// calls in progress lose their media (the run's clients rejoined after the
// restart: those joins are logged and come next).
func (b *traceBuilder) targetOp(o builtOp) {
	live := false
	for id, c := range b.booked {
		if b.ended[id] {
			continue
		}
		live = true
		delete(b.media, [2]string{c.Patient, id})
		delete(b.media, [2]string{c.Clinician, id})
	}
	if live {
		b.ops = append(b.ops, o)
	}
}

func (b *traceBuilder) book(patient string, c models.Consultation, e history.Entry) {
	b.booked[c.ID] = c
	b.last[patient] = len(b.ops)
	b.ops = append(b.ops, builtOp{kind: trace.OpBook, user: patient, consult: c.ID, with: c.Clinician, e: e})
}

// sendRound has each participant of c that joined send a round of frames
// (video too once switched).
func (b *traceBuilder) sendRound(c models.Consultation) {
	for _, who := range []string{c.Patient, c.Clinician} {
		switch b.media[[2]string{who, c.ID}] {
		case trace.OpSwitch:
			b.op(trace.OpSendVideo, who, c.ID, reproVideoFrames, history.Entry{})
			fallthrough
		case trace.OpJoin:
			b.op(trace.OpSendAudio, who, c.ID, reproAudioFrames, history.Entry{})
		}
	}
}

func (b *traceBuilder) lastIs(user string, k trace.Kind, consult string) bool {
	i, ok := b.last[user]
	return ok && b.ops[i].kind == k && b.ops[i].consult == consult
}

// finish names users p1.., c1.. and consultations k1.. in order of first
// appearance and chains the ops.
func (b *traceBuilder) finish(ledger *models.Ledger, concurrent bool) *trace.Trace {
	tr := &trace.Trace{}
	users := map[string]string{}
	np, nc := 0, 0
	sym := func(id string) string {
		if id == "" {
			return "" // a target op
		}
		if s, ok := users[id]; ok {
			return s
		}
		role, _ := ledger.Role(id)
		var s string
		if role == models.Clinician {
			nc++
			s = "c" + strconv.Itoa(nc)
		} else {
			role = models.Patient
			np++
			s = "p" + strconv.Itoa(np)
		}
		users[id] = s
		tr.Users = append(tr.Users, trace.User{Name: s, Role: role})
		return s
	}
	consults := map[string]string{}
	for _, o := range b.ops {
		op := trace.Op{Op: o.kind, User: sym(o.user), N: o.n}
		if o.with != "" {
			op.With = sym(o.with)
		}
		if o.consult != "" {
			k, ok := consults[o.consult]
			if !ok {
				k = "k" + strconv.Itoa(len(consults)+1)
				consults[o.consult] = k
			}
			op.Consult = k
		}
		tr.Ops = append(tr.Ops, op)
	}
	chain(tr, b.ops, concurrent)
	return tr
}

// chain makes every op wait for the one before. concurrent: a run of switch
// ops on different consultations whose requests overlapped in the run is
// released together as one concurrent_group (after what preceded the first);
// the op after the group waits for all of it. A switch's send_video follows
// the group.
func chain(tr *trace.Trace, ops []builtOp, concurrent bool) {
	group := 0
	i := 0
	prev := []int{} // what the next op waits for
	for i < len(ops) {
		j := i + 1
		if concurrent && ops[i].kind == trace.OpSwitch {
			// Gather the switches that overlap the first one's request,
			// skipping the send_video ops between them.
			members := []int{i}
			k := i + 1
			for k < len(ops) {
				if ops[k].kind == trace.OpSendVideo {
					k++
					continue
				}
				if ops[k].kind == trace.OpSwitch && ops[k].consult != ops[i].consult && ops[k].e.Start < ops[i].e.End {
					members = append(members, k)
					k++
					continue
				}
				break
			}
			if len(members) > 1 {
				reorderGroup(tr, ops, i, k, members)
				group++
				g := group
				for m := range len(members) {
					tr.Ops[i+m].After = slices.Clone(prev)
					tr.Ops[i+m].Group = &g
				}
				var after []int
				for m := range len(members) {
					after = append(after, i+m)
				}
				// The sends of the group's members follow, one after the other.
				for s := i + len(members); s < k; s++ {
					tr.Ops[s].After = after
					after = []int{s}
				}
				prev = after
				i = k
				continue
			}
		}
		tr.Ops[i].After = slices.Clone(prev)
		prev = []int{i}
		i = j
	}
}

// reorderGroup puts the group's switches first (contiguous, as groups must
// be) and their send_video ops after them, within ops[i:k].
func reorderGroup(tr *trace.Trace, ops []builtOp, i, k int, members []int) {
	var sw, rest []trace.Op
	var swB, restB []builtOp
	for x := i; x < k; x++ {
		if slices.Contains(members, x) {
			sw, swB = append(sw, tr.Ops[x]), append(swB, ops[x])
		} else {
			rest, restB = append(rest, tr.Ops[x]), append(restB, ops[x])
		}
	}
	copy(tr.Ops[i:], append(sw, rest...))
	copy(ops[i:], append(swB, restB...))
}

// hasGroups reports whether a trace built from the run has concurrent groups
// (switches that overlapped in time: worth trying as a concurrent variant).
func hasGroups(tr *trace.Trace) bool {
	for _, op := range tr.Ops {
		if op.Group != nil {
			return true
		}
	}
	return false
}

// probabilistic returns the smallest firing probability below 1 among bugs
// and the id that has it, or false when every bug fires always (what the
// embedded clinic's catalogue says: embedded.Info).
func probabilistic(specs []string) (string, float64, bool) {
	info := embedded.Info(specs)
	return info.MinID, info.MinP, info.Probabilistic
}

// fireSeed searches bug seeds (offline: no execution) for one whose first
// seedRunWanted firing decisions all fire (embedded.FireSeed), so that a
// short sequential trace sees the probabilistic bugs fire every time they
// are consulted. It returns the seed with the longest such run and its
// length.
func fireSeed(specs []string, from uint64) (seed uint64, run int) {
	return embedded.FireSeed(specs, from, seedSearch, seedRunWanted)
}

// racy reports whether a bug of specs only shows under concurrency.
func racy(specs []string) bool { return embedded.Info(specs).Concurrent }

// Write minimises the run's distinct violations (up to MaxTraces
// invariants) into repro-N.trace files in dir within budget (0:
// DefaultBudget) and records the repro commands in the summary s
// (s.Violations parallel to viols). It does nothing without violations or
// once ctx is done.
func Write(ctx context.Context, r *Run, dir string, budget time.Duration, viols []oracle.Violation, s *reports.Summary) {
	if dir == "" || len(viols) == 0 || ctx.Err() != nil || s == nil {
		return
	}
	// The scenario's expected invariant first, then the others in order.
	var picked []int
	seen := map[string]bool{}
	for pass := range 2 {
		for i, v := range viols {
			if (pass == 0) != (v.Invariant == r.Scenario.Expect) || seen[v.Invariant] || len(picked) >= MaxTraces {
				continue
			}
			seen[v.Invariant] = true
			picked = append(picked, i)
		}
	}
	media, err := driver.NewMediaFactory(driver.MediaOptions{LoopbackOnly: true, AllowedRemote: r.AllowedRemote})
	if err != nil {
		r.log().Error("repro traces: media", "err", err)
		return
	}
	total := DefaultBudget
	if budget > 0 {
		total = budget
	}
	deadline := time.Now().Add(total)
	for n, idx := range picked {
		// The first gets two thirds when others follow: it is the one
		// the scenario is about.
		share := time.Until(deadline) / time.Duration(len(picked)-n)
		if n == 0 && len(picked) > 1 {
			share = time.Until(deadline) * 2 / 3
		}
		if share < time.Second || ctx.Err() != nil {
			break
		}
		v := viols[idx]
		r.log().Warn(fmt.Sprintf("minimising violation %d...", idx+1), "invariant", v.Invariant, "budget", share.Round(time.Second))
		file := filepath.Join(dir, fmt.Sprintf("repro-%d.trace", n+1))
		rt, err := r.one(ctx, v, file, share, media)
		if err != nil {
			r.log().Warn("no repro trace", "violation", idx+1, "invariant", v.Invariant, "err", err)
			continue
		}
		rt.Violation = idx
		if idx < len(s.Violations) {
			s.Violations[idx].ReproTrace = rt.Command
		}
		s.ReproTraces = append(s.ReproTraces, rt.Command)
		st := rt.Stats
		r.log().Warn("repro trace written: "+rt.Command, "invariant", v.Invariant,
			"users", fmt.Sprintf("%d->%d", st.UsersBefore, st.UsersAfter), "ops", fmt.Sprintf("%d->%d", st.OpsBefore, st.OpsAfter),
			"candidates", st.Candidates, "took", st.Duration.Round(100*time.Millisecond), "bug_seed", rt.BugSeed,
			"verified", fmt.Sprintf("%d/%d", rt.Verified, rt.VerifyRuns))
	}
}

// one builds, checks, minimises, verifies and writes one violation's trace.
func (r *Run) one(ctx context.Context, v oracle.Violation, file string, budget time.Duration, media *driver.MediaFactory) (Trace, error) {
	start := time.Now()
	parent := ctx                                                  // race amplification gets its own budget
	ctx, cancel := context.WithTimeout(ctx, budget+30*time.Second) // the verification runs after the budget
	defer cancel()
	opts := trace.Options{Media: media}
	// Seeds to try: the one that worked last, then one whose probabilistic
	// bugs fire on every decision of a short trace.
	cur := r.Scenario.Seed
	alt, altRun := fireSeed(r.Scenario.Bugs, cur+1)
	_, _, prob := probabilistic(r.Scenario.Bugs)
	// rounds > 0: a race trace is executed with that many extra rounds of
	// its concurrent group (amplifyRace); minimisation works on the base.
	rounds := 0
	exec := func(c *trace.Trace) *trace.Trace {
		if rounds > 0 {
			if a, ok := amplifyRace(c, rounds); ok {
				return a
			}
		}
		return c
	}
	fails := func(ctx context.Context, c *trace.Trace) (bool, error) {
		seeds := []uint64{cur}
		if prob && alt != cur && altRun > 0 {
			seeds = append(seeds, alt)
		}
		for _, s := range seeds {
			c.BugSeed = s
			out, err := trace.RunOnce(ctx, exec(c), opts)
			if err != nil {
				return false, err
			}
			if out.Reproduced {
				cur = s
				return true, nil
			}
		}
		return false, nil
	}
	tries := 1
	if racy(r.Scenario.Bugs) {
		tries = 3
	}
	reproduces := func(c *trace.Trace) (bool, error) {
		for range tries {
			ok, err := fails(ctx, c)
			if ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	}
	// Narrow first (smaller, faster to minimise), then wide; a race a
	// sequential replay cannot show gets the switches that overlapped in the
	// run released together.
	var tr *trace.Trace
	var tried []string
	for _, shape := range []struct{ concurrent, wide bool }{{false, false}, {false, true}, {true, true}} {
		c, err := r.BuildTrace(v, shape.concurrent, shape.wide)
		if err != nil || (shape.concurrent && !hasGroups(c)) {
			continue
		}
		tried = append(tried, fmt.Sprintf("%d users/%d ops", len(c.Users), len(c.Ops)))
		ok, err := reproduces(c)
		if err == nil && !ok && shape.concurrent && racy(r.Scenario.Bugs) {
			// Released together once, the switches may not overlap at the
			// target: repeat the group after rejoins.
			rounds = RaceRoundsSearch
			tried[len(tried)-1] += fmt.Sprintf(" (and with %d rounds)", rounds)
			if ok, err = reproduces(c); !ok {
				rounds = 0
			}
		}
		if err != nil {
			return Trace{}, err
		}
		if ok {
			tr = c
			break
		}
	}
	if tr == nil {
		return Trace{}, fmt.Errorf("%w (tried %s)", ErrNoRepro, strings.Join(tried, ", "))
	}
	tr.BugSeed = cur
	left := budget - time.Since(start)
	if rounds > 0 {
		tries = 2 // an amplified execution shows the race nine times in ten
	}
	small, st, err := trace.Minimise(ctx, tr, trace.MinOptions{
		Options: opts, Budget: max(left, time.Second), MaxCandidates: reproMaxCandidates, Tries: tries, Fails: fails,
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return Trace{}, fmt.Errorf("minimise: %w", err)
	}
	if err != nil {
		small = tr // the context ran out before anything smaller was found
	}
	st.Duration = time.Since(start)
	small.Created = time.Now().UTC()
	rt := Trace{Invariant: v.Invariant, File: file, Stats: st, BugSeed: small.BugSeed}
	// The written trace must replay: check it twice (a race trace five
	// times) with the seed it carries. A timing-dependent bug can shrink to a trace that showed the
	// violation once and not again: then the unminimised trace is written
	// if it replays better.
	rt.VerifyRuns = 2
	if _, racing := raceGroup(small); racing {
		rt.VerifyRuns = raceVerifyRuns
	}
	verify := func(c *trace.Trace) int {
		n := 0
		for range rt.VerifyRuns {
			out, err := trace.RunOnce(ctx, c, opts)
			if err == nil && out.Reproduced {
				n++
			}
		}
		return n
	}
	rt.Verified = verify(exec(small))
	if rt.Verified < rt.VerifyRuns && small != tr {
		if n := verify(exec(tr)); n > rt.Verified {
			r.log().Warn("the minimised trace replays less often than the unminimised one: writing that", "minimised", rt.Verified, "unminimised", n)
			small, rt.Verified, rt.BugSeed = tr, n, tr.BugSeed
			rt.Stats.UsersAfter, rt.Stats.OpsAfter = len(tr.Users), len(tr.Ops)
		}
	}
	written := exec(small)
	if written != small {
		rt.Rounds = rounds
	}
	if _, racing := raceGroup(small); rt.Verified < rt.VerifyRuns && racing {
		// A race shows when the target happens to interleave the group's
		// requests: give it more rounds until it replays every time.
		actx, cancel := context.WithTimeout(parent, raceAmplifyBudget)
		amp, n, got, ok := amplifyUntilReliable(actx, small, raceRoundsStart, func(c *trace.Trace) bool {
			out, err := trace.RunOnce(actx, c, opts)
			return err == nil && out.Reproduced
		})
		cancel()
		if amp != nil && got*rt.VerifyRuns > rt.Verified*raceVerifyRuns {
			r.log().Warn("race trace amplified: the group's switches repeat after rejoins", "rounds", n, "verified", fmt.Sprintf("%d/%d", got, raceVerifyRuns), "reliable", ok)
			written, rt.Verified, rt.VerifyRuns, rt.Rounds = amp, got, raceVerifyRuns, n
		}
	}
	if rt.Rounds > 0 {
		rt.Stats.OpsAfter = len(written.Ops)
	}
	if rt.Verified < rt.VerifyRuns {
		r.log().Warn("repro trace is flaky (the bug depends on timing)", "invariant", v.Invariant, "verified", fmt.Sprintf("%d/%d", rt.Verified, rt.VerifyRuns))
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return Trace{}, fmt.Errorf("report directory: %w", err)
	}
	if err := written.WriteFile(file); err != nil {
		return Trace{}, err
	}
	rt.Command = "telechaos repro " + ShellQuote(file) + " --times " + strconv.Itoa(Times)
	return rt, nil
}
