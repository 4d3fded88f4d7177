package faultspec

import (
	"fmt"
	"slices"
	"time"
)

// Events the runner reports to the fault scheduler; a Trigger's On names one.
const (
	EventJoin   = "join"   // a participant is about to join
	EventSwitch = "switch" // a switch to video is about to be sent
	EventEnd    = "end"    // an end is about to be sent: the recording is being finalised
	EventFetch  = "fetch"  // a replay's media is about to be fetched
)

// KnownEvents are the events Validate accepts in triggers.
var KnownEvents = []string{EventJoin, EventSwitch, EventEnd, EventFetch}

// Trigger says when a fault's windows open. The zero Trigger keeps the fault
// active for the whole run (from Start to Stop).
//
// Clock: the first window opens At after Start, then every Every (measured
// from the previous opening; ticks missed while a window was open are
// skipped), each lasting For. Event: the window opens Delay after the Nth
// event of kind On, and again every Repeat events after it. Count bounds the
// windows (0: one for a one-shot trigger, unbounded otherwise, within the
// Scheduler's MaxWindows).
type Trigger struct {
	At     Duration `yaml:"at" json:"at,omitempty"`
	Every  Duration `yaml:"every" json:"every,omitempty"`
	For    Duration `yaml:"for" json:"for,omitempty"`
	On     string   `yaml:"on" json:"on,omitempty"`
	Nth    int      `yaml:"nth" json:"nth,omitempty"`
	Repeat int      `yaml:"repeat" json:"repeat,omitempty"`
	Delay  Duration `yaml:"delay" json:"delay,omitempty"`
	Count  int      `yaml:"count" json:"count,omitempty"`
}

// IsZero reports the always-on trigger.
func (t Trigger) IsZero() bool { return t == Trigger{} }

// IsEvent reports an event trigger (On set); otherwise it is a clock one.
func (t Trigger) IsEvent() bool { return t.On != "" }

// Limit is the number of windows the trigger opens at most: Count if set,
// else 0 (unbounded) for a repeating trigger, else 1.
func (t Trigger) Limit() int {
	if t.Count > 0 {
		return t.Count
	}
	if (t.IsEvent() && t.Repeat > 0) || (!t.IsEvent() && t.Every.Duration > 0) {
		return 0
	}
	return 1
}

// Validate names every bad field (prefix is prepended, e.g. "faults[2].trigger");
// the errors are *FieldError.
func (t Trigger) Validate(prefix string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: prefix + "." + field, Msg: fmt.Sprintf(format, args...)})
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"at", t.At.Duration}, {"every", t.Every.Duration}, {"for", t.For.Duration}, {"delay", t.Delay.Duration}} {
		if d.v < 0 {
			bad(d.name, "%s must be >= 0", d.v)
		}
	}
	if t.Count < 0 {
		bad("count", "%d must be >= 0", t.Count)
	}
	if t.IsEvent() {
		if !slices.Contains(KnownEvents, t.On) {
			bad("on", "unknown event %q (want one of %v)", t.On, KnownEvents)
		}
		if t.Nth < 0 {
			bad("nth", "%d must be >= 1", t.Nth)
		}
		if t.Repeat < 0 {
			bad("repeat", "%d must be >= 0", t.Repeat)
		}
		if t.At.Duration != 0 || t.Every.Duration != 0 {
			bad("on", "an event trigger takes nth, repeat, delay, for and count, not at or every")
		}
	} else {
		if t.Nth != 0 || t.Repeat != 0 || t.Delay.Duration != 0 {
			bad("on", "nth, repeat and delay need an event (on: switch, end, fetch or join)")
		}
		if t.Every.Duration > 0 && t.For.Duration >= t.Every.Duration {
			bad("for", "%s must be shorter than every (%s)", t.For.Duration, t.Every.Duration)
		}
	}
	return errs
}

// String describes the trigger for reports.
func (t Trigger) String() string {
	switch {
	case t.IsZero():
		return "whole run"
	case t.IsEvent():
		s := fmt.Sprintf("on %s #%d", t.On, max(t.Nth, 1))
		if t.Repeat > 0 {
			s += fmt.Sprintf(" then every %d", t.Repeat)
		}
		if t.Delay.Duration > 0 {
			s += " +" + t.Delay.String()
		}
		if t.For.Duration > 0 {
			s += " for " + t.For.String()
		}
		return s
	default:
		s := "at " + t.At.String()
		if t.Every.Duration > 0 {
			s += " every " + t.Every.String()
		}
		if t.For.Duration > 0 {
			s += " for " + t.For.String()
		}
		return s
	}
}
