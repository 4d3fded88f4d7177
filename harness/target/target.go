// Package target is the registry of the systems telechaos tests: a target
// reference ("embedded", "http://host:port", "https://...", or a scheme a
// user's driver registers) opens into the driver.Target the harness talks to
// and, where the harness can stop and start the system (crash it, restart it
// on the same data), its Control.
//
// Schemes register themselves (database/sql style): http and https here,
// embedded in package harness/embedded, which is the only one of these that
// knows the reference clinic. This package imports none of it, so a run, a
// repro and the properties open every target the same way.
package target

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/telechaos/telechaos/harness/driver"
)

// Control stops and starts a target: the one interface the fault machinery
// (clinic-restart, clinic-crash) and the trace ops (crash_target,
// restart_target) act through.
type Control interface {
	// Stop closes the target gracefully (crash false) or as a crash would
	// (nothing finalised, connections cut). A stopped target stays down
	// until Start.
	Stop(ctx context.Context, crash bool) error
	// Start starts it again on the same data and returns its HTTP base URL
	// once it listens (which may differ from before: ports may move; ""
	// for a target that is not reached over HTTP). A running target is
	// left alone.
	Start(ctx context.Context) (url string, err error)
}

// Restart is Stop then Start; the stop's error is returned with the URL
// when the start succeeded.
func Restart(ctx context.Context, c Control, crash bool) (string, error) {
	stopErr := c.Stop(ctx, crash)
	url, err := c.Start(ctx)
	if err != nil {
		return "", errors.Join(stopErr, err)
	}
	return url, stopErr
}

// Restarter is a Control that also restarts in one call (what the chaos
// package's clinic faults take).
type Restarter interface {
	Control
	Restart(ctx context.Context, crash bool) (url string, err error)
}

// WithRestart returns c as a Restarter: c itself if it has a Restart, else
// c with Restart.
func WithRestart(c Control) Restarter {
	if r, ok := c.(Restarter); ok {
		return r
	}
	return restarter{c}
}

type restarter struct{ Control }

func (r restarter) Restart(ctx context.Context, crash bool) (string, error) {
	return Restart(ctx, r.Control, crash)
}

// Options configure Open. Openers ignore what does not concern their
// targets (an http target has no bugs and no data directory).
type Options struct {
	// HTTP configures the HTTP driver an opener builds (observer, timeout).
	HTTP driver.HTTPOptions
	// Bugs are catalogue bug specs (ID or ID:P) of the embedded clinic;
	// Validate refuses them for other targets.
	Bugs []string
	// BugSeed fixes the bugs' firing decisions.
	BugSeed uint64
	// DataDir is the target's data directory, kept after Close; "": a
	// temporary one under TempDir, removed by Close.
	DataDir string
	// TempDir is where the temporary data directory goes ("": the system's,
	// where directories of killed runs are swept by the next one).
	TempDir string
	// Logger receives the target's own logs (the embedded clinic's);
	// nil: discarded.
	Logger *slog.Logger
	// KeepAddr: a restart (Control.Start) listens on the address the first
	// start got, so a client's base URL holds across restarts (a trace
	// replay); otherwise ports may move (a run fronts the target with a
	// proxy that follows).
	KeepAddr bool
	// RecordFormat is the embedded clinic's track container: "" (Ogg/Opus
	// audio, IVF/VP8 video) or "webm"; other targets ignore it.
	RecordFormat string
}

// Opened is an open target. Close releases it (the embedded clinic stops,
// its temporary data directory goes).
type Opened struct {
	// Ref is the reference it was opened from (set by Open).
	Ref string
	// Target is the driver the harness talks to.
	Target driver.Target
	// URL is the target's HTTP base URL ("" when it has none, e.g. a
	// driver that is not HTTP): a run fronts it with its fault proxy.
	URL string
	// MediaHost is the host ICE checks may go to, with its network (see
	// driver.DefaultAllowedRemote); "": loopback only.
	MediaHost string
	// Control stops and starts the target; nil when the harness cannot.
	Control Control
	// OnClose releases what the opener holds (run once by Close).
	OnClose func() error

	once     sync.Once
	closeErr error
}

// Close runs OnClose once and returns its error every time.
func (o *Opened) Close() error {
	if o == nil {
		return nil
	}
	o.once.Do(func() {
		if o.OnClose != nil {
			o.closeErr = o.OnClose()
		}
	})
	return o.closeErr
}

// Opener opens the targets of one scheme. ref is the whole reference, its
// scheme included.
type Opener interface {
	Open(ctx context.Context, ref string, opts Options) (*Opened, error)
}

// OpenerFunc is an Opener.
type OpenerFunc func(ctx context.Context, ref string, opts Options) (*Opened, error)

func (f OpenerFunc) Open(ctx context.Context, ref string, opts Options) (*Opened, error) {
	return f(ctx, ref, opts)
}

// Validator is an Opener that checks a reference and options before
// anything runs (a scenario's bugs against a target that has none).
type Validator interface {
	Validate(ref string, opts Options) error
}

// ControlReporter is an Opener that knows without opening whether its
// targets come with a Control.
type ControlReporter interface {
	HasControl(ref string) bool
}

// Sentinel errors.
var (
	// ErrBadRef: a reference that names no registered scheme or that its
	// scheme's opener cannot read. It is a usage error, not an outage.
	ErrBadRef = errors.New("bad target reference")
	// ErrRegister: a registration that cannot be made.
	ErrRegister = errors.New("target: cannot register")
)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes scheme's references open with o. A scheme is what comes
// before ':' in a reference ("embedded" alone names itself): letters,
// digits, '+', '-', '.', starting with a letter, compared case-insensitively.
// Registering a scheme twice, a nil opener or a bad name is an error.
func Register(scheme string, o Opener) error {
	if !validScheme(scheme) {
		return fmt.Errorf("%w: scheme %q (want a letter, then letters, digits, '+', '-' or '.')", ErrRegister, scheme)
	}
	if o == nil {
		return fmt.Errorf("%w: scheme %q: nil opener", ErrRegister, scheme)
	}
	scheme = strings.ToLower(scheme)
	mu.Lock()
	defer mu.Unlock()
	if _, dup := openers[scheme]; dup {
		return fmt.Errorf("%w: scheme %q is already registered", ErrRegister, scheme)
	}
	openers[scheme] = o
	return nil
}

// MustRegister is Register for package init functions: a registration that
// cannot be made is a programming error there.
func MustRegister(scheme string, o Opener) {
	if err := Register(scheme, o); err != nil {
		panic(err)
	}
}

// Schemes lists the registered schemes, sorted.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(openers))
	for s := range openers {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// Scheme returns ref's scheme, lower-cased: the text before the first ':',
// or the whole of a reference without one.
func Scheme(ref string) (string, error) {
	s, _, _ := strings.Cut(ref, ":")
	if !validScheme(s) {
		return "", fmt.Errorf("%w: target %q: no scheme (want embedded, a URL, or a registered scheme: %s)", ErrBadRef, ref, strings.Join(Schemes(), ", "))
	}
	return strings.ToLower(s), nil
}

func lookup(ref string) (Opener, error) {
	s, err := Scheme(ref)
	if err != nil {
		return nil, err
	}
	mu.RLock()
	o := openers[s]
	mu.RUnlock()
	if o == nil {
		return nil, fmt.Errorf("%w: target %q: unknown scheme %q (registered: %s)", ErrBadRef, ref, s, strings.Join(Schemes(), ", "))
	}
	return o, nil
}

// Check reports whether ref names a registered scheme (an error wrapping
// ErrBadRef and naming ref if not).
func Check(ref string) error {
	_, err := lookup(ref)
	return err
}

// Validate checks ref and opts before anything runs: the scheme is
// registered and, if its opener is a Validator, it accepts them.
func Validate(ref string, opts Options) error {
	o, err := lookup(ref)
	if err != nil {
		return err
	}
	if v, ok := o.(Validator); ok {
		return v.Validate(ref, opts)
	}
	return nil
}

// Controllable reports whether ref's targets may come with a Control: false
// only when its opener says they cannot (http, https); an opener that does
// not say is asked by opening (Opened.Control nil).
func Controllable(ref string) (bool, error) {
	o, err := lookup(ref)
	if err != nil {
		return false, err
	}
	if r, ok := o.(ControlReporter); ok {
		return r.HasControl(ref), nil
	}
	return true, nil
}

// Open opens ref with its scheme's opener. An unknown scheme wraps
// ErrBadRef and names ref; an opener's error is returned as it is (openers
// wrap ErrBadRef for references they cannot read).
func Open(ctx context.Context, ref string, opts Options) (*Opened, error) {
	o, err := lookup(ref)
	if err != nil {
		return nil, err
	}
	op, err := o.Open(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	if op == nil || op.Target == nil {
		op.Close()
		return nil, fmt.Errorf("target %q: the %T opener returned no target", ref, o)
	}
	op.Ref = ref // an opener that opened another reference underneath still answers for ref
	return op, nil
}
