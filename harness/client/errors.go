package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/telechaos/telechaos/harness/driver"
)

// Sentinel errors callers branch on (errors.Is).
var (
	// ErrNoLiveMedia: a participant of a connected call received no
	// judgeable live frame.
	ErrNoLiveMedia = errors.New("no live media")
	// ErrNotConnected: a call's media never connected, so nothing live could
	// be judged.
	ErrNotConnected = errors.New("call media never connected")
	// ErrUnreadableTrack marks a 2xx media answer whose bytes are not the
	// track container its metadata names.
	ErrUnreadableTrack = errors.New("unreadable track")
	// ErrNoPeer: the participant has no peer (never joined, or its peer was
	// closed by an end or a target crash).
	ErrNoPeer = errors.New("participant has no peer (join first)")
	// ErrNoMedia: an op needs WebRTC and the client has no media factory.
	ErrNoMedia = errors.New("no media factory")
)

// ReasonOf names why an answer could not be judged, in a small fixed
// vocabulary (the oracle keeps one example per reason).
func ReasonOf(err error) string {
	var se *driver.StatusError
	switch {
	case errors.As(err, &se) && se.Code >= 300 && se.Code < 400:
		return "redirected (not followed)"
	case errors.As(err, &se) && se.Code >= 500:
		return "answered 5xx"
	case errors.As(err, &se):
		return fmt.Sprintf("answered %d", se.Code)
	case errors.Is(err, ErrUnreadableTrack):
		return "unreadable track"
	case errors.Is(err, ErrNoLiveMedia):
		return "no live frame forwarded"
	case errors.Is(err, ErrNotConnected):
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

// AnswerStatus returns the HTTP status behind err (200 for nil) and whether
// the target answered at all.
func AnswerStatus(err error) (int, bool) {
	if err == nil {
		return 200, true
	}
	if c := driver.StatusCode(err); c != 0 {
		return c, true
	}
	if errors.Is(err, driver.ErrGarbage) {
		return 200, true // a 2xx with a body we could not read: still an answer
	}
	return 0, false
}
