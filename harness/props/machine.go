// Package props holds telechaos' rapid properties (docs/design.md section 9): a
// sequential model-based state machine over the driver against a fresh
// embedded clinic per check, and concurrent schedules drawn by rapid and run by
// the trace executor. Both record what they did as a trace, so the minimal
// failing case rapid shrinks to can be written out and replayed with
// `telechaos repro`.
//
// The generators and the machine live here, outside the tests, so that the
// telechaos command can use them too.
package props

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"pgregory.net/rapid"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/harness/trace"
	"github.com/telechaos/telechaos/models"
)

// Invariant ids the machine reports besides the oracle's (same ids where the
// meaning is the same).
const (
	// OpFailed: an op the model says is valid failed (the target broke the
	// contract, or the infrastructure did).
	OpFailed = "op-failed"
)

// Config configures the properties.
type Config struct {
	// Target is the target reference each check opens through the target
	// registry (package harness/target); "" = a fresh embedded clinic.
	Target  string
	Bugs    []string // clinic bug specs (ID or ID:P), for the embedded target
	BugSeed uint64
	Media   *driver.MediaFactory // shared across checks; required
	DataDir string               // parent of each check's clinic data directory ("" = os.TempDir())
	// MaxUsers and MaxConsults bound the users a sequential check registers
	// and the consultations it books (default 5 and 4). Every catalogue bug
	// shows with 3 users and 2 consultations: smaller bounds make rapid's
	// failing cases, and its shrinking, shorter.
	MaxUsers    int
	MaxConsults int
	// PreRegister registers MaxUsers users (one clinician, the rest
	// patients) before the first action. With only the two register actions
	// valid in an empty machine, rapid's draws (biased towards the first
	// action names) can skip 100 times in a row and abort the check with
	// "can't find a valid action"; the bug tests start from users instead.
	PreRegister bool
	// Tries: executions of one concurrent schedule, failing if any shows a
	// violation (default 1).
	Tries int
}

// Failure is the first broken invariant of a check.
type Failure struct {
	Invariant string
	Detail    string
}

// Run is what one check did: the actions in order, the trace of every op
// (Check's lists included) and the failure, if any.
type Run struct {
	Actions []string
	Trace   *trace.Trace
	Failure *Failure
}

// Recorder keeps the last check's Run. rapid runs the minimal failing case
// last, so after a failed rapid.Check, Last is the shrunk case.
type Recorder struct {
	mu       sync.Mutex
	last     *Run
	smallest *Run
	runs     int
	found    int // the check (1-based) that failed first; 0 = none yet
}

func (r *Recorder) set(run *Run) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.last, r.runs = run, r.runs+1
	if run.Failure != nil && r.found == 0 {
		r.found = r.runs
	}
	if run.Failure != nil && (r.smallest == nil || len(run.Actions) <= len(r.smallest.Actions)) {
		r.smallest = run
	}
	r.mu.Unlock()
}

// Smallest returns the failing run with the fewest actions (the latest of
// equals), nil if none failed. For a bug that shows only sometimes, rapid's
// final re-run of its shrunk case may pass ("flaky test"): Smallest is then
// the shrunk case's last failing execution.
func (r *Recorder) Smallest() *Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.smallest
}

// Last returns the last check's run (nil before any).
func (r *Recorder) Last() *Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// FoundAt is the number of the first check that failed (1-based; shrink
// attempts come after it), 0 if none failed: how much of a check budget
// finding a bug took.
func (r *Recorder) FoundAt() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.found
}

// Runs counts the checks executed (shrink attempts included).
func (r *Recorder) Runs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs
}

// mUser and mCons are the model's view.
type mUser struct {
	sym  string
	role models.Role
}

type mCons struct {
	sym, patient, clinician string
	joined, switched, ended bool
}

func (c *mCons) has(u string) bool { return u == c.patient || u == c.clinician }

// Machine is the sequential model-based state machine: each action is one or
// two trace ops run through a trace.Session on a fresh embedded clinic, the
// models ledger and the oracle are the model, and Check runs after every
// action.
type Machine struct {
	cfg    Config
	ctx    context.Context
	opened *target.Opened
	ledger *models.Ledger
	or     *oracle.Oracle
	sess   *trace.Session
	run    *Run

	users    []*mUser
	consults []*mCons
}

// NewMachine opens a fresh target for one check (Config.Target through the
// target registry, default an embedded clinic); t.Cleanup closes it.
func NewMachine(t *rapid.T, cfg Config) *Machine {
	if cfg.MaxUsers <= 0 {
		cfg.MaxUsers = 5
	}
	if cfg.MaxConsults <= 0 {
		cfg.MaxConsults = 4
	}
	m := &Machine{cfg: cfg, ctx: t.Context()}
	ref := cfg.Target
	if ref == "" {
		ref = trace.TargetEmbedded
	}
	op, err := target.Open(m.ctx, ref, target.Options{Bugs: cfg.Bugs, BugSeed: cfg.BugSeed, TempDir: cfg.DataDir, KeepAddr: true})
	if err != nil {
		t.Fatalf("open target: %v", err)
	}
	m.opened = op
	m.ledger = models.NewLedger()
	m.or = oracle.New(m.ledger, oracle.Options{})
	m.sess = trace.NewSession(op.Target, cfg.Media, m.ledger, m.or)
	t.Cleanup(m.close)
	m.run = &Run{Trace: &trace.Trace{Header: trace.Header{
		Version: trace.Version, Scenario: "props-sequential", Target: ref,
		Bugs: slices.Clone(cfg.Bugs), BugSeed: cfg.BugSeed, Created: time.Now().UTC().Truncate(time.Second),
	}}}
	if cfg.PreRegister {
		m.register(t, models.Clinician)
		for len(m.users) < cfg.MaxUsers {
			m.register(t, models.Patient)
		}
	}
	return m
}

func (m *Machine) close() {
	m.sess.Close()
	m.opened.Close()
}

// Run returns what the check did so far.
func (m *Machine) Run() *Run { return m.run }

// fail records the first failure. The rest of the action is a no-op, the
// Check after it stops t.Repeat (see stopRepeat) and the property fails once,
// at the end, with the invariant alone as the message: rapid shrinks only
// while a smaller case fails with the same message at the same place (the
// same stack), and ids (even symbols, numbered by registration) change as the
// case shrinks. The detail, in symbols, is in Run.Failure and the log.
func (m *Machine) fail(t *rapid.T, inv, format string, args ...any) {
	if m.run.Failure != nil {
		return
	}
	detail := m.sess.Symbolize(fmt.Sprintf(format, args...))
	m.run.Failure = &Failure{Invariant: inv, Detail: detail}
	m.run.Trace.Expect = inv
	t.Logf("%s: %s", inv, detail)
}

// failed says whether the check has failed already.
func (m *Machine) failed() bool { return m.run.Failure != nil }

// do appends op to the trace (after the previous op: the machine is
// sequential) and runs it.
func (m *Machine) do(t *rapid.T, op trace.Op) {
	tr := m.run.Trace
	if n := len(tr.Ops); n > 0 {
		op.After = []int{n - 1}
	}
	if m.failed() {
		return
	}
	tr.Ops = append(tr.Ops, op)
	ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
	defer cancel()
	if err := m.sess.Do(ctx, op); err != nil {
		m.fail(t, OpFailed, "op %d (%s): %v", len(tr.Ops)-1, op, err)
	}
}

// action logs an action; those after a failure are not part of the case.
func (m *Machine) action(name string) {
	if !m.failed() {
		m.run.Actions = append(m.run.Actions, name)
	}
}

func (m *Machine) register(t *rapid.T, role models.Role) {
	if len(m.users) >= m.cfg.MaxUsers {
		t.Skip("enough users")
	}
	n := 1
	for _, u := range m.users {
		if u.role == role {
			n++
		}
	}
	sym := fmt.Sprintf("%c%d", role[0], n)
	u := &mUser{sym: sym, role: role}
	m.users = append(m.users, u)
	m.run.Trace.Users = append(m.run.Trace.Users, trace.User{Name: sym, Role: role})
	m.sess.Declare(trace.User{Name: sym, Role: role})
	m.action("register " + sym)
	m.do(t, trace.Op{Op: trace.OpRegister, User: sym})
}

func (m *Machine) usersOf(role models.Role) []string {
	var out []string
	for _, u := range m.users {
		if role == "" || u.role == role {
			out = append(out, u.sym)
		}
	}
	return out
}

// pick draws one consultation satisfying ok, or skips the action.
func (m *Machine) pick(t *rapid.T, label string, ok func(*mCons) bool) *mCons {
	var cs []*mCons
	for _, c := range m.consults {
		if ok(c) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		t.Skip("no consultation for " + label)
	}
	return rapid.SampledFrom(cs).Draw(t, label)
}

// Actions is the action map for t.Repeat; "" is Check, which ends the
// repetition with a panic once the check failed: run it with m.Repeat.
func (m *Machine) Actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"":                  m.Check,
		"RegisterPatient":   func(t *rapid.T) { m.register(t, models.Patient) },
		"RegisterClinician": func(t *rapid.T) { m.register(t, models.Clinician) },
		"Book":              m.Book,
		"Join":              m.Join,
		"Switch":            m.Switch,
		"Send":              m.Send,
		"End":               m.End,
		"List":              m.List,
		"Fetch":             m.Fetch,
		"Probe":             m.Probe,
	}
}

// Book: a patient books with a clinician.
func (m *Machine) Book(t *rapid.T) {
	ps, cs := m.usersOf(models.Patient), m.usersOf(models.Clinician)
	if len(ps) == 0 || len(cs) == 0 || len(m.consults) >= m.cfg.MaxConsults {
		t.Skip("nobody to book")
	}
	p := rapid.SampledFrom(ps).Draw(t, "patient")
	c := rapid.SampledFrom(cs).Draw(t, "clinician")
	k := &mCons{sym: fmt.Sprintf("k%d", len(m.consults)+1), patient: p, clinician: c}
	m.consults = append(m.consults, k)
	m.action(fmt.Sprintf("book %s %s with %s", k.sym, p, c))
	m.do(t, trace.Op{Op: trace.OpBook, User: p, With: c, Consult: k.sym})
}

// Join: both participants join with audio (real PeerConnections).
func (m *Machine) Join(t *rapid.T) {
	k := m.pick(t, "join", func(c *mCons) bool { return !c.joined && !c.ended })
	m.action("join " + k.sym)
	m.join(t, k)
}

func (m *Machine) join(t *rapid.T, k *mCons) {
	k.joined = true
	m.do(t, trace.Op{Op: trace.OpJoin, User: k.patient, Consult: k.sym})
	m.do(t, trace.Op{Op: trace.OpJoin, User: k.clinician, Consult: k.sym})
}

// Switch: both participants re-offer with video (joining first if they have
// not: the intent "a video call" in one action keeps shrunk cases short).
func (m *Machine) Switch(t *rapid.T) {
	k := m.pick(t, "switch", func(c *mCons) bool { return !c.switched && !c.ended })
	m.action("switch " + k.sym)
	if !k.joined {
		m.join(t, k)
	}
	k.switched = true
	m.do(t, trace.Op{Op: trace.OpSwitch, User: k.patient, Consult: k.sym})
	m.do(t, trace.Op{Op: trace.OpSwitch, User: k.clinician, Consult: k.sym})
}

// Send: both participants send a handful of watermarked frames (video too
// once switched), joining first if needed.
func (m *Machine) Send(t *rapid.T) {
	k := m.pick(t, "send", func(c *mCons) bool { return !c.ended })
	n := rapid.IntRange(1, 5).Draw(t, "frames")
	m.action(fmt.Sprintf("send %s n=%d", k.sym, n))
	if !k.joined {
		m.join(t, k)
	}
	for _, u := range []string{k.patient, k.clinician} {
		m.do(t, trace.Op{Op: trace.OpSendAudio, User: u, Consult: k.sym, N: n})
		if k.switched {
			m.do(t, trace.Op{Op: trace.OpSendVideo, User: u, Consult: k.sym, N: n})
		}
	}
}

// End: a participant ends the call (joined or not: the recording is
// finalised either way).
func (m *Machine) End(t *rapid.T) {
	k := m.pick(t, "end", func(c *mCons) bool { return !c.ended })
	by := rapid.SampledFrom([]string{k.patient, k.clinician}).Draw(t, "by")
	k.ended = true
	m.action(fmt.Sprintf("end %s by %s", k.sym, by))
	m.do(t, trace.Op{Op: trace.OpEnd, User: by, Consult: k.sym})
}

// List: a user lists replays (Check does so for everyone too).
func (m *Machine) List(t *rapid.T) {
	us := m.usersOf("")
	if len(us) == 0 {
		t.Skip("no users")
	}
	u := rapid.SampledFrom(us).Draw(t, "user")
	m.action("list " + u)
	m.do(t, trace.Op{Op: trace.OpList, User: u})
}

// Fetch: a participant fetches an ended consultation's replay and media.
func (m *Machine) Fetch(t *rapid.T) {
	k := m.pick(t, "fetch", func(c *mCons) bool { return c.ended })
	u := rapid.SampledFrom([]string{k.patient, k.clinician}).Draw(t, "user")
	m.action(fmt.Sprintf("fetch %s by %s", k.sym, u))
	m.do(t, trace.Op{Op: trace.OpFetch, User: u, Consult: k.sym})
}

// Probe: a user who took no part fetches someone else's recording by its
// real id.
func (m *Machine) Probe(t *rapid.T) {
	k := m.pick(t, "probe", func(c *mCons) bool {
		if !c.ended {
			return false
		}
		for _, u := range m.users {
			if !c.has(u.sym) {
				return true
			}
		}
		return false
	})
	var others []string
	for _, u := range m.users {
		if !k.has(u.sym) {
			others = append(others, u.sym)
		}
	}
	u := rapid.SampledFrom(others).Draw(t, "prober")
	m.action(fmt.Sprintf("probe %s by %s", k.sym, u))
	m.do(t, trace.Op{Op: trace.OpProbe, User: u, Consult: k.sym})
}

// Check runs after every action: the oracle has nothing, and every user's
// replay list (judged by the oracle too) is exactly the recordings of the
// ended consultations they took part in (docs/api.md: after end the recording
// is listed for both participants and nobody else).
func (m *Machine) Check(t *rapid.T) {
	if !m.failed() {
		m.check(t)
	}
	if m.failed() {
		// Stop drawing actions: a failing case then ends at its failure,
		// so rapid's shrinker has no trailing no-op actions to remove one
		// expensive execution at a time.
		panic(stopRepeat{})
	}
}

// stopRepeat is the panic with which Check ends t.Repeat once the check has
// failed; Repeat recovers it.
type stopRepeat struct{}

// Repeat runs t.Repeat over the actions until the check fails.
func (m *Machine) Repeat(t *rapid.T) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopRepeat); !ok {
				panic(r)
			}
		}
	}()
	t.Repeat(m.Actions())
}

func (m *Machine) check(t *rapid.T) {
	m.checkOracle(t)
	for _, u := range m.users {
		m.do(t, trace.Op{Op: trace.OpList, User: u.sym})
		m.checkOracle(t)
		want := map[string]string{} // recording -> consultation symbol
		for _, k := range m.consults {
			if rid, ended := m.sess.Recording(k.sym); ended && k.has(u.sym) {
				want[rid] = k.sym
			}
		}
		got := map[string]bool{}
		for _, it := range m.sess.LastList(u.sym) {
			got[it.ID] = true
			if _, ok := want[it.ID]; !ok {
				m.fail(t, oracle.ReplayListOwnership, "%s is offered recording %s (consultation %s), which is not a recording of theirs", u.sym, it.ID, it.ConsultationID)
			}
		}
		for rid, k := range want {
			if !got[rid] {
				m.fail(t, oracle.RecordingDurability, "recording %s of %s, ended, is not listed for its participant %s", rid, k, u.sym)
			}
		}
	}
	// Every ended recording, fetched by its patient: frames and metadata
	// belong to the consultation (a recording can change after its end only
	// through a defect, so this runs after every action).
	for _, k := range m.consults {
		if k.ended {
			m.do(t, trace.Op{Op: trace.OpFetch, User: k.patient, Consult: k.sym})
		}
	}
	m.checkOracle(t)
}

func (m *Machine) checkOracle(t *rapid.T) {
	if vs := m.or.Violations(); len(vs) > 0 {
		m.fail(t, vs[0].Invariant, "%s", vs[0].Detail)
	}
}

// Finish ends the check: the oracle's settle-time checks (durability) run and
// must find nothing.
func (m *Machine) Finish(t *rapid.T) {
	m.sess.Close()
	if !m.failed() {
		m.or.Finish(time.Now())
		m.checkOracle(t)
	}
	if m.failed() {
		t.Fatalf("%s", m.run.Failure.Invariant)
	}
}

// SequentialProperty is the sequential model-based property: a fresh clinic
// per check, t.Repeat over the machine's actions, the oracle's final checks.
// rec (may be nil) keeps each check's Run.
func SequentialProperty(cfg Config, rec *Recorder) func(*rapid.T) {
	return func(t *rapid.T) {
		m := NewMachine(t, cfg)
		defer rec.set(m.run)
		m.Repeat(t)
		m.Finish(t)
	}
}
