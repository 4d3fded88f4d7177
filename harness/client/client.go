// Package client is the one op executor of telechaos: it performs one
// operation of a user (register, book, join, switch, send, end, list,
// replay, probe) over a driver.Target and the media factory, and hands every
// answer and frame to the oracle. The virtual users of a run (harness/vu.go),
// trace replay and the rapid properties (harness/trace) all call it, so a
// repro trace replays the client that found the bug, and the oracle's check
// methods are called from this package only.
//
// What an operation is lives here; what to do around it does not. The load
// path's policy (plans, think times, retries, client faults, metrics and
// counters) and the trace's symbol binding and op scheduling reach in
// through Hooks and Metrics.
package client

import (
	"context"
	"fmt"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// Media pacing and frame format, one set for every caller (docs/decisions.md,
// "one client"). Opus-like audio at 50 frames/s and VP8-like video at 15
// frames/s, one frame per RTP packet, paced by the load path on one 20 ms
// ticker per call; a trace's send op sends its frames as one burst.
const (
	AudioInterval  = 20 * time.Millisecond
	AudioPerSecond = 50
	VideoPerSecond = 15
	// AudioFrameSize stays under 254 bytes: pion's Ogg writer corrupts a
	// final page holding a larger packet.
	AudioFrameSize = 60
	// VideoFrameSize: 200 bytes, not the 800 the load path used to send. The
	// oracle reads only the 26-byte watermark (the rest is filler), every
	// catalogue bug is about which frames, never how big, and a trace sends
	// its frames in bursts: at 800 bytes a burst fills a loaded machine's
	// loopback UDP buffers four times sooner and a replay loses frames at
	// random. Smaller frames also cost the load path less CPU per call.
	VideoFrameSize = 200
	// MaxBurst bounds the frames per participant sent at once to catch up
	// with the clock on a loaded machine.
	MaxBurst = 5
	// ConnectTimeout bounds ICE and DTLS after a join's answer.
	ConnectTimeout = 15 * time.Second
	// DrainTime lets frames in flight reach the target before an end (or a
	// target crash), so what the target acknowledges and records does not
	// depend on scheduling luck: 150 ms, the load path's, not the trace's 80.
	// A trace must replay on a loaded 2-core machine, where 80 ms was the
	// smaller margin; it costs a trace 70 ms per end.
	DrainTime = 150 * time.Millisecond
	// SettleTime: after a trace's send op, frames reach the target and its
	// recorder (tracks open on their first packet) before the next op, so one
	// sequence of ops does the same thing every time (rapid shrinks only
	// reproducible failures). The load path paces instead.
	SettleTime = 40 * time.Millisecond
	// NotReadyWait is how long a burst waits for a just-negotiated track.
	NotReadyWait = 3 * time.Second
)

// The smallest bodies that can be a recording: one Ogg page header, the IVF
// file header.
const (
	oggPageHeader = 27
	ivfFileHeader = 32
)

// Latency names the timed steps the client measures (Metrics.Latency): join
// is from the join request to the first received frame, switch the
// renegotiation (re-offer, request, accept).
const (
	LatencyJoin   = "join"
	LatencySwitch = "switch"
)

// Hooks are what a caller adds around an operation. NopHooks is a complete
// implementation to embed.
type Hooks interface {
	// Retry runs fn under the caller's retry policy (NopHooks: once).
	Retry(ctx context.Context, fn func() error) error
	// Reconnect says whether a call whose media failed to connect (err,
	// after attempt+1 tries) joins again with new peers; it may wait first.
	Reconnect(ctx context.Context, attempt int, err error) bool
	// StoppedByUs says whether a failure may be the caller's own doing (an
	// interrupt, a deadline): such failures are not counted as not judged.
	StoppedByUs(ctx context.Context) bool
	// TargetDown says whether a frame sent now cannot reach the target (it
	// is allowed as lost, see Track.SentDown).
	TargetDown() bool
	// Event reports a step: before a request (EventJoining, ...) and after
	// its success (EventJoined, ...).
	Event(Event)
	// NoteErr notes a failed step that did not end the operation.
	NoteErr(user, step string, err error)
}

// NopHooks: run each request once, no events, stopped only by ctx.
type NopHooks struct{}

var _ Hooks = NopHooks{}

func (NopHooks) Retry(_ context.Context, fn func() error) error { return fn() }
func (NopHooks) Reconnect(context.Context, int, error) bool     { return false }
func (NopHooks) StoppedByUs(ctx context.Context) bool           { return ctx.Err() != nil }
func (NopHooks) TargetDown() bool                               { return false }
func (NopHooks) Event(Event)                                    {}
func (NopHooks) NoteErr(string, string, error)                  {}

// Metrics receive the client's media figures; nil in Options: none.
type Metrics interface {
	Sent(models.Kind)     // one frame sent
	Received(models.Kind) // one frame received live
	FramesChecked(n int)  // replay frames handed to the oracle
	Latency(op string, d time.Duration)
}

// EventKind names a step of an operation.
type EventKind int

// The steps reported to Hooks.Event.
const (
	EventJoining       EventKind = iota + 1 // a join request is about to go out
	EventJoined                             // a join was answered and accepted (Segment)
	EventSwitching                          // a switch to video is about to go out (User: the first participant)
	EventSwitched                           // every participant of a switch switched
	EventEnding                             // an end request is about to go out
	EventEndAckLost                         // a retried end was told "already ended"; the consultation names the recording
	EventEnded                              // the target acknowledged an end (Recording)
	EventListed                             // a replay list came back readable
	EventReplayFetched                      // a look fetched a replay's metadata (Recording), its tracks are next
	EventTrackFetched                       // a look read one track
	EventFetched                            // a look read every track of a replay
	EventProbe                              // one probe request was answered or not (Err)
	EventUnreadable                         // a 2xx answer whose bytes are not the container it names: a failed request
)

// Event is one step of an operation.
type Event struct {
	Kind         EventKind
	User         string
	Consultation string
	Recording    string
	Segment      int
	Err          error
}

// Options configure a Client.
type Options struct {
	Hooks   Hooks   // nil: NopHooks
	Metrics Metrics // nil: none
}

// Client performs operations against one target for any number of users,
// feeding one ledger and one oracle. Safe for concurrent use; cheap to make.
type Client struct {
	target driver.Target
	media  *driver.MediaFactory // nil: no op may join
	ledger *models.Ledger
	or     *oracle.Oracle
	hooks  Hooks
	met    Metrics
}

// New returns a client. media may be nil when no op joins a call.
func New(target driver.Target, media *driver.MediaFactory, ledger *models.Ledger, or *oracle.Oracle, opts Options) *Client {
	c := &Client{target: target, media: media, ledger: ledger, or: or, hooks: opts.Hooks, met: opts.Metrics}
	if c.hooks == nil {
		c.hooks = NopHooks{}
	}
	if c.met == nil {
		c.met = nopMetrics{}
	}
	return c
}

type nopMetrics struct{}

func (nopMetrics) Sent(models.Kind)              {}
func (nopMetrics) Received(models.Kind)          {}
func (nopMetrics) FramesChecked(int)             {}
func (nopMetrics) Latency(string, time.Duration) {}

// Register registers a user of role (under the retry policy: registering
// again after a lost answer leaves at most an unused user) and tells the
// ledger.
func (c *Client) Register(ctx context.Context, role models.Role) (driver.Session, error) {
	var s driver.Session
	err := c.hooks.Retry(ctx, func() error {
		var err error
		s, err = c.target.Register(ctx, role)
		return err
	})
	if err != nil {
		return driver.Session{}, err
	}
	c.ledger.AddUser(s.ID, role)
	return s, nil
}

// Book books an appointment of patient with clinicianID and tells the
// ledger. It is never retried: a second appointment would be one the ledger
// never saw.
func (c *Client) Book(ctx context.Context, patient driver.Session, clinicianID string) (models.Consultation, error) {
	b, err := c.target.Book(ctx, patient, clinicianID)
	if err != nil {
		return models.Consultation{}, fmt.Errorf("book: %w", err)
	}
	cons := models.Consultation{ID: b.ConsultationID, AppointmentID: b.AppointmentID, Patient: patient.ID, Clinician: clinicianID}
	if err := c.ledger.AddConsultation(cons); err != nil {
		return models.Consultation{}, fmt.Errorf("book: ledger: %w", err)
	}
	return cons, nil
}

// notJudged counts one observation of inv that could not be judged because
// of err, unless the caller stopped it.
func (c *Client) notJudged(ctx context.Context, inv string, err error) {
	if c.hooks.StoppedByUs(ctx) {
		return
	}
	c.or.NotJudged(inv, ReasonOf(err), err.Error())
}

// lookFailed tells the oracle that viewer's look at cons' recording could not
// finish because of err (durability is then not judged for the pair).
func (c *Client) lookFailed(ctx context.Context, viewer string, cons models.Consultation, what string, err error) {
	if c.hooks.StoppedByUs(ctx) {
		return
	}
	c.or.LookFailed(viewer, cons.ID, what+": "+ReasonOf(err), err.Error())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
