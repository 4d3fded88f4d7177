// Package media is the clinic's SFU and recorder: it terminates both participants'
// PeerConnections of a consultation, forwards each participant's tracks to the
// other, and streams every received track to disk (Ogg for Opus audio, IVF for
// VP8 video) as it arrives.
//
// The HTTP layer (package clinic) owns ids, authorization and the database; it
// talks to the engine only through this file's API and hears back through Catalog.
package media

import (
	"errors"
	"time"
)

// Sentinel errors the HTTP layer maps to status codes.
var (
	ErrBadSDP    = errors.New("media: malformed or unusable SDP")  // 400
	ErrNotJoined = errors.New("media: participant has not joined") // 409
	ErrNotActive = errors.New("media: call is not active")         // 409
	ErrNoVideo   = errors.New("media: re-offer adds no video")     // 400
	ErrClosed    = errors.New("media: engine closed")              // 503
	// ErrNotParticipant: the user is neither the call's patient nor its clinician.
	ErrNotParticipant = errors.New("media: user is not a participant of the call") // 403
	// ErrCorruptMedia: a track file is not the Ogg/IVF the recorder writes (a
	// truncated last frame is not corruption; see Recount).
	ErrCorruptMedia = errors.New("media: corrupt track file")
)

// Call identifies a consultation to the engine. The HTTP layer creates the
// recording row (state recording) before the first join.
type Call struct {
	ConsultationID string
	RecordingID    string
	Patient        string // user id
	Clinician      string // user id
	// SegmentBase carries, per participant user id, the highest segment already
	// recorded for this call by an earlier process (after a restart); that
	// participant's next join in this process gets SegmentBase[user]+1. Nil or a
	// missing entry means 0, so the first join is segment 1. Every Join may
	// pass it; the engine keeps the highest value seen per participant.
	SegmentBase map[string]int
}

// TrackRecord is one recorded track file: one participant, one kind, one segment.
type TrackRecord struct {
	ID          string // "t_" + random hex, made by the engine
	RecordingID string
	Owner       string // user id of the sender
	Kind        string // "audio" | "video"
	Codec       string // "opus" | "vp8"
	Format      string // "ogg" | "ivf" | "webm"
	Segment     int    // 1 for the first join, +1 per rejoin of that participant
	Path        string // absolute path of the file in the data directory
	Frames      int64  // frames written so far
	Bytes       int64  // file size so far
	Started     time.Time
}

// Catalog is what the engine needs from the clinic's store. Calls may come from
// many goroutines; implementations must be safe for concurrent use.
type Catalog interface {
	// TrackOpened is called when a track file is created, before any frame.
	TrackOpened(t TrackRecord) error
	// TrackProgress updates a track's counts (about once a second, and at close).
	TrackProgress(trackID string, frames, bytes int64) error
	// GrantAccess lets userID see recordingID in replays (participants are
	// granted by the HTTP layer at booking; the engine calls this only where the
	// recorder believes a recording gained a participant).
	GrantAccess(recordingID, userID string) error
}
