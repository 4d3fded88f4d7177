// Package load is the load stage of a run: virtual patients (and the
// clinicians they book with) living their lifecycle, drawn from a seeded
// plan, through the one client (harness/client), with the run's chaos
// runtime acting out client faults and counting coverage. It counts what
// happened (Counters) and reports call milestones (Event); the run composes
// it with the target, the oracle and the reports.
//
// A patient's plan (call length, switch, abandon, replay, probe) is drawn from a
// PRNG seeded by the run seed and the patient's index, and patients book with
// clinicians round robin, so a seed and a scenario fix every decision. What
// depends on timing is which recording a probe picks (from a bounded pool of
// recordings other users completed) and the interleaving of calls.
//
// The ledger the oracle judges by is built only from what the harness did:
// users it registered, consultations it booked, recordings the target
// acknowledged in its answer to end.
//
// With media off (Scenario.Media false) nobody joins (the contract has no join
// without an SDP offer): a patient registers, books, ends the booked
// consultation, lists and fetches its (empty) recording and probes other
// users' recordings. List ownership, access control and listing durability are
// checked; live isolation and frame content are not exercised.
package load

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// Counters are a run's figures (the Prometheus metrics carry fewer labels):
// the load stage and the run's observer count here, the summary, thresholds
// and progress read them.
type Counters struct {
	Patients, Consultations, CallsConnected, CallsEnded, CallsAbandoned, CallsFailed   atomic.Int64
	Switches, ReplaysListed, ReplaysFetched, TracksFetched, Probes, ProbesSkipped      atomic.Int64
	FramesSent, FramesAcked, FramesReceived, Dropped, Ops, OpErrors, Violations        atomic.Int64
	Unreachable, UsersActive, CallsActive, ProbeRequests, ProbeDenied, FramesSentEnded atomic.Int64
}

// Users is the load stage of one run. Set its fields before the first
// Patient; the run fills Target, Media, Chaos and Clinicians once the target
// is open.
type Users struct {
	Seed      uint64
	Behaviour models.Behaviour
	// Settle is how long a participant polls for a just-ended recording.
	Settle  time.Duration
	Target  driver.Target
	Media   *driver.MediaFactory // nil: media-free calls
	Ledger  *models.Ledger
	Oracle  *oracle.Oracle
	Metrics *metrics.Metrics
	Chaos   *chaos.Runtime // nil without faults
	Log     *slog.Logger
	// OnEvent, when set, is called synchronously at every call milestone.
	OnEvent func(Event)
	// Stopping is closed when the run is interrupted: no new steps start,
	// calls in flight end so their recordings can still be checked.
	Stopping <-chan struct{}
	// Clinicians are the registered clinicians, Slots[k] the round-robin
	// slot Clinicians[k] holds, of SlotCount (population.clinicians).
	Clinicians []driver.Session
	Slots      []int
	SlotCount  int

	Count Counters

	poolOnce     sync.Once
	pool         *probePool
	live         livePool         // booked, not yet ended: the matrix's write victims
	matrixCursor [2]atomic.Uint64 // per prober role (patient, clinician): the next matrix cell a round starts at
	evN          sync.Map         // EventKind -> *atomic.Int64
	errMu        sync.Mutex
	lastErrs     []string
}

// Interrupted says whether the run is being interrupted.
func (u *Users) Interrupted() bool {
	select {
	case <-u.Stopping:
		return true
	default:
		return false
	}
}

// NoteErr logs a failed step and keeps the first few for the summary.
func (u *Users) NoteErr(step string, err error) {
	if errors.Is(err, driver.ErrUnreachable) {
		u.Count.Unreachable.Add(1)
	}
	if u.Log != nil {
		u.Log.Debug("step failed", "step", step, "err", err)
	}
	u.errMu.Lock()
	defer u.errMu.Unlock()
	if len(u.lastErrs) < 5 {
		u.lastErrs = append(u.lastErrs, step+": "+err.Error())
	}
}

// Errors are the first failed steps (at most five).
func (u *Users) Errors() []string {
	u.errMu.Lock()
	defer u.errMu.Unlock()
	return slices.Clone(u.lastErrs)
}

// probes is the pool of completed recordings that probes draw from.
func (u *Users) probes() *probePool {
	u.poolOnce.Do(func() { u.pool = newProbePool(64) })
	return u.pool
}

// clinicianFor is the clinician patient i (global index) books with: its
// round-robin slot's.
func (u *Users) clinicianFor(i int) driver.Session {
	c := max(u.SlotCount, 1)
	if k := slices.Index(u.Slots, i%c); k >= 0 {
		return u.Clinicians[k]
	}
	return u.Clinicians[i%len(u.Clinicians)] // not reached: every used slot is registered
}

func (u *Users) sleep(ctx context.Context, d time.Duration) error {
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

// think pauses between steps unless the run is being interrupted.
func (u *Users) think(ctx context.Context, d time.Duration) {
	if d <= 0 || u.Interrupted() {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-u.Stopping:
	}
}

// EventKind names a call milestone.
type EventKind string

// Call milestones reported to OnEvent.
const (
	EventConnected EventKind = "connected" // both participants' media connected
	EventSwitching EventKind = "switching" // about to renegotiate to video
	EventSwitched  EventKind = "switched"  // both participants switched
	EventEnding    EventKind = "ending"    // about to end the call
	EventEnded     EventKind = "ended"     // the target acknowledged the end
	EventFetching  EventKind = "fetching"  // a participant is about to fetch a replay's tracks
)

// Event is one call milestone. N counts events of this kind in the run (1 for
// the first), so a hook can act "at the Nth switch".
type Event struct {
	Kind         EventKind
	N            int64
	User         string // the patient for call events, the viewer for fetching
	Consultation string
	Recording    string // for EventEnded and EventFetching
	At           time.Time
}

// event reports a call milestone to the hook, if any.
func (u *Users) event(kind EventKind, user, consultation, recording string) {
	if u.OnEvent == nil {
		return
	}
	c, _ := u.evN.LoadOrStore(kind, new(atomic.Int64))
	n := c.(*atomic.Int64).Add(1)
	u.OnEvent(Event{Kind: kind, N: n, User: user, Consultation: consultation, Recording: recording, At: time.Now()})
}

// Progress is a live snapshot for progress lines.
type Progress struct {
	Elapsed        time.Duration
	UsersActive    int64
	Patients       int64
	Calls          int64 // calls that connected media (or were ended, media-free)
	CallsActive    int64
	Switches       int64
	ReplaysChecked int64
	FramesChecked  int64 // replay frames + live frames
	Violations     int64
	Dropped        int64
	Final          bool
}

// Progress is the load stage's snapshot elapsed into the run.
func (u *Users) Progress(elapsed time.Duration, final bool) Progress {
	c := &u.Count
	calls := c.CallsConnected.Load()
	if u.Media == nil {
		calls = c.CallsEnded.Load()
	}
	var checked int64
	if u.Oracle != nil {
		st := u.Oracle.Stats()
		checked = st.FramesChecked + st.LiveFramesChecked
	}
	return Progress{
		Elapsed: elapsed, UsersActive: c.UsersActive.Load(), Patients: c.Patients.Load(), Calls: calls,
		CallsActive: c.CallsActive.Load(), Switches: c.Switches.Load(), ReplaysChecked: c.ReplaysFetched.Load(),
		FramesChecked: checked, Violations: c.Violations.Load(), Dropped: c.Dropped.Load(), Final: final,
	}
}
