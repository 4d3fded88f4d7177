package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
)

// ProbeTarget is someone else's data, by real ids: a consultation and, once
// it ended, its recording and tracks ("" and none before).
type ProbeTarget struct {
	Recording, Consultation string
	Tracks                  []string
}

// Probe fetches pt's recording, its consultation and one of its tracks
// (picked by pick) as s, who took no part in it: the target must deny each
// (replay-access-control). Every answer goes to the oracle; one that never
// came (no HTTP answer) is counted as not judged, since it says nothing
// about access control, and is returned as an error.
func (c *Client) Probe(ctx context.Context, s driver.Session, pt ProbeTarget, pick uint64) error {
	var errs []error
	judge := func(rid string, err error, n int) {
		c.hooks.Event(Event{Kind: EventProbe, User: s.ID, Consultation: pt.Consultation, Recording: rid, Err: err})
		status, answered := AnswerStatus(err)
		if !answered {
			errs = append(errs, fmt.Errorf("probe: %w", err))
			if c.hooks.StoppedByUs(ctx) {
				return // cut short by the caller: not judged either way
			}
		}
		c.or.CheckProbe(s.ID, rid, pt.Consultation, status, n, time.Now())
	}
	size := func(v any, err error) int {
		if err != nil {
			return 0
		}
		b, _ := json.Marshal(v)
		return len(b)
	}
	if pt.Recording != "" {
		rep, err := c.target.GetReplay(ctx, s, pt.Recording)
		judge(pt.Recording, err, size(rep, err))
	}
	ci, err := c.target.Consultation(ctx, s, pt.Consultation)
	judge("", err, size(ci, err))
	if pt.Recording != "" && len(pt.Tracks) > 0 {
		tid := pt.Tracks[int(pick>>32)%len(pt.Tracks)]
		b, err := c.target.FetchMedia(ctx, s, pt.Recording, tid)
		judge(pt.Recording, err, len(b))
	}
	return errors.Join(errs...)
}
