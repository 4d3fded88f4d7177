package chaos

import (
	"time"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// The fault spec moved to telechaos/scenarios/faultspec. These names are
// kept while callers move; remove once no file uses them.
type (
	Profile     = faultspec.Profile
	FaultSpec   = faultspec.FaultSpec
	Duration    = faultspec.Duration
	Trigger     = faultspec.Trigger
	Requirement = faultspec.Requirement
	FieldError  = faultspec.FieldError
)

// Kept while callers move; remove once no file uses them.
var (
	ErrInvalidProfile = faultspec.ErrInvalidProfile
	KnownEvents       = faultspec.KnownEvents
)

// D makes a Duration. Kept while callers move; use faultspec.D.
func D(d time.Duration) Duration { return faultspec.D(d) }

// ParseProfile is faultspec.ParseProfile. Kept while callers move.
func ParseProfile(data []byte) (Profile, error) { return faultspec.ParseProfile(data) }

// Kinds is faultspec.Kinds. Kept while callers move.
func Kinds() []string { return faultspec.Kinds() }

// Kept while callers move; remove once no file uses them.
const (
	NoFault  = faultspec.NoFault
	AnyFault = faultspec.AnyFault

	PathSwitch   = faultspec.PathSwitch
	PathEnd      = faultspec.PathEnd
	PathJoin     = faultspec.PathJoin
	PathRejoin   = faultspec.PathRejoin
	PathFetch    = faultspec.PathFetch
	PathAbandon  = faultspec.PathAbandon
	PathRetry    = faultspec.PathRetry
	PathRecovery = faultspec.PathRecovery

	EventJoin   = faultspec.EventJoin
	EventSwitch = faultspec.EventSwitch
	EventEnd    = faultspec.EventEnd
	EventFetch  = faultspec.EventFetch

	KindHTTPLatency    = faultspec.KindHTTPLatency
	KindHTTPBandwidth  = faultspec.KindHTTPBandwidth
	KindHTTPReset      = faultspec.KindHTTPReset
	KindHTTPTimeout    = faultspec.KindHTTPTimeout
	KindHTTPSlicer     = faultspec.KindHTTPSlicer
	KindMediaLoss      = faultspec.KindMediaLoss
	KindMediaDelay     = faultspec.KindMediaDelay
	KindMediaJitter    = faultspec.KindMediaJitter
	KindMediaDuplicate = faultspec.KindMediaDuplicate
	KindMediaReorder   = faultspec.KindMediaReorder
	KindMediaBlackhole = faultspec.KindMediaBlackhole
	KindClinicRestart  = faultspec.KindClinicRestart
	KindClinicCrash    = faultspec.KindClinicCrash
)
