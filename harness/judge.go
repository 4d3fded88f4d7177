package harness

import (
	"context"
	"errors"
	"fmt"

	"telechaos/harness/driver"
	"telechaos/models"
)

// Judgement coverage: every observation that should have been judged and
// could not be (an unreadable answer, a failed fetch of a granted track, a
// list that never came back readable) is counted per invariant as not
// judged, and a run that judged less than the required share of an invariant
// does not pass (exit 3, verdict not-judged). A run never reports PASS for an
// invariant it could not check.

// reasonOf names why an answer could not be judged, in a small fixed
// vocabulary (the oracle keeps one example per reason).
func reasonOf(err error) string {
	var se *driver.StatusError
	switch {
	case errors.As(err, &se) && se.Code >= 300 && se.Code < 400:
		return "redirected (not followed)"
	case errors.As(err, &se) && se.Code >= 500:
		return "answered 5xx"
	case errors.As(err, &se):
		return fmt.Sprintf("answered %d", se.Code)
	case errors.Is(err, errUnreadableTrack):
		return "unreadable track"
	case errors.Is(err, errNoLiveMedia):
		return "no live frame forwarded"
	case errors.Is(err, errNotConnected):
		return "call never connected"
	case errors.Is(err, driver.ErrGarbage):
		return "unreadable answer"
	case errors.Is(err, driver.ErrUnreachable):
		return "no answer"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	return "failed"
}

// errNoLiveMedia: a participant of a connected call received no judgeable
// live frame.
var errNoLiveMedia = errors.New("no live media")

// errNotConnected: a call's media never connected, so nothing live could be
// judged.
var errNotConnected = errors.New("call media never connected")

// errUnreadableTrack marks a 2xx media answer whose bytes are not the track
// container its metadata names.
var errUnreadableTrack = errors.New("unreadable track")

// stoppedByUs says whether a failure may be the run's own doing (an
// interrupt, the grace period ending): such failures are not counted against
// the target.
func (r *run) stoppedByUs(ctx context.Context) bool { return r.interrupted() || ctx.Err() != nil }

// notJudged counts one observation of inv that could not be judged because of err.
func (r *run) notJudged(ctx context.Context, inv string, err error) {
	if r.stoppedByUs(ctx) {
		return
	}
	r.or.NotJudged(inv, reasonOf(err), err.Error())
}

// lookFailed tells the oracle that viewer's look at cons' recording could not
// finish because of err (durability is then not judged for the pair).
func (r *run) lookFailed(ctx context.Context, viewer string, cons models.Consultation, what string, err error) {
	if r.stoppedByUs(ctx) {
		return
	}
	r.or.LookFailed(viewer, cons.ID, what+": "+reasonOf(err), err.Error())
}

// answerUnreadable counts a request whose 2xx answer the harness could not
// read as a failed request (error_rate): the driver saw a good answer, the
// content was not one.
func (r *run) answerUnreadable() { r.cnt.opErrors.Add(1) }
