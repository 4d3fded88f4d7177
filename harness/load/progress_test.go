package load

import (
	"testing"
	"time"
)

// A media-free run counts its calls by their ends (nobody connects media); a
// media run by the calls that connected.
func TestProgressCountsCallsByWhatTheRunDoes(t *testing.T) {
	u := &Users{}
	u.Count.CallsEnded.Add(4)
	u.Count.CallsConnected.Add(1)
	u.Count.Violations.Add(2)
	p := u.Progress(3*time.Second, true)
	if p.Calls != 4 || p.Violations != 2 || !p.Final || p.Elapsed != 3*time.Second {
		t.Errorf("media-free progress %+v, want 4 calls (ended), 2 violations, final", p)
	}
	if i := u.Interrupted(); i {
		t.Error("a run without a stop channel closed reads as interrupted")
	}
}
