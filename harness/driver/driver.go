// Package driver talks to a telehealth target: the HTTP contract of docs/api.md
// (HTTPTarget) and the WebRTC client side of a call (MediaFactory, Peer), plus
// parsers for the replay containers the target serves (ReadOgg, ReadIVF).
//
// The harness reaches targets only through Target, so another deployment with
// another API plugs in by writing a Target, not by forking the harness.
package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/telechaos/telechaos/models"
)

// Session is a registered user as the target knows it.
type Session struct {
	ID    string
	Role  models.Role
	Token string
}

// Booking is the answer to a booked appointment.
type Booking struct {
	AppointmentID, ConsultationID, PatientID, ClinicianID string
}

// TrackInfo is one recorded track as the target describes it (metadata: may lie).
type TrackInfo struct {
	ID, Owner, Kind, Codec, Format string
	Segment, Frames                int
	Bytes                          int64
}

// EndResult is the answer to ending a consultation: the target's acknowledgement
// of what it recorded.
type EndResult struct {
	ConsultationID, RecordingID string
	Tracks                      []TrackInfo
}

// ReplaySummary is one entry of a user's replay list.
type ReplaySummary struct {
	ID, ConsultationID, Title string
	Participants              []string
	Tracks                    int
}

// Replay is a recording's metadata with its tracks.
type Replay struct {
	ID, ConsultationID, Title string
	Participants              []string
	Tracks                    []TrackInfo
}

// ConsultationInfo is a consultation as the target describes it.
type ConsultationInfo struct {
	ID, AppointmentID, PatientID, ClinicianID, State, RecordingID string
	Video                                                         bool
}

// Op names a driver operation in observations, metrics and errors.
type Op string

// The operations of Target.
const (
	OpRegister     Op = "register"
	OpBook         Op = "book"
	OpJoin         Op = "join"
	OpSwitch       Op = "switch"
	OpEnd          Op = "end"
	OpList         Op = "list"
	OpReplay       Op = "replay"
	OpMedia        Op = "media"
	OpConsultation Op = "consultation"
	OpHealth       Op = "health"
)

// Observation records one request to the target: the runner turns them into
// metrics and traces.
type Observation struct {
	Op      Op
	User    string // acting user id ("" for register and health)
	Subject string // id acted on (consultation, replay, clinician...)
	Start   time.Time
	End     time.Time
	Status  int // HTTP status; 0 if no HTTP answer
	Bytes   int // response body bytes read; for a body refused as too large, its declared (or seen) size
	Err     error
}

// Observer receives every Observation. It is called from the goroutine that
// made the request and must be safe for concurrent use.
type Observer func(Observation)

// Target is the seam for other deployments: a user with another API writes a
// Target. Implementations must be safe for concurrent use.
type Target interface {
	Register(ctx context.Context, role models.Role) (Session, error)
	Book(ctx context.Context, patient Session, clinicianID string) (Booking, error)
	Join(ctx context.Context, s Session, consultationID, offerSDP string) (answerSDP string, segment int, err error)
	SwitchVideo(ctx context.Context, s Session, consultationID, offerSDP string) (answerSDP string, err error)
	End(ctx context.Context, s Session, consultationID string) (EndResult, error)
	Consultation(ctx context.Context, s Session, consultationID string) (ConsultationInfo, error)
	ListReplays(ctx context.Context, s Session) ([]ReplaySummary, error)
	GetReplay(ctx context.Context, s Session, replayID string) (Replay, error)
	FetchMedia(ctx context.Context, s Session, replayID, trackID string) ([]byte, error)
	Health(ctx context.Context) error
}

// Sentinel errors callers branch on (errors.Is).
var (
	// ErrGarbage: the target answered 2xx with a body that is not the contract
	// (bad JSON, a missing id). The wrapping message names the op and the field.
	ErrGarbage = errors.New("target answered garbage")
	// ErrTooLarge: an answer larger than the driver buffers (MaxBody, or
	// the memory Budget). It wraps ErrGarbage, as a 2xx the harness cannot
	// read; the wrapping message names the size and the limit.
	ErrTooLarge = fmt.Errorf("%w: answer too large", ErrGarbage)
	// ErrUnreachable: no HTTP answer (connection refused or reset, timeout).
	ErrUnreachable = errors.New("target unreachable")
	// ErrBadAnswer: an SDP answer the local PeerConnection rejects.
	ErrBadAnswer = errors.New("bad sdp answer")
	// ErrClosed: the Peer is closed.
	ErrClosed = errors.New("peer closed")
)

// StatusError is a non-2xx answer. ErrCode and Message come from the JSON error
// body when there is one.
type StatusError struct {
	Op      Op
	Code    int
	ErrCode string
	Message string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: status %d", e.Op, e.Code)
	if e.ErrCode != "" {
		s += " " + e.ErrCode
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// IsDenied reports whether err is a 401, 403 or 404 answer: the harness never
// assumes 403 vs 404, both mean "denied".
func IsDenied(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case 401, 403, 404:
		return true
	}
	return false
}

// StatusCode returns the HTTP status of a StatusError in err's chain, or 0.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}
