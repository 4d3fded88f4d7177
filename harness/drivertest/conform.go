package drivertest

// The conformance suite: every clause of the target contract (docs/api.md)
// that the oracle relies on, run in order against one target through
// harness/client, the client a run's virtual users, trace replay and the
// properties use. Run is the testing entry point (one subtest per clause),
// Check the same checks for the CLI (telechaos conform).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v3"

	"github.com/telechaos/telechaos/harness/client"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/models"
)

// The clauses, in the order they run. A clause runs only when every clause
// it needs held; otherwise it is reported NotRun, never passed.
const (
	ClauseOpen      = "open"       // the target opens
	ClauseHealth    = "health"     // its health check answers
	ClauseRegister  = "register"   // a patient, a clinician and another patient register
	ClauseBook      = "book"       // the patient books the clinician; both read the consultation
	ClauseJoin      = "join"       // both join with a real audio offer; the answers connect ICE and DTLS
	ClauseForward   = "forward"    // each participant receives the other's audio live
	ClauseSwitch    = "switch"     // both renegotiate to video on the same PeerConnection; video is forwarded
	ClauseRejoin    = "rejoin"     // both join again with new PeerConnections: a new segment each
	ClauseEnd       = "end"        // end acknowledges a track per participant and kind, the consultation names the recording
	ClauseList      = "list"       // after end the recording is listed for both participants
	ClauseReplay    = "replay"     // both read the replay; its tracks are those acknowledged
	ClauseFetch     = "fetch"      // both fetch and parse every track; they hold what was acknowledged
	ClauseDeny      = "deny"       // another user is denied the consultation, the replay and every track, and does not list it
	ClauseSecondEnd = "second-end" // a second end is refused with 409 and changes nothing
)

// Result is a clause's outcome.
type Result string

// The outcomes. NotRun: a clause it needs did not hold, so it proved nothing.
const (
	Pass   Result = "pass"
	Fail   Result = "FAIL"
	NotRun Result = "not run"
)

// ClauseResult is one clause's outcome. A failure's Detail says what is
// wrong; Request and Answer quote the exchange with the target that showed it
// (empty when no request was involved).
type ClauseResult struct {
	Clause    string
	Statement string // what the clause requires
	Result    Result
	Detail    string
	Request   string
	Answer    string
	Duration  time.Duration
}

func (r ClauseResult) String() string {
	s := fmt.Sprintf("%s: %s: %s", r.Clause, r.Result, r.Detail)
	if r.Request != "" {
		s += "\n\trequest: " + r.Request
	}
	if r.Answer != "" {
		s += "\n\tanswer:  " + r.Answer
	}
	return s
}

// Opener opens the target under test. The suite closes what it returns.
type Opener func(ctx context.Context) (*target.Opened, error)

// OpenRef opens ref through the target registry (target.Open): "embedded",
// an http(s) URL, or any registered scheme.
func OpenRef(ref string, opts target.Options) Opener {
	return func(ctx context.Context) (*target.Opened, error) { return target.Open(ctx, ref, opts) }
}

// OpenTarget wraps a function returning a bare driver.Target: media goes to
// loopback only (use an Opener with Opened.MediaHost for a remote target).
func OpenTarget(open func(ctx context.Context) (driver.Target, error)) Opener {
	return func(ctx context.Context) (*target.Opened, error) {
		t, err := open(ctx)
		if err != nil {
			return nil, err
		}
		if t == nil {
			return nil, errors.New("the opener returned a nil driver.Target")
		}
		return &target.Opened{Target: t}, nil
	}
}

// Options tune the suite; the zero value is the default.
type Options struct {
	// Settle bounds how long after an end the recording may take to be
	// listed (default 5 s; the list is polled, so a prompt target costs
	// nothing).
	Settle time.Duration
	// LiveWait bounds how long forwarded media may take to arrive (default
	// 10 s; polled too).
	LiveWait time.Duration
	// Media configures the client side of the calls. The zero value is what
	// a run uses: loopback gathering, ICE checks allowed to the opened
	// target's MediaHost (driver.DefaultAllowedRemote) when AllowedRemote
	// is empty.
	Media driver.MediaOptions
}

func (o Options) withDefaults() Options {
	if o.Settle <= 0 {
		o.Settle = 5 * time.Second
	}
	if o.LiveWait <= 0 {
		o.LiveWait = 10 * time.Second
	}
	return o
}

// T is what Run needs of a test: *testing.T satisfies it (T = *testing.T,
// inferred). The package takes it as a type parameter rather than importing
// testing, so the CLI's telechaos conform links the same checks without the
// test framework (internal/archtest keeps testing out of the binaries).
type T[Self any] interface {
	Helper()
	Cleanup(func())
	Context() context.Context
	Run(name string, f func(Self)) bool
	Error(args ...any)
	Skip(args ...any)
	Logf(format string, args ...any)
}

// Run runs every clause against the target open opens, each as a subtest
// named after it (call it as drivertest.Run(t, open) with a *testing.T): a
// failing clause fails with what is wrong, the request and the answer; a
// clause that could not run (one it needs failed) is skipped, saying why.
func Run[Test T[Test]](t Test, open Opener) {
	t.Helper()
	RunWith(t, open, Options{})
}

// RunWith is Run with options.
func RunWith[Test T[Test]](t Test, open Opener, opts Options) {
	t.Helper()
	s := newSuite(open, opts)
	t.Cleanup(s.close)
	ctx := t.Context()
	for _, c := range clauses {
		t.Run(c.name, func(t Test) {
			r := s.do(ctx, c)
			switch r.Result {
			case Fail:
				t.Error(r.String())
			case NotRun:
				t.Skip(r.String())
			default:
				t.Logf("%s (%s)", r.Detail, r.Duration.Round(time.Millisecond))
			}
		})
	}
}

// Check runs every clause against the target open opens and returns their
// results in order (the CLI's telechaos conform).
func Check(ctx context.Context, open Opener, opts Options) []ClauseResult {
	s := newSuite(open, opts)
	defer s.close()
	out := make([]ClauseResult, 0, len(clauses))
	for _, c := range clauses {
		out = append(out, s.do(ctx, c))
	}
	return out
}

// Clauses lists the clause names in the order they run.
func Clauses() []string {
	out := make([]string, len(clauses))
	for i, c := range clauses {
		out[i] = c.name
	}
	return out
}

type clause struct {
	name, statement string
	needs           []string
	run             func(s *suite, ctx context.Context) (detail string, err error)
}

var clauses = []clause{
	{ClauseOpen, "the target opens", nil, (*suite).open},
	{ClauseHealth, "the health check answers", []string{ClauseOpen}, (*suite).health},
	{ClauseRegister, "patients and clinicians register with distinct ids and tokens", []string{ClauseOpen}, (*suite).register},
	{ClauseBook, "a patient books a clinician; both read the consultation", []string{ClauseRegister}, (*suite).book},
	{ClauseJoin, "both join with an audio SDP offer; the answers connect ICE and DTLS", []string{ClauseBook}, (*suite).join},
	{ClauseForward, "each participant receives the other's audio live", []string{ClauseJoin}, (*suite).forward},
	{ClauseSwitch, "a video re-offer on the same PeerConnection is answered; video is forwarded", []string{ClauseJoin}, (*suite).switchVideo},
	{ClauseRejoin, "a join with a new PeerConnection is a new segment", []string{ClauseJoin}, (*suite).rejoin},
	{ClauseEnd, "end acknowledges a track per participant and kind sent; the consultation names the recording", []string{ClauseJoin}, (*suite).end},
	{ClauseList, "after end the recording is listed for both participants", []string{ClauseEnd}, (*suite).list},
	{ClauseReplay, "both participants read the replay; its tracks are the acknowledged ones", []string{ClauseEnd}, (*suite).replay},
	{ClauseFetch, "both participants fetch and parse every track; each holds what was acknowledged", []string{ClauseReplay}, (*suite).fetch},
	{ClauseDeny, "another user is denied the consultation, the replay and every track, and does not list it", []string{ClauseEnd}, (*suite).deny},
	{ClauseSecondEnd, "a second end is refused (409) and changes nothing", []string{ClauseEnd}, (*suite).secondEnd},
}

// failure is a clause's failure naming the exchange that showed it.
type failure struct {
	msg string
	ex  *Exchange
}

func (f *failure) Error() string { return f.msg }

func failAt(ex Exchange, format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), ex: &ex}
}

func failNoEx(format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...)}
}

// suite is one conformance run: one target, one client, one ledger and
// oracle, the users and call the clauses share.
type suite struct {
	openf Opener
	opts  Options

	opened *target.Opened
	rec    *recorder
	media  *driver.MediaFactory
	ledger *models.Ledger
	or     *oracle.Oracle
	cl     *client.Client
	hooks  *hooks

	results map[string]Result

	patient, clinician, other driver.Session
	cons                      models.Consultation
	call                      *client.Call
	pp, pc                    *client.Participant
	sent                      map[[2]string]int // (owner, kind) -> frames sent, every segment
	segs                      map[string][]int  // user -> segments its joins were given
	switched, rejoined        bool
	ended                     driver.EndResult
}

func newSuite(open Opener, opts Options) *suite {
	return &suite{openf: open, opts: opts.withDefaults(), results: map[string]Result{},
		sent: map[[2]string]int{}, segs: map[string][]int{}}
}

func (s *suite) close() {
	if s.call != nil {
		s.call.ClosePeers()
	}
	if s.opened != nil {
		s.opened.Close()
	}
}

// do runs one clause, unless a clause it needs did not hold.
func (s *suite) do(ctx context.Context, c clause) ClauseResult {
	r := ClauseResult{Clause: c.name, Statement: c.statement}
	for _, n := range c.needs {
		switch s.results[n] {
		case Pass:
			continue
		case Fail:
			r.Result, r.Detail = NotRun, fmt.Sprintf("needs %s, which failed", n)
		default:
			r.Result, r.Detail = NotRun, fmt.Sprintf("needs %s, which did not run", n)
		}
		s.results[c.name] = r.Result
		return r
	}
	if err := ctx.Err(); err != nil {
		r.Result, r.Detail = NotRun, "stopped: "+err.Error()
		s.results[c.name] = r.Result
		return r
	}
	mark, nviol := 0, 0
	if s.rec != nil {
		mark = s.rec.mark()
	}
	if s.or != nil {
		nviol = len(s.or.Violations())
	}
	st := time.Now()
	detail, err := c.run(s, ctx)
	r.Duration = time.Since(st)
	if err == nil && s.or != nil {
		// What the oracle saw during the clause: a violation is a failure of
		// the clause whatever its own checks said.
		if vs := s.or.Violations(); len(vs) > nviol {
			v := vs[nviol]
			err = failNoEx("the oracle found a %s violation: %s", v.Invariant, v.Detail)
		}
	}
	if err == nil {
		r.Result, r.Detail = Pass, detail
		s.results[c.name] = Pass
		return r
	}
	r.Result, r.Detail = Fail, err.Error()
	if ctx.Err() != nil {
		// Stopped by the caller: it proved nothing either way.
		r.Result, r.Detail = NotRun, "stopped: "+err.Error()
	}
	var f *failure
	var ex Exchange
	found := false
	if errors.As(err, &f) && f.ex != nil {
		ex, found = *f.ex, true
	} else if s.rec != nil {
		ex, found = s.blame(mark, err)
	}
	if found {
		r.Request, r.Answer = ex.Request, ex.Answer
	}
	s.results[c.name] = r.Result
	return r
}

// blame picks the exchange of a clause (from mark) that err is about: the
// last failed one naming an id err names, else the last naming such an id,
// else the last failed one, else the last.
func (s *suite) blame(mark int, err error) (Exchange, bool) {
	text := err.Error()
	named := func(e Exchange) bool {
		return e.User != "" && strings.Contains(text, e.User) || e.Subject != "" && strings.Contains(text, e.Subject)
	}
	for _, m := range []func(Exchange) bool{
		func(e Exchange) bool { return e.Err != nil && named(e) },
		named,
		func(e Exchange) bool { return e.Err != nil },
		nil,
	} {
		if ex, ok := s.rec.last(mark, m); ok {
			return ex, true
		}
	}
	return Exchange{}, false
}

// hooks are the suite's side of the client: every request once (a
// conformance check reports what the target answered, it does not retry),
// failed steps that did not end an op kept for the clause.
type hooks struct {
	client.NopHooks
	mu    sync.Mutex
	notes []string
}

func (h *hooks) NoteErr(user, step string, err error) {
	h.mu.Lock()
	h.notes = append(h.notes, fmt.Sprintf("%s (%s): %v", step, user, err))
	h.mu.Unlock()
}

func (h *hooks) mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.notes)
}

func (h *hooks) since(mark int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.notes[mark:])
}

func (s *suite) open(ctx context.Context) (string, error) {
	op, err := s.openf(ctx)
	if err != nil {
		return "", failNoEx("open: %v", err)
	}
	if op == nil || op.Target == nil {
		if op != nil {
			op.Close()
		}
		return "", failNoEx("open: the opener returned no target")
	}
	s.opened = op
	mo := s.opts.Media
	if len(mo.AllowedRemote) == 0 && op.MediaHost != "" {
		allowed, err := driver.DefaultAllowedRemote(ctx, op.MediaHost)
		if err != nil {
			return "", failNoEx("media: allowed ICE remotes of %s: %v", op.MediaHost, err)
		}
		mo.AllowedRemote = allowed
	}
	media, err := driver.NewMediaFactory(mo)
	if err != nil {
		return "", failNoEx("media: %v", err)
	}
	s.media = media
	s.rec = newRecorder(op.Target)
	s.ledger = models.NewLedger()
	s.or = oracle.New(s.ledger, oracle.Options{})
	s.hooks = &hooks{}
	s.cl = client.New(s.rec, media, s.ledger, s.or, client.Options{Hooks: s.hooks})
	where := op.URL
	if where == "" {
		where = fmt.Sprintf("%T", op.Target)
	}
	media0 := op.MediaHost
	if media0 == "" {
		media0 = "loopback"
	}
	return fmt.Sprintf("%s (media to %s)", where, media0), nil
}

func (s *suite) health(ctx context.Context) (string, error) {
	if err := s.rec.Health(ctx); err != nil {
		return "", err
	}
	return "healthy", nil
}

func (s *suite) register(ctx context.Context) (string, error) {
	seen := map[string]string{}
	for _, w := range []struct {
		name string
		role models.Role
		dst  *driver.Session
	}{{"patient", models.Patient, &s.patient}, {"clinician", models.Clinician, &s.clinician}, {"other patient", models.Patient, &s.other}} {
		mark := s.rec.mark()
		u, err := s.cl.Register(ctx, w.role)
		if err != nil {
			return "", fmt.Errorf("register the %s: %w", w.name, err)
		}
		ex, _ := s.rec.last(mark, nil)
		switch {
		case u.ID == "":
			return "", failAt(ex, "the %s was registered without an id", w.name)
		case u.Token == "":
			return "", failAt(ex, "the %s %s was registered without a token", w.name, u.ID)
		case u.Role != w.role:
			return "", failAt(ex, "registered as a %s, the %s came back as role %q", w.role, w.name, u.Role)
		case seen[u.ID] != "":
			return "", failAt(ex, "the %s got id %s, already the %s's", w.name, u.ID, seen[u.ID])
		}
		seen[u.ID] = w.name
		s.rec.name(u.ID, w.name)
		*w.dst = u
	}
	return fmt.Sprintf("patient %s, clinician %s, other patient %s", s.patient.ID, s.clinician.ID, s.other.ID), nil
}

func (s *suite) book(ctx context.Context) (string, error) {
	mark := s.rec.mark()
	cons, err := s.cl.Book(ctx, s.patient, s.clinician.ID)
	if err != nil {
		return "", err
	}
	ex, _ := s.rec.last(mark, nil)
	b, _ := ex.value.(driver.Booking)
	switch {
	case cons.ID == "":
		return "", failAt(ex, "the booking names no consultation")
	case b.PatientID != "" && b.PatientID != s.patient.ID:
		return "", failAt(ex, "the booking names patient %s, not the patient %s who booked", b.PatientID, s.patient.ID)
	case b.ClinicianID != "" && b.ClinicianID != s.clinician.ID:
		return "", failAt(ex, "the booking names clinician %s, not the clinician %s booked", b.ClinicianID, s.clinician.ID)
	}
	for _, u := range []driver.Session{s.patient, s.clinician} {
		m := s.rec.mark()
		ci, err := s.rec.Consultation(ctx, u, cons.ID)
		ex, _ := s.rec.last(m, nil)
		switch {
		case err != nil:
			return "", failAt(ex, "a participant cannot read the consultation just booked")
		case ci.ID != cons.ID || ci.PatientID != s.patient.ID || ci.ClinicianID != s.clinician.ID:
			return "", failAt(ex, "the consultation reads as %s between %s and %s, want %s between %s and %s",
				ci.ID, ci.PatientID, ci.ClinicianID, cons.ID, s.patient.ID, s.clinician.ID)
		case ci.State == "ended":
			return "", failAt(ex, "a consultation just booked is already ended")
		}
	}
	s.cons = cons
	s.call = s.cl.NewCall(cons)
	s.pp, s.pc = s.call.Participant(s.patient), s.call.Participant(s.clinician)
	return fmt.Sprintf("consultation %s, read by both participants", cons.ID), nil
}

func (s *suite) parts() []*client.Participant { return []*client.Participant{s.pp, s.pc} }

func (s *suite) join(ctx context.Context) (string, error) {
	if err := s.call.Connect(ctx, s.parts(), nil); err != nil {
		return "", err
	}
	for _, p := range s.parts() {
		s.segs[p.S.ID] = append(s.segs[p.S.ID], p.Segment())
	}
	return fmt.Sprintf("both connected (ICE and DTLS), segments %d and %d", s.pp.Segment(), s.pc.Segment()), nil
}

// minSteps is how many 20 ms media steps a clause streams at least: half a
// second of audio (and, once switched, video at 15 frames/s), enough to see
// forwarding and to count in the recording.
const minSteps = 25

// stream sends media as a call does, one step every client.AudioInterval
// from every participant (audio, and video at client.VideoPerSecond once
// switched), counting what was sent, for at least minSteps steps and then
// until done says so (nil: at once) or LiveWait runs out. It reports
// whether done held.
func (s *suite) stream(ctx context.Context, video bool, done func() bool) (bool, error) {
	deadline := time.Now().Add(s.opts.LiveWait)
	tick := time.NewTicker(client.AudioInterval)
	defer tick.Stop()
	for n := 0; ; n++ {
		for _, p := range s.parts() {
			kinds := []models.Kind{models.Audio}
			if video && (n+1)*client.VideoPerSecond/client.AudioPerSecond != n*client.VideoPerSecond/client.AudioPerSecond {
				kinds = append(kinds, models.Video)
			}
			for _, k := range kinds {
				err := p.Send(k)
				if errors.Is(err, driver.ErrNotReady) {
					continue // not bound yet: a real app drops it too
				}
				if err != nil {
					return false, failNoEx("sending %s as %s: %v", k, p.S.ID, err)
				}
				s.sent[[2]string{p.S.ID, string(k)}]++
			}
		}
		if n+1 >= minSteps && (done == nil || done()) {
			return true, nil
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
	}
}

// received reports whether every participant's peer received a frame of
// kind live (from the other: the target forwards nothing else).
func (s *suite) received(kind models.Kind) func() bool {
	return func() bool {
		for _, p := range s.parts() {
			peer := p.Peer()
			if peer == nil {
				return false
			}
			st := peer.Stats()
			if kind == models.Video && st.VideoReceived == 0 || kind == models.Audio && st.AudioReceived == 0 {
				return false
			}
		}
		return true
	}
}

// liveCounts describes what each participant's peer sent and received.
func (s *suite) liveCounts() string {
	var out []string
	for _, p := range s.parts() {
		if peer := p.Peer(); peer != nil {
			st := peer.Stats()
			out = append(out, fmt.Sprintf("%s sent %d audio %d video, received %d audio %d video",
				p.S.ID, st.AudioSent, st.VideoSent, st.AudioReceived, st.VideoReceived))
		}
	}
	return strings.Join(out, "; ")
}

func (s *suite) forward(ctx context.Context) (string, error) {
	ok, err := s.stream(ctx, false, s.received(models.Audio))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", failNoEx("within %s a participant received no audio live from the other: %s", s.opts.LiveWait, s.liveCounts())
	}
	// Each must have received a judgeable frame from the other: the
	// oracle's live-media-isolation needs both.
	s.call.JudgeLive(ctx)
	if j := s.or.Stats().Judgement[oracle.LiveMediaIsolation]; j.NotJudged > 0 {
		var ex []string
		for _, e := range j.Examples {
			ex = append(ex, e)
		}
		slices.Sort(ex)
		return "", failNoEx("live media could not be judged: %s (%s)", strings.Join(ex, "; "), s.liveCounts())
	}
	return s.liveCounts(), nil
}

func (s *suite) switchVideo(ctx context.Context) (string, error) {
	for _, p := range s.parts() {
		peer := p.Peer()
		o, err := p.PrepareSwitch(ctx)
		if err != nil {
			return "", err
		}
		if err := p.FireSwitch(ctx, o, false); err != nil {
			return "", err
		}
		if p.Peer() != peer {
			return "", failNoEx("the switch of %s replaced its PeerConnection", p.S.ID)
		}
		if st := peer.State(); st != webrtc.PeerConnectionStateConnected {
			return "", failNoEx("after renegotiating to video the PeerConnection of %s is %s, not connected", p.S.ID, st)
		}
	}
	s.switched = true
	ok, err := s.stream(ctx, true, s.received(models.Video))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", failNoEx("within %s of both switching a participant received no video live from the other: %s", s.opts.LiveWait, s.liveCounts())
	}
	return "renegotiated on the same PeerConnections; " + s.liveCounts(), nil
}

func (s *suite) rejoin(ctx context.Context) (string, error) {
	nm := s.hooks.mark()
	if err := s.call.Rejoin(ctx, s.parts()); err != nil {
		return "", err
	}
	if notes := s.hooks.since(nm); len(notes) > 0 {
		return "", failNoEx("rejoined, but switching to video again failed: %s", strings.Join(notes, "; "))
	}
	var segs []string
	for _, p := range s.parts() {
		prev := s.segs[p.S.ID]
		seg := p.Segment()
		s.segs[p.S.ID] = append(prev, seg)
		if slices.Contains(prev, seg) {
			ex, _ := s.rec.last(0, func(e Exchange) bool { return e.Op == driver.OpJoin && e.User == p.S.ID })
			return "", failAt(ex, "the rejoin of %s was given segment %d again (its joins so far: %v): a new PeerConnection is a new segment", p.S.ID, seg, prev)
		}
		segs = append(segs, fmt.Sprintf("%s %v", p.S.ID, s.segs[p.S.ID]))
	}
	s.rejoined = true
	if _, err := s.stream(ctx, s.switched, nil); err != nil {
		return "", err
	}
	return "new segments: " + strings.Join(segs, ", "), nil
}

func (s *suite) end(ctx context.Context) (string, error) {
	mark := s.rec.mark()
	res, err := s.call.End(ctx, s.clinician)
	if err != nil {
		return "", err
	}
	ex, _ := s.rec.last(mark, func(e Exchange) bool { return e.Op == driver.OpEnd })
	if res.ConsultationID != s.cons.ID {
		return "", failAt(ex, "the end answer names consultation %q, not %s", res.ConsultationID, s.cons.ID)
	}
	acked := map[[2]string]int{}
	segs := map[[2]string]map[int]bool{}
	ids := map[string]bool{}
	for _, t := range res.Tracks {
		k := [2]string{t.Owner, t.Kind}
		switch {
		case t.ID == "":
			return "", failAt(ex, "a track without an id")
		case ids[t.ID]:
			return "", failAt(ex, "track id %s acknowledged twice", t.ID)
		case !s.cons.Has(t.Owner):
			return "", failAt(ex, "track %s is owned by %q, not a participant", t.ID, t.Owner)
		case t.Kind != string(models.Audio) && t.Kind != string(models.Video):
			return "", failAt(ex, "track %s has kind %q, want audio or video", t.ID, t.Kind)
		case t.Frames < 0:
			return "", failAt(ex, "track %s acknowledges %d frames", t.ID, t.Frames)
		}
		ids[t.ID] = true
		acked[k] += t.Frames
		if segs[k] == nil {
			segs[k] = map[int]bool{}
		}
		segs[k][t.Segment] = true
	}
	var summary []string
	for _, owner := range []string{s.patient.ID, s.clinician.ID} {
		for _, kind := range []models.Kind{models.Audio, models.Video} {
			k := [2]string{owner, string(kind)}
			sent := s.sent[k]
			if sent == 0 {
				continue
			}
			switch {
			case acked[k] == 0:
				return "", failAt(ex, "no frame of %s's %s acknowledged (%d sent): the end answer must acknowledge, per track, the frames recorded", owner, kind, sent)
			case acked[k] > sent:
				return "", failAt(ex, "%d frames of %s's %s acknowledged, more than the %d sent", acked[k], owner, kind, sent)
			case s.rejoined && len(segs[k]) < 2:
				return "", failAt(ex, "%s's %s is acknowledged in %d segment(s) after a rejoin: want a track per segment", owner, kind, len(segs[k]))
			}
			summary = append(summary, fmt.Sprintf("%s %s %d/%d", owner, kind, acked[k], sent))
		}
	}
	s.ended = res
	// The oracle's durability expectation; the calls' peers are gone.
	s.call.Expect(nil)
	s.call.JudgeLive(ctx)
	s.call.ClosePeers()
	m := s.rec.mark()
	ci, err := s.rec.Consultation(ctx, s.patient, s.cons.ID)
	cex, _ := s.rec.last(m, nil)
	switch {
	case err != nil:
		return "", failAt(cex, "the patient cannot read the consultation after its end")
	case ci.RecordingID != res.RecordingID:
		return "", failAt(cex, "after the end the consultation names recording %q, not %s (a client that lost the end's answer finds it there)", ci.RecordingID, res.RecordingID)
	case ci.State != "ended":
		return "", failAt(cex, "after the end the consultation is %q, not ended", ci.State)
	}
	return fmt.Sprintf("recording %s, %d tracks; frames acknowledged/sent: %s", res.RecordingID, len(res.Tracks), strings.Join(summary, ", ")), nil
}

func (s *suite) list(ctx context.Context) (string, error) {
	rid := s.ended.RecordingID
	st := time.Now()
	for _, u := range []driver.Session{s.patient, s.clinician} {
		deadline := time.Now().Add(s.opts.Settle)
		wait := 100 * time.Millisecond
		for {
			mark := s.rec.mark()
			items, err := s.cl.List(ctx, u)
			if err != nil {
				return "", err
			}
			ex, _ := s.rec.last(mark, nil)
			i := slices.IndexFunc(items, func(it driver.ReplaySummary) bool { return it.ID == rid })
			if i >= 0 {
				it := items[i]
				if it.ConsultationID != s.cons.ID {
					return "", failAt(ex, "recording %s is listed for consultation %q, not %s", rid, it.ConsultationID, s.cons.ID)
				}
				if len(it.Participants) > 0 && (!slices.Contains(it.Participants, s.patient.ID) || !slices.Contains(it.Participants, s.clinician.ID)) {
					return "", failAt(ex, "recording %s is listed with participants %v, want %s and %s", rid, it.Participants, s.patient.ID, s.clinician.ID)
				}
				break
			}
			if !time.Now().Add(wait).Before(deadline) || ctx.Err() != nil {
				return "", failAt(ex, "recording %s of ended consultation %s is not in the list of %s after %s", rid, s.cons.ID, u.ID, s.opts.Settle)
			}
			time.Sleep(wait)
			wait = min(2*wait, time.Second)
		}
	}
	return fmt.Sprintf("listed for both participants (within %s)", time.Since(st).Round(time.Millisecond)), nil
}

func (s *suite) replay(ctx context.Context) (string, error) {
	rid := s.ended.RecordingID
	for _, u := range []driver.Session{s.patient, s.clinician} {
		mark := s.rec.mark()
		if err := s.cl.Replay(ctx, u, s.cons, rid, false); err != nil {
			return "", err
		}
		ex, _ := s.rec.last(mark, func(e Exchange) bool { return e.Op == driver.OpReplay })
		rep, _ := ex.value.(driver.Replay)
		if rep.ID != rid || rep.ConsultationID != s.cons.ID {
			return "", failAt(ex, "replay %s reads as recording %q of consultation %q", rid, rep.ID, rep.ConsultationID)
		}
		for _, t := range s.ended.Tracks {
			i := slices.IndexFunc(rep.Tracks, func(r driver.TrackInfo) bool { return r.ID == t.ID })
			if i < 0 {
				return "", failAt(ex, "acknowledged track %s (%s's %s, segment %d) is not in the replay", t.ID, t.Owner, t.Kind, t.Segment)
			}
			if r := rep.Tracks[i]; r.Owner != t.Owner || r.Kind != t.Kind {
				return "", failAt(ex, "track %s is %s's %s in the replay but was acknowledged as %s's %s", t.ID, r.Owner, r.Kind, t.Owner, t.Kind)
			}
		}
	}
	return fmt.Sprintf("read by both participants, the %d acknowledged tracks in it", len(s.ended.Tracks)), nil
}

func (s *suite) fetch(ctx context.Context) (string, error) {
	rid := s.ended.RecordingID
	var frames []string
	for _, u := range []driver.Session{s.patient, s.clinician} {
		mark := s.rec.mark()
		// The client fetches the metadata and every track, parses each
		// (client.ReadTrack) and hands the frames to the oracle.
		if err := s.cl.Replay(ctx, u, s.cons, rid, true); err != nil {
			return "", err
		}
		if u.ID != s.patient.ID {
			continue
		}
		ex, _ := s.rec.last(mark, func(e Exchange) bool { return e.Op == driver.OpReplay })
		rep, _ := ex.value.(driver.Replay)
		for _, t := range rep.Tracks {
			mex, ok := s.rec.last(mark, func(e Exchange) bool { return e.Op == driver.OpMedia && e.Subject == rid+"/"+t.ID })
			b, _ := mex.value.([]byte)
			if !ok {
				continue
			}
			fs, err := client.ReadTrack(t, b)
			if err != nil {
				return "", failAt(mex, "track %s: %v", t.ID, err)
			}
			frames = append(frames, fmt.Sprintf("%s/%s/%d %d", t.Owner, t.Kind, t.Segment, len(fs)))
		}
	}
	// Both participants looked: the durability expectation is judged now.
	s.or.Finish(time.Now())
	st := s.or.Stats()
	if j := st.Judgement[oracle.RecordingDurability]; j.NotJudged > 0 || st.DurabilityChecked != 2 {
		return "", failNoEx("recording-durability judged %d of 2 participants' looks (%d could not be: %v)", st.DurabilityChecked, j.NotJudged, j.Examples)
	}
	return "frames per track (owner/kind/segment): " + strings.Join(frames, ", "), nil
}

func (s *suite) deny(ctx context.Context) (string, error) {
	rid := s.ended.RecordingID
	pt := client.ProbeTarget{Recording: rid, Consultation: s.cons.ID}
	for _, t := range s.ended.Tracks {
		pt.Tracks = append(pt.Tracks, t.ID)
	}
	mark := s.rec.mark()
	// One probe per track (Probe fetches the track pick chooses), each with
	// the replay and the consultation.
	for i := range max(1, len(pt.Tracks)) {
		if err := s.cl.Probe(ctx, s.other, pt, uint64(i)<<32); err != nil {
			return "", err
		}
	}
	var first *Exchange
	served := map[driver.Op]int{}
	var ops []driver.Op
	for _, ex := range s.rec.since(mark, func(e Exchange) bool { return e.User == s.other.ID }) {
		if driver.IsDenied(ex.Err) {
			continue
		}
		if first == nil {
			first = &ex
		}
		if served[ex.Op] == 0 {
			ops = append(ops, ex.Op)
		}
		served[ex.Op]++
	}
	if first != nil {
		var what []string
		for _, op := range ops {
			what = append(what, fmt.Sprintf("%s (%d requests)", op, served[op]))
		}
		return "", failAt(*first, "another user's ids were not denied (want 401, 403 or 404): %s", strings.Join(what, ", "))
	}
	lm := s.rec.mark()
	items, err := s.cl.List(ctx, s.other)
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(items, func(it driver.ReplaySummary) bool { return it.ID == rid || it.ConsultationID == s.cons.ID }) {
		ex, _ := s.rec.last(lm, nil)
		return "", failAt(ex, "recording %s is listed for %s, who took no part in it", rid, s.other.ID)
	}
	return fmt.Sprintf("%s denied the consultation, the replay and %d tracks; not in its list", s.other.ID, len(pt.Tracks)), nil
}

func (s *suite) secondEnd(ctx context.Context) (string, error) {
	mark := s.rec.mark()
	if err := s.call.EndAgain(ctx, s.patient); err != nil {
		ex, _ := s.rec.last(mark, nil)
		return "", failAt(ex, "%v", err)
	}
	ex, _ := s.rec.last(mark, nil)
	m := s.rec.mark()
	ci, err := s.rec.Consultation(ctx, s.patient, s.cons.ID)
	cex, _ := s.rec.last(m, nil)
	switch {
	case err != nil:
		return "", failAt(cex, "after a refused second end the patient cannot read the consultation")
	case ci.RecordingID != s.ended.RecordingID:
		return "", failAt(cex, "a refused second end changed the consultation's recording from %s to %q", s.ended.RecordingID, ci.RecordingID)
	}
	return "refused: " + ex.Answer, nil
}
