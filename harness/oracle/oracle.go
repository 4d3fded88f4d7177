// Package oracle is telechaos' online oracle (docs/design.md section 6): it checks every
// observation of a run against the ownership ledger the moment it is made, and
// collects the violations with small evidence.
//
// Every check is O(1) per observation (CheckFrames is O(frames)), safe for
// concurrent use by hundreds of virtual users, and keeps per-user state only for
// live users (ForgetUser drops it). The ledger (models.Ledger) is the ground
// truth: it is built from what the harness did, never from what the target says,
// so the oracle judges the target with knowledge the target cannot forge.
//
// The oracle never reports what it cannot attribute to a real owner unless the
// item cannot belong to the viewer at all: the correct clinic must pass every
// scenario with zero violations. Its assumption checks (untagged frames,
// unverifiable probes, participants who never looked) are counted in Stats.
package oracle

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telechaos/telechaos/models"
)

// Invariant ids (stable: used in metrics, reports and exit codes); the table
// with their statements is models.Invariants.
const (
	ReplayListOwnership    = models.ReplayListOwnership
	ReplayContentOwnership = models.ReplayContentOwnership
	ReplayAccessControl    = models.ReplayAccessControl
	LiveMediaIsolation     = models.LiveMediaIsolation
	RecordingDurability    = models.RecordingDurability
)

// Invariants lists every invariant id in report order.
var Invariants = models.InvariantIDs()

// Violation is one distinct breach of an invariant with its evidence.
type Violation struct {
	Invariant    string          `json:"invariant"`
	Viewer       string          `json:"viewer"`
	Owner        string          `json:"owner"`            // a real owner (participant of the consultation the item/frames belong to), "" if unattributable
	Owners       []string        `json:"owners,omitempty"` // all real owners
	Recording    string          `json:"recording,omitempty"`
	Consultation string          `json:"consultation,omitempty"`
	Track        string          `json:"track,omitempty"`
	At           time.Time       `json:"at"`
	Detail       string          `json:"detail"`               // one human sentence
	Frames       []FrameEvidence `json:"frames,omitempty"`     // first few offending frames
	RecentOps    []string        `json:"recent_ops,omitempty"` // viewer's (and owner's) recent ops, "user: op", oldest first
}

// FrameEvidence describes one offending frame. Consultation and Sender are the
// ids the ledger resolves the frame's tags to, or "tag:<hex>" when it cannot.
type FrameEvidence struct {
	Index        int    `json:"index"`  // position of the frame in the track (live: in the viewer's stream)
	Offset       int    `json:"offset"` // offset of the watermark in the frame
	Kind         string `json:"kind"`
	Consultation string `json:"consultation"`
	Sender       string `json:"sender"`
	Seq          uint32 `json:"seq"`
}

// Options tune an Oracle. The zero value is usable.
type Options struct {
	OnViolation         func(Violation) // called once per NEW violation, outside the oracle's locks; may be nil
	MaxFrameEvidence    int             // frames kept per violation, default 5
	DurabilityTolerance float64         // fraction of acked frames per track that may be missing, default 0
	RecentOps           int             // ring size of recent ops per user, default 16
	// History, when set, gives a user's recent ops (oldest first, at most
	// RecentOps) for the evidence of users with no noted ops: a runner that
	// already logs every request (for repro traces) lends that log instead
	// of noting each request twice.
	History func(user string) []OpNote
	// MaxViolations bounds the distinct violations kept with their evidence
	// (default 1000): a badly broken target (list-scope at scale) finds one per
	// viewer and item. Past it violations are still deduplicated, counted in
	// Stats and passed to OnViolation, but Violations() does not keep them.
	MaxViolations int
}

// ListItem is one entry of a replay list as the target offered it.
type ListItem struct {
	RecordingID, ConsultationID string
	Participants                []string
}

// TrackMeta is one track of a fetched replay's metadata.
type TrackMeta struct {
	ID, Owner, Kind string
	Segment, Frames int
}

// ReplayMeta is a fetched replay's metadata.
type ReplayMeta struct {
	ID, ConsultationID string
	Participants       []string
	Tracks             []TrackMeta
}

// AckedTrack is one track of the target's answer to end: what it says it wrote.
type AckedTrack struct {
	Owner, Kind     string
	Segment, Frames int
}

// FrameStats summarises one CheckFrames call.
type FrameStats struct {
	Frames   int // frames examined
	Tagged   int // frames with a valid watermark
	Untagged int // frames without one (or with a damaged one): an assumption check, never a violation
	Foreign  int // tagged frames that do not belong to the recording's consultation
	// BySender counts the tagged frames carrying the recording's consultation tag
	// per resolved sender id ("tag:<hex>" if unknown): the durability evidence for
	// Delivered. When the ledger does not know the recording, every tagged frame
	// is counted per sender.
	BySender map[string]int
}

// Stats are the oracle's counters.
type Stats struct {
	ByInvariant         map[string]int // all occurrences, duplicates included
	Distinct            int            // distinct violations (len(Violations()) unless past Options.MaxViolations)
	FramesChecked       int64          // replay frames examined by CheckFrames
	LiveFramesChecked   int64          // live frames examined by CheckLive (consultation known)
	ListsChecked        int64          // CheckList and CheckReplay calls
	ProbesChecked       int64          // probes judged (prober verified as a non-participant)
	DurabilityChecked   int64          // (recording, participant) pairs judged by Finish
	DurabilityUnchecked int64          // pairs not judged: the participant never looked (see Judgement for looks that failed)
	UntaggedFrames      int64          // replay and live frames without a valid watermark
	// Judgement counts, per invariant id, what was judged and what should
	// have been but could not be (see NotJudged).
	Judgement map[string]Judgement
	// Authz is the authorization matrix's tally (nil: not declared, not run).
	Authz *models.AuthzMatrix
}

// Judgement is one invariant's judged share: the observations the oracle
// judged, and those the run should have judged but could not (an unreadable
// answer, a failed fetch of a granted track, a list that never came back
// readable), by reason.
type Judgement struct {
	Judged    int64            `json:"judged"`
	NotJudged int64            `json:"not_judged"`
	Reasons   map[string]int64 `json:"reasons,omitempty"`
	// Examples holds the first detail seen for each reason.
	Examples map[string]string `json:"examples,omitempty"`
}

// Share is Judged / (Judged + NotJudged), or 1 with nothing to judge.
func (j Judgement) Share() float64 {
	if n := j.Judged + j.NotJudged; n > 0 {
		return float64(j.Judged) / float64(n)
	}
	return 1
}

// maxReasons bounds the distinct not-judged reasons kept per invariant; a
// hostile target must not grow the oracle through its error texts.
const maxReasons = 32

const otherReason = "other"

const nShards = 64

// Oracle is the online oracle. Create it with New.
type Oracle struct {
	l    *models.Ledger
	opts Options

	shards [nShards]shard

	lists, probes atomic.Int64

	authz authzTally

	jmu    sync.Mutex
	judged map[string]*Judgement

	vmu   sync.Mutex
	seen  map[vkey]int // distinct violation -> index in list, -1 while being built or not kept
	list  []Violation
	over  int // distinct violations not kept (past MaxViolations)
	byInv map[string]int

	emu          sync.Mutex
	exps         map[string]*expectation // consultation id -> durability expectation
	finished     bool
	durChecked   int64
	durUnchecked int64
	losses       []TrackLoss
	lossIdx      map[[3]string]int
}

type vkey struct{ inv, viewer, subject string }

// shard holds the per-user state of the users hashed to it, and its share of
// the frame counters (so hot paths touch no global cache line).
type shard struct {
	mu       sync.Mutex
	users    map[string]*userState
	frames   int64
	live     int64
	untagged int64
	_        [64]byte // keep shards on separate cache lines
}

type userState struct {
	ops  []OpNote // ring of recent ops
	next int      // next slot in ops
	live map[string]*liveCons
}

// liveCons caches what CheckLive needs about one consultation of a user, so a
// live frame costs one shard lock and three compares.
type liveCons struct {
	c                 models.Consultation
	consTag, allowTag uint64
	frames            int
}

// maxLiveCons bounds the live cache per user (a clinician may serve several
// calls at once); past it the cache is reset, which is only slower.
const maxLiveCons = 8

// New returns an oracle judging against ledger l (nil: an empty ledger, so
// nothing is attributable).
func New(l *models.Ledger, opts Options) *Oracle {
	if l == nil {
		l = models.NewLedger()
	}
	if opts.MaxFrameEvidence <= 0 {
		opts.MaxFrameEvidence = 5
	}
	if opts.RecentOps <= 0 {
		opts.RecentOps = 16
	}
	if opts.MaxViolations <= 0 {
		opts.MaxViolations = 1000
	}
	if !(opts.DurabilityTolerance >= 0) { // NaN too
		opts.DurabilityTolerance = 0
	}
	opts.DurabilityTolerance = min(opts.DurabilityTolerance, 1)
	o := &Oracle{
		l:      l,
		opts:   opts,
		seen:   map[vkey]int{},
		byInv:  map[string]int{},
		exps:   map[string]*expectation{},
		judged: map[string]*Judgement{},
	}
	for i := range o.shards {
		o.shards[i].users = map[string]*userState{}
	}
	return o
}

func (o *Oracle) shardOf(user string) *shard { return &o.shards[models.TagOf(user)%nShards] }

// user returns the state of user, creating it; the caller holds s.mu.
func (s *shard) user(id string) *userState {
	u := s.users[id]
	if u == nil {
		u = &userState{}
		s.users[id] = u
	}
	return u
}

// OpNote is one operation of a user as violations' evidence shows it:
// either a request (Op, Subject, Status, Bytes, Dur, Err), formatted only
// when a violation needs it, or a ready Text.
type OpNote struct {
	Op, Subject   string
	Status, Bytes int
	Dur           time.Duration
	Err           error
	Text          string
}

// String is the note's evidence line, e.g. "list u_1 -> 200 512B 3ms".
func (n OpNote) String() string {
	if n.Text != "" || n.Op == "" {
		return n.Text
	}
	s := fmt.Sprintf("%s %s -> %d %dB %s", n.Op, n.Subject, n.Status, n.Bytes, n.Dur.Round(time.Millisecond))
	// A failed 2xx (a body that did not decode, one too large) must say so:
	// "200 173B" alone hid why a list was unreadable.
	if n.Err != nil {
		s += " err=" + clip(n.Err.Error(), 240)
	}
	return s
}

// NoteOp records a one-line summary of an operation of user, kept in a small
// ring and attached to violations as evidence.
func (o *Oracle) NoteOp(user, summary string) { o.Note(user, OpNote{Text: summary}) }

// Note records an operation of user in its ring (see NoteOp); a request's
// note is formatted only if a violation names the user.
func (o *Oracle) Note(user string, note OpNote) {
	s := o.shardOf(user)
	s.mu.Lock()
	u := s.user(user)
	if len(u.ops) < o.opts.RecentOps {
		if u.ops == nil {
			u.ops = make([]OpNote, 0, min(o.opts.RecentOps, 16)) // one allocation, not one per doubling
		}
		u.ops = append(u.ops, note)
	} else {
		u.ops[u.next] = note
	}
	u.next = (u.next + 1) % o.opts.RecentOps
	s.mu.Unlock()
}

// ForgetUser drops the per-user state of a user that is done (its ops ring and
// live cache). Durability expectations are per consultation and stay until
// Finish; a participant forgotten without calling Delivered is counted as
// unchecked there, not as a violation.
func (o *Oracle) ForgetUser(user string) {
	s := o.shardOf(user)
	s.mu.Lock()
	delete(s.users, user)
	s.mu.Unlock()
}

// recentOps snapshots the rings of the given users, oldest first.
func (o *Oracle) recentOps(users ...string) []string {
	var out []string
	for i, id := range users {
		if id == "" || (i > 0 && id == users[0]) {
			continue
		}
		s := o.shardOf(id)
		s.mu.Lock()
		noted := false
		if u := s.users[id]; u != nil && len(u.ops) > 0 {
			noted = true
			n := len(u.ops)
			start := 0
			if n == o.opts.RecentOps {
				start = u.next
			}
			for k := range n {
				out = append(out, id+": "+u.ops[(start+k)%n].String())
			}
		}
		s.mu.Unlock()
		if !noted && o.opts.History != nil {
			h := o.opts.History(id)
			for _, n := range h[max(len(h)-o.opts.RecentOps, 0):] {
				out = append(out, id+": "+n.String())
			}
		}
	}
	return out
}

// report records one occurrence of a violation. The first occurrence of a
// (invariant, viewer, subject) becomes a distinct violation, built by build only
// then (evidence costs nothing for duplicates); later occurrences are counted and
// may add frame evidence up to MaxFrameEvidence.
func (o *Oracle) report(inv, viewer, subject string, extra []FrameEvidence, build func() Violation) {
	k := vkey{inv, viewer, subject}
	o.vmu.Lock()
	o.byInv[inv]++
	if idx, dup := o.seen[k]; dup {
		if idx >= 0 && len(extra) > 0 {
			v := &o.list[idx]
			if room := o.opts.MaxFrameEvidence - len(v.Frames); room > 0 {
				v.Frames = append(v.Frames, extra[:min(room, len(extra))]...)
			}
		}
		o.vmu.Unlock()
		return
	}
	o.seen[k] = -1 // reserved while the evidence is gathered outside the lock
	keep := len(o.seen)-o.over <= o.opts.MaxViolations
	if !keep {
		o.over++
	}
	o.vmu.Unlock()
	if !keep {
		if o.opts.OnViolation != nil {
			v := build()
			v.Invariant, v.Viewer = inv, viewer
			o.opts.OnViolation(v)
		}
		return
	}

	v := build()
	v.Invariant, v.Viewer = inv, viewer
	v.RecentOps = o.recentOps(viewer, v.Owner)

	o.vmu.Lock()
	o.seen[k] = len(o.list)
	o.list = append(o.list, v)
	o.vmu.Unlock()
	if o.opts.OnViolation != nil {
		o.opts.OnViolation(cloneViolation(v))
	}
}

func cloneViolation(v Violation) Violation {
	v.Owners = append([]string(nil), v.Owners...)
	v.Frames = append([]FrameEvidence(nil), v.Frames...)
	v.RecentOps = append([]string(nil), v.RecentOps...)
	return v
}

// Violations returns the distinct violations in the order they were found.
func (o *Oracle) Violations() []Violation {
	o.vmu.Lock()
	defer o.vmu.Unlock()
	out := make([]Violation, len(o.list))
	for i, v := range o.list {
		out[i] = cloneViolation(v)
	}
	return out
}

// Stats returns the counters so far.
func (o *Oracle) Stats() Stats {
	st := Stats{ByInvariant: map[string]int{}}
	for i := range o.shards {
		s := &o.shards[i]
		s.mu.Lock()
		st.FramesChecked += s.frames
		st.LiveFramesChecked += s.live
		st.UntaggedFrames += s.untagged
		s.mu.Unlock()
	}
	st.ListsChecked = o.lists.Load()
	st.ProbesChecked = o.probes.Load()
	st.Authz = o.AuthzMatrix()
	o.vmu.Lock()
	for k, v := range o.byInv {
		st.ByInvariant[k] = v
	}
	st.Distinct = len(o.list) + o.over
	o.vmu.Unlock()
	o.emu.Lock()
	st.DurabilityChecked, st.DurabilityUnchecked = o.durChecked, o.durUnchecked
	o.emu.Unlock()
	st.Judgement = map[string]Judgement{}
	o.jmu.Lock()
	for inv, j := range o.judged {
		c := Judgement{Judged: j.Judged, NotJudged: j.NotJudged}
		if len(j.Reasons) > 0 {
			c.Reasons, c.Examples = map[string]int64{}, map[string]string{}
			for k, v := range j.Reasons {
				c.Reasons[k] = v
			}
			for k, v := range j.Examples {
				c.Examples[k] = v
			}
		}
		st.Judgement[inv] = c
	}
	o.jmu.Unlock()
	return st
}

// Judged counts n observations of inv as judged. The checks count their own
// (CheckList, CheckFrames, CheckProbe, Finish); a runner counts what only it
// can see, such as a participant of a call who received live frames.
func (o *Oracle) Judged(inv string, n int) {
	if n <= 0 {
		return
	}
	o.jmu.Lock()
	o.judgement(inv).Judged += int64(n)
	o.jmu.Unlock()
}

// NotJudged counts one observation of inv that should have been judged and
// could not be: reason is a short category ("unreadable answer", "no
// answer"), detail the first example kept for the report. It never becomes a
// violation: what could not be read is not evidence of a leak, and the
// verdict weighs the judged share instead.
func (o *Oracle) NotJudged(inv, reason, detail string) {
	o.jmu.Lock()
	defer o.jmu.Unlock()
	j := o.judgement(inv)
	j.NotJudged++
	if j.Reasons == nil {
		j.Reasons, j.Examples = map[string]int64{}, map[string]string{}
	}
	if _, ok := j.Reasons[reason]; !ok && len(j.Reasons) >= maxReasons {
		reason = otherReason
	}
	j.Reasons[reason]++
	if _, ok := j.Examples[reason]; !ok && detail != "" {
		j.Examples[reason] = clip(detail, 300)
	}
}

// judgement returns inv's counters; o.jmu is held.
func (o *Oracle) judgement(inv string) *Judgement {
	j := o.judged[inv]
	if j == nil {
		j = &Judgement{}
		o.judged[inv] = j
	}
	return j
}

// clip keeps at most n bytes of a target-influenced text, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}

// participants returns c's participants with other first (the viewer's
// counterpart reads best as "the owner").
func participants(c models.Consultation) []string { return []string{c.Patient, c.Clinician} }

// ownerFor picks the owner to name: a participant of c who is not viewer.
func ownerFor(c models.Consultation, viewer string) string {
	if c.Patient != viewer {
		return c.Patient
	}
	return c.Clinician
}

// resolveCons and resolveUser name a frame's tags for evidence.
func (o *Oracle) resolveCons(tag uint64) (models.Consultation, string, bool) {
	if c, ok := o.l.ConsultationByTag(tag); ok {
		return c, c.ID, true
	}
	return models.Consultation{}, fmt.Sprintf("tag:%016x", tag), false
}

func (o *Oracle) resolveUser(tag uint64) string {
	if id, ok := o.l.UserByTag(tag); ok {
		return id
	}
	return fmt.Sprintf("tag:%016x", tag)
}

func (o *Oracle) evidence(index, offset int, t models.Tag) (FrameEvidence, models.Consultation, bool) {
	c, cid, ok := o.resolveCons(t.Consultation)
	return FrameEvidence{
		Index: index, Offset: offset, Kind: string(t.Kind),
		Consultation: cid, Sender: o.resolveUser(t.Sender), Seq: t.Seq,
	}, c, ok
}

// ownersOfFrames names the real owners of offending frames seen by viewer. A
// frame's sender, if the ledger knows it, is its owner, and so is the other
// participant of the sender's consultation (an echo of the viewer's own frames
// names the viewer); a frame from an unknown sender is attributed to the
// participants of its consultation, unless the viewer is one of them (then
// nobody real is known).
func (o *Oracle) ownersOfFrames(viewer string, ev []FrameEvidence) (owner string, owners []string) {
	add := func(id string) {
		if slices.Contains(owners, id) {
			return
		}
		owners = append(owners, id)
	}
	for _, f := range ev {
		c, cok := o.l.Consultation(f.Consultation)
		if _, known := o.l.Role(f.Sender); known {
			if owner == "" {
				owner = f.Sender
			}
			add(f.Sender)
			if cok && c.Has(f.Sender) {
				add(c.Patient)
				add(c.Clinician)
			}
			continue
		}
		if cok && !c.Has(viewer) {
			add(c.Patient)
			add(c.Clinician)
		}
	}
	if owner == "" && len(owners) > 0 {
		owner = owners[0]
	}
	return owner, owners
}
