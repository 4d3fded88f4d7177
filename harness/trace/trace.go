// Package trace is telechaos' replayable record of a failure: a versioned
// JSON-lines format (a header, the users, the operations with their ordering
// constraints), an executor that replays a trace against a target with real
// WebRTC and judges it with the same online oracle as a run, a delta-debugging
// minimiser, and Repro, behind `telechaos repro`.
//
// Format (version 1), one JSON object per line:
//
//	{"telechaos_trace":1,"scenario":"incident-2020-06-09","seed":1,"target":"embedded","bugs":["switch-reuse:1"],"bug_seed":1,"expect":"replay-list-ownership","created":"2025-01-02T03:04:05Z"}
//	{"user":"p1","role":"patient"}
//	{"user":"c1","role":"clinician"}
//	{"op":"register","user":"p1"}
//	{"op":"book","user":"p1","with":"c1","consult":"k1","after":[0]}
//	{"op":"join","user":"p1","consult":"k1","after":[1],"concurrent_group":1}
//
// Users and consultations are symbols (p1, c1, k1): a user line declares a user
// symbol, a book op defines a consultation symbol; execution binds them to the
// target's real ids, so a trace replays against any target with new users.
// An op starts once every op in its "after" list (0-based op indexes, earlier
// ops only) has completed, and once the ops defining its symbols have; the ops
// of one concurrent_group (contiguous lines) are released together.
//
// Operations. Every op but the target ops names its "user":
//
//	register   user registers (implicit at start when a user has no register op)
//	book       patient "user" books clinician "with", defining consultation "consult"
//	join       user joins "consult" with a new PeerConnection (audio); a rejoin replaces the old one
//	send_audio user sends "n" (1..1000) watermarked audio frames in "consult"
//	switch     user re-offers with video on the same PeerConnection
//	send_video user sends "n" watermarked video frames in "consult"
//	end        user ends "consult" (both leave, the recording is finalised)
//	list       user lists their replays
//	replay     user fetches consult's recording metadata
//	fetch      user fetches consult's recording metadata and every track's media
//	probe      user fetches another consultation's recording, consultation and a track by real id
//
// Target ops act on the target itself and take no user, consult, with or n;
// they need the embedded target (a URL target cannot be crashed from here):
//
//	{"op":"crash_target","after":[5]}    the clinic crashes (nothing finalised, connections cut) and starts again on the same data directory and address
//	{"op":"restart_target","after":[5]}  the clinic closes gracefully (open tracks finalised) and starts again likewise
//
// Both cut the media of calls in progress: a later join of the call rejoins
// with a new PeerConnection (a new segment of the recording). A consultation
// a target op reached (one happened after its first join and before its end)
// is judged against the frames its clients sent (every segment), less a
// baseline of 1% + 3 frames and the frames sent while the op was in progress,
// as a run judges calls a clinic fault reached; other consultations against the
// target's acknowledgement only. Version 1 readers older than these ops reject
// them as unknown operations; traces without them are unchanged.
//
// Limits: a trace holds at most MaxOps (50,000) ops and MaxUsers (10,000)
// users, and a trace file at most MaxFileSize (16 MiB); a larger one is
// refused when read, naming the limit (ErrTooLarge). A replay runs at most
// MaxConcurrentOps (64) ops at once, so its open connections and file
// descriptors stay bounded however wide the trace.
package trace

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	// The embedded target: what a header's bugs mean, and the "embedded"
	// scheme registered for RunOnce (traces default to it).
	"github.com/telechaos/telechaos/harness/embedded"
	"github.com/telechaos/telechaos/models"
)

// Version is the format version this package reads and writes.
const Version = 1

// TargetEmbedded names the in-process reference clinic as a trace's target.
const TargetEmbedded = "embedded"

// MaxFrames bounds an op's n (frames sent by one send op).
const MaxFrames = 1000

// Size limits of a trace. A repro trace is a few dozen ops (a violation's
// users and their recent history); these leave two orders of magnitude of
// room and keep a replay's memory and goroutines bounded (one goroutine per
// op waits for its dependencies). A trace over one is refused when it is
// read (Parse, ParseFile) or validated, naming the limit.
const (
	MaxOps      = 50_000   // ops in one trace
	MaxUsers    = 10_000   // declared users
	MaxFileSize = 16 << 20 // bytes of a trace file (16 MiB)
)

// ErrTooLarge: a trace over MaxOps, MaxUsers or MaxFileSize.
var ErrTooLarge = errors.New("trace too large")

// Kind is an operation name.
type Kind string

// The operations.
const (
	OpRegister  Kind = "register"   // user registers (implicit at start when a user has no register op)
	OpBook      Kind = "book"       // patient user books with clinician "with", defining consultation "consult"
	OpJoin      Kind = "join"       // user joins consult with a new PeerConnection (audio)
	OpSendAudio Kind = "send_audio" // user sends n watermarked audio frames in consult
	OpSwitch    Kind = "switch"     // user re-offers with video on the same PeerConnection
	OpSendVideo Kind = "send_video" // user sends n watermarked video frames in consult
	OpEnd       Kind = "end"        // user ends consult (both leave, the recording is finalised)
	OpList      Kind = "list"       // user lists their replays
	OpReplay    Kind = "replay"     // user fetches consult's recording metadata
	OpFetch     Kind = "fetch"      // user fetches consult's recording metadata and every track's media
	OpProbe     Kind = "probe"      // user fetches another consultation's recording, consultation and a track by real id
	// Target ops (no user): see the package comment.
	OpCrashTarget   Kind = "crash_target"   // the target crashes and starts again on the same data and address
	OpRestartTarget Kind = "restart_target" // the target closes gracefully and starts again on the same data and address
)

// Kinds lists every operation in a stable order.
var Kinds = []Kind{OpRegister, OpBook, OpJoin, OpSendAudio, OpSwitch, OpSendVideo, OpEnd, OpList, OpReplay, OpFetch, OpProbe, OpCrashTarget, OpRestartTarget}

// Target reports whether k acts on the target itself (no user, consult, with
// or n): crash_target and restart_target.
func (k Kind) Target() bool { return k == OpCrashTarget || k == OpRestartTarget }

// needsConsult and needsN say which fields an op requires.
func (k Kind) needsConsult() bool {
	switch k {
	case OpRegister, OpList, OpCrashTarget, OpRestartTarget:
		return false
	}
	return true
}

func (k Kind) needsN() bool { return k == OpSendAudio || k == OpSendVideo }

// Header is line 1.
type Header struct {
	Version  int       `json:"telechaos_trace"`
	Scenario string    `json:"scenario,omitempty"`
	Seed     uint64    `json:"seed"`
	Target   string    `json:"target"` // "embedded", a base URL or another registered target reference
	Bugs     []string  `json:"bugs,omitempty"`
	BugSeed  uint64    `json:"bug_seed"`
	Expect   string    `json:"expect,omitempty"` // the invariant id the trace shows violated
	Created  time.Time `json:"created"`
}

// User declares a user symbol.
type User struct {
	Name string      `json:"user"`
	Role models.Role `json:"role"`
}

// Op is one operation.
type Op struct {
	Op      Kind   `json:"op"`
	User    string `json:"user,omitempty"` // "" only for target ops
	With    string `json:"with,omitempty"`
	Consult string `json:"consult,omitempty"`
	N       int    `json:"n,omitempty"`
	After   []int  `json:"after,omitempty"`
	Group   *int   `json:"concurrent_group,omitempty"`
}

// String is a one-line summary, e.g. "send_audio p1 k1 n=5", "crash_target".
func (o Op) String() string {
	s := string(o.Op)
	if o.User != "" {
		s += " " + o.User
	}
	if o.With != "" {
		s += " with " + o.With
	}
	if o.Consult != "" {
		s += " " + o.Consult
	}
	if o.N > 0 {
		s += fmt.Sprintf(" n=%d", o.N)
	}
	return s
}

// Trace is a parsed trace.
type Trace struct {
	Header
	Users []User
	Ops   []Op
}

// Errors of Parse and Validate (errors.Is); a *ParseError names the line.
var (
	ErrSyntax        = errors.New("not a JSON object")
	ErrTruncated     = errors.New("truncated line")
	ErrVersion       = errors.New("unsupported trace version")
	ErrUnknownOp     = errors.New("unknown operation")
	ErrUnknownSymbol = errors.New("unknown symbol")
	ErrMissingField  = errors.New("missing field")
	ErrBadField      = errors.New("bad field")
	ErrEmpty         = errors.New("empty trace")
)

// ParseError is a problem on one line of a trace (1-based).
type ParseError struct {
	File string // "" when parsing a reader
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("trace line %d: %v", e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// line is the union of every line shape; which fields are set says what it is.
type line struct {
	Version  *int       `json:"telechaos_trace"`
	Scenario *string    `json:"scenario"`
	Seed     *uint64    `json:"seed"`
	Target   *string    `json:"target"`
	Bugs     []string   `json:"bugs"`
	BugSeed  *uint64    `json:"bug_seed"`
	Expect   *string    `json:"expect"`
	Created  *time.Time `json:"created"`

	User    *string `json:"user"`
	Role    *string `json:"role"`
	Op      *string `json:"op"`
	With    *string `json:"with"`
	Consult *string `json:"consult"`
	N       *int    `json:"n"`
	After   []int   `json:"after"`
	Group   *int    `json:"concurrent_group"`
}

func (l *line) isHeader() bool {
	return l.Version != nil || l.Scenario != nil || l.Seed != nil || l.Target != nil || l.Bugs != nil || l.BugSeed != nil || l.Expect != nil || l.Created != nil
}

// maxLine bounds one line (a trace line is well under 1 KiB).
const maxLine = 64 << 10

// ParseFile reads and parses a trace file; errors name the file and line.
func ParseFile(path string) (*Trace, error) {
	return ParseFileContext(context.Background(), path)
}

// ParseFileContext is ParseFile whose read ctx cancels (SIGINT), also one
// waiting on a pipe or a terminal. At most MaxFileSize bytes are read: a
// longer file (or /dev/zero) is refused with ErrTooLarge. The file is opened
// non-blocking, so a FIFO without a writer reads as empty instead of hanging.
func ParseFileContext(ctx context.Context, path string) (*Trace, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	tr, err := Parse(&limitReader{r: f, left: MaxFileSize})
	if ctx.Err() != nil {
		return nil, fmt.Errorf("read trace %s: %w", path, ctx.Err())
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		pe.File = path
	}
	return tr, err
}

// limitReader fails with ErrTooLarge past left bytes (io.LimitReader would
// end silently, and a cut trace could parse).
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w: file over %d MiB (MaxFileSize)", ErrTooLarge, MaxFileSize>>20)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// Parse reads a trace and validates it (see Validate). Blank lines are
// ignored. Errors are *ParseError naming the line.
func Parse(r io.Reader) (*Trace, error) {
	br := bufio.NewReaderSize(r, 4096)
	tr := &Trace{}
	sawHeader := false
	opLines := []int{} // file line of each op, for Validate's errors
	userLines := map[string]int{}
	for n := 1; ; n++ {
		raw, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, &ParseError{Line: n, Err: err}
		}
		if raw == nil && errors.Is(err, io.EOF) {
			break
		}
		last := errors.Is(err, io.EOF)
		text := bytes.TrimSpace(raw)
		if len(text) == 0 {
			if last {
				break
			}
			continue
		}
		var l line
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&l); derr != nil {
			return nil, &ParseError{Line: n, Err: jsonErr(derr, text)}
		}
		if dec.More() {
			return nil, &ParseError{Line: n, Err: fmt.Errorf("%w: more than one JSON value on the line", ErrSyntax)}
		}
		if !sawHeader {
			if err := tr.header(&l); err != nil {
				return nil, &ParseError{Line: n, Err: err}
			}
			sawHeader = true
			continue
		}
		switch {
		case l.isHeader():
			return nil, &ParseError{Line: n, Err: fmt.Errorf("%w: header fields (telechaos_trace, seed, target...) belong on line 1 only", ErrBadField)}
		case l.Op != nil:
			op, err := opOf(&l)
			if err != nil {
				return nil, &ParseError{Line: n, Err: err}
			}
			if len(tr.Ops) == MaxOps {
				return nil, &ParseError{Line: n, Err: fmt.Errorf("%w: more than %d ops (MaxOps)", ErrTooLarge, MaxOps)}
			}
			tr.Ops = append(tr.Ops, op)
			opLines = append(opLines, n)
		case l.Role != nil || l.User != nil:
			u, err := userOf(&l)
			if err != nil {
				return nil, &ParseError{Line: n, Err: err}
			}
			if prev, dup := userLines[u.Name]; dup {
				return nil, &ParseError{Line: n, Err: fmt.Errorf("%w: user %s declared again (first on line %d)", ErrBadField, u.Name, prev)}
			}
			if len(tr.Users) == MaxUsers {
				return nil, &ParseError{Line: n, Err: fmt.Errorf("%w: more than %d users (MaxUsers)", ErrTooLarge, MaxUsers)}
			}
			userLines[u.Name] = n
			tr.Users = append(tr.Users, u)
		default:
			return nil, &ParseError{Line: n, Err: fmt.Errorf("%w: a line is a header, a user {\"user\",\"role\"} or an operation {\"op\",...}", ErrMissingField)}
		}
		if last {
			break
		}
	}
	if !sawHeader {
		return nil, &ParseError{Line: 1, Err: fmt.Errorf("%w: no header line", ErrEmpty)}
	}
	if idx, err := tr.validate(userLines, opLines); err != nil {
		return nil, &ParseError{Line: idx, Err: err}
	}
	return tr, nil
}

// readLine returns one line without its newline; io.EOF with the last line
// when it has no newline (or nil at the very end).
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		out = append(out, chunk...)
		if len(out) > maxLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrBadField, maxLine)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(out) == 0 {
					return nil, io.EOF
				}
				return out, io.EOF
			}
			return nil, err
		}
		if !isPrefix {
			if out == nil {
				out = []byte{}
			}
			return out, nil
		}
	}
}

// jsonErr says what is wrong with a line that does not decode.
func jsonErr(err error, text []byte) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &se) && se.Offset >= int64(len(text))):
		return fmt.Errorf("%w (the JSON object ends early: %q)", ErrTruncated, excerpt(text))
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("%w: got a JSON %s", ErrSyntax, te.Value)
	case errors.As(err, &te):
		return fmt.Errorf("%w: field %q: want %s, got %s", ErrBadField, te.Field, te.Type, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return fmt.Errorf("%w: %s", ErrBadField, strings.TrimPrefix(err.Error(), "json: "))
	case errors.As(err, &se):
		return fmt.Errorf("%w: %v at byte %d", ErrSyntax, err, se.Offset)
	}
	return fmt.Errorf("%w: %v", ErrSyntax, err)
}

func excerpt(b []byte) string {
	if len(b) > 60 {
		return string(b[len(b)-60:])
	}
	return string(b)
}

func (tr *Trace) header(l *line) error {
	if l.Version == nil {
		return fmt.Errorf("%w: line 1 must be the header {\"telechaos_trace\":%d,...}", ErrMissingField, Version)
	}
	if *l.Version != Version {
		return fmt.Errorf("%w %d (this telechaos reads version %d)", ErrVersion, *l.Version, Version)
	}
	if l.User != nil || l.Op != nil || l.Role != nil {
		return fmt.Errorf("%w: the header carries no user or op fields", ErrBadField)
	}
	h := Header{Version: *l.Version, Bugs: l.Bugs}
	if l.Scenario != nil {
		h.Scenario = *l.Scenario
	}
	if l.Seed != nil {
		h.Seed = *l.Seed
	}
	if l.Target == nil || *l.Target == "" {
		return fmt.Errorf("%w: target (\"embedded\" or a URL)", ErrMissingField)
	}
	h.Target = *l.Target
	if err := embedded.CheckBugs(h.Bugs); err != nil {
		return fmt.Errorf("%w: bugs: %v", ErrBadField, err)
	}
	if l.BugSeed != nil {
		h.BugSeed = *l.BugSeed
	}
	if l.Expect != nil {
		h.Expect = *l.Expect
	}
	if l.Created != nil {
		h.Created = *l.Created
	}
	tr.Header = h
	return nil
}

func userOf(l *line) (User, error) {
	if l.User == nil || *l.User == "" {
		return User{}, fmt.Errorf("%w: user (the symbol a user line declares)", ErrMissingField)
	}
	if l.Role == nil {
		return User{}, fmt.Errorf("%w: role of user %s", ErrMissingField, *l.User)
	}
	if l.With != nil || l.Consult != nil || l.N != nil || l.After != nil || l.Group != nil {
		return User{}, fmt.Errorf("%w: a user line has only user and role (is \"op\" missing?)", ErrBadField)
	}
	r, err := models.ParseRole(*l.Role)
	if err != nil {
		return User{}, fmt.Errorf("%w: user %s: %v", ErrBadField, *l.User, err)
	}
	if !validSymbol(*l.User) {
		return User{}, fmt.Errorf("%w: user symbol %q (letters, digits, - and _, at most 32)", ErrBadField, *l.User)
	}
	return User{Name: *l.User, Role: r}, nil
}

func opOf(l *line) (Op, error) {
	k := Kind(*l.Op)
	if !slices.Contains(Kinds, k) {
		names := make([]string, len(Kinds))
		for i, k := range Kinds {
			names[i] = string(k)
		}
		return Op{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownOp, *l.Op, strings.Join(names, ", "))
	}
	if l.Role != nil {
		return Op{}, fmt.Errorf("%w: role belongs on a user line, not on op %s", ErrBadField, k)
	}
	op := Op{Op: k, After: l.After, Group: l.Group}
	if k.Target() {
		for _, f := range []struct {
			name string
			set  bool
		}{{"user", l.User != nil}, {"consult", l.Consult != nil}, {"with", l.With != nil}, {"n", l.N != nil}} {
			if f.set {
				return Op{}, fmt.Errorf("%w: %s acts on the target and takes no %s", ErrBadField, k, f.name)
			}
		}
		return op, nil
	}
	if l.User == nil || *l.User == "" {
		return Op{}, fmt.Errorf("%w: user of op %s", ErrMissingField, k)
	}
	op.User = *l.User
	if l.With != nil {
		op.With = *l.With
	}
	if l.Consult != nil {
		op.Consult = *l.Consult
	}
	if l.N != nil {
		op.N = *l.N
	}
	return op, nil
}

func validSymbol(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Validate checks a trace built in code (Parse validates already): symbols
// declared and defined before use, roles, fields per op, after and groups.
// The error names the op (0-based).
func (tr *Trace) Validate() error {
	if tr.Version != Version {
		return fmt.Errorf("%w %d (want %d)", ErrVersion, tr.Version, Version)
	}
	if tr.Target == "" {
		return fmt.Errorf("%w: target", ErrMissingField)
	}
	if len(tr.Ops) > MaxOps {
		return fmt.Errorf("%w: %d ops, more than %d (MaxOps)", ErrTooLarge, len(tr.Ops), MaxOps)
	}
	if len(tr.Users) > MaxUsers {
		return fmt.Errorf("%w: %d users, more than %d (MaxUsers)", ErrTooLarge, len(tr.Users), MaxUsers)
	}
	seen := map[string]bool{}
	for _, u := range tr.Users {
		if !validSymbol(u.Name) {
			return fmt.Errorf("%w: user symbol %q", ErrBadField, u.Name)
		}
		if _, err := models.ParseRole(string(u.Role)); err != nil {
			return fmt.Errorf("%w: user %s: %v", ErrBadField, u.Name, err)
		}
		if seen[u.Name] {
			return fmt.Errorf("%w: user %s declared twice", ErrBadField, u.Name)
		}
		seen[u.Name] = true
	}
	if i, err := tr.validate(nil, nil); err != nil {
		return fmt.Errorf("op %d: %w", i, err)
	}
	return nil
}

// validate checks the ops. It returns the failing op's file line (from
// opLines) or its index when opLines is nil.
func (tr *Trace) validate(userLines map[string]int, opLines []int) (int, error) {
	roles := map[string]models.Role{}
	for _, u := range tr.Users {
		roles[u.Name] = u.Role
	}
	where := func(i int) int {
		if opLines != nil {
			return opLines[i]
		}
		return i
	}
	// A user must be declared on an earlier line than its first use.
	declaredBefore := func(name string, i int) bool {
		if _, ok := roles[name]; !ok {
			return false
		}
		if userLines == nil || opLines == nil {
			return true
		}
		return userLines[name] < opLines[i]
	}
	booked := map[string]int{} // consult symbol -> op index of its book
	registered := map[string]bool{}
	groupFirst := map[int]int{} // group -> first op index
	groupLast := map[int]int{}
	for i, op := range tr.Ops {
		bad := func(err error) (int, error) { return where(i), fmt.Errorf("op %d (%s): %w", i, op.Op, err) }
		switch {
		case op.Op.Target() && op.User != "":
			return bad(fmt.Errorf("%w: %s acts on the target and takes no user", ErrBadField, op.Op))
		case !op.Op.Target() && op.User == "":
			return bad(fmt.Errorf("%w: user", ErrMissingField))
		case !op.Op.Target() && !declaredBefore(op.User, i):
			return bad(fmt.Errorf("%w: user %q is not declared (add {\"user\":%q,\"role\":...} before this line)", ErrUnknownSymbol, op.User, op.User))
		}
		if !op.Op.needsConsult() && op.Consult != "" {
			return bad(fmt.Errorf("%w: %s takes no consult", ErrBadField, op.Op))
		}
		if op.Op != OpBook && op.With != "" {
			return bad(fmt.Errorf("%w: only book takes \"with\"", ErrBadField))
		}
		if op.Op.needsN() {
			if op.N < 1 || op.N > MaxFrames {
				return bad(fmt.Errorf("%w: n = %d frames (want 1..%d)", ErrBadField, op.N, MaxFrames))
			}
		} else if op.N != 0 {
			return bad(fmt.Errorf("%w: %s takes no n", ErrBadField, op.Op))
		}
		if op.Op.needsConsult() {
			if op.Consult == "" {
				return bad(fmt.Errorf("%w: consult", ErrMissingField))
			}
			if !validSymbol(op.Consult) {
				return bad(fmt.Errorf("%w: consult symbol %q", ErrBadField, op.Consult))
			}
		}
		switch op.Op {
		case OpRegister:
			if registered[op.User] {
				return bad(fmt.Errorf("%w: user %s registers twice", ErrBadField, op.User))
			}
			registered[op.User] = true
		case OpBook:
			if roles[op.User] != models.Patient {
				return bad(fmt.Errorf("%w: book is done by a patient, %s is a %s", ErrBadField, op.User, roles[op.User]))
			}
			if op.With == "" {
				return bad(fmt.Errorf("%w: with (the clinician booked)", ErrMissingField))
			}
			if !declaredBefore(op.With, i) {
				return bad(fmt.Errorf("%w: clinician %q is not declared", ErrUnknownSymbol, op.With))
			}
			if roles[op.With] != models.Clinician {
				return bad(fmt.Errorf("%w: with %s is a %s, not a clinician", ErrBadField, op.With, roles[op.With]))
			}
			if prev, dup := booked[op.Consult]; dup {
				return bad(fmt.Errorf("%w: consultation %s already booked by op %d", ErrBadField, op.Consult, prev))
			}
			booked[op.Consult] = i
		default:
			if op.Op.needsConsult() {
				if _, ok := booked[op.Consult]; !ok {
					return bad(fmt.Errorf("%w: consultation %q is not booked by an earlier op", ErrUnknownSymbol, op.Consult))
				}
			}
		}
		for _, a := range op.After {
			if a < 0 || a >= i {
				return bad(fmt.Errorf("%w: after %d: an op may only wait for earlier ops (0..%d)", ErrBadField, a, i-1))
			}
		}
		if op.Group != nil {
			g := *op.Group
			if g < 0 {
				return bad(fmt.Errorf("%w: concurrent_group %d must be >= 0", ErrBadField, g))
			}
			if first, ok := groupFirst[g]; ok {
				if groupLast[g] != i-1 {
					return bad(fmt.Errorf("%w: concurrent_group %d is not contiguous (its ops start at op %d)", ErrBadField, g, first))
				}
				for _, a := range op.After {
					if a >= first {
						return bad(fmt.Errorf("%w: after %d is in the op's own concurrent_group %d", ErrBadField, a, g))
					}
				}
			} else {
				groupFirst[g] = i
			}
			groupLast[g] = i
		}
	}
	return 0, nil
}

// Encode writes the trace as JSON lines.
func (tr *Trace) Encode(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	h := tr.Header
	if h.Version == 0 {
		h.Version = Version
	}
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("encode header: %w", err)
	}
	for _, u := range tr.Users {
		if err := enc.Encode(u); err != nil {
			return fmt.Errorf("encode user: %w", err)
		}
	}
	for _, op := range tr.Ops {
		if err := enc.Encode(op); err != nil {
			return fmt.Errorf("encode op: %w", err)
		}
	}
	return bw.Flush()
}

// WriteFile writes the trace to path.
func (tr *Trace) WriteFile(path string) error {
	var b bytes.Buffer
	if err := tr.Encode(&b); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	return nil
}

// Clone returns a deep copy.
func (tr *Trace) Clone() *Trace {
	c := &Trace{Header: tr.Header}
	c.Bugs = slices.Clone(tr.Bugs)
	c.Users = slices.Clone(tr.Users)
	c.Ops = make([]Op, len(tr.Ops))
	for i, op := range tr.Ops {
		op.After = slices.Clone(op.After)
		if op.Group != nil {
			g := *op.Group
			op.Group = &g
		}
		c.Ops[i] = op
	}
	return c
}

// Role returns a declared user's role.
func (tr *Trace) Role(user string) (models.Role, bool) {
	for _, u := range tr.Users {
		if u.Name == user {
			return u.Role, true
		}
	}
	return "", false
}
