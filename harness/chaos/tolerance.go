package chaos

import (
	"math"
	"strconv"
	"time"
)

// LossTolerance is the fraction of a track's expected frames that the faults
// in windows explain as missing, for a call that ran from callStart to
// callEnd. recording-durability allows its baseline tolerance plus this.
//
// The rule, per window whose ParamDirection is not down (down-only faults
// cannot cost the target recorded frames) and whose effect reaches the call:
//
//   - Loss: ParamLoss × overlap([Start, End+ParamTail], [callStart, callEnd])
//     / call duration. Media loss p counts p; blackhole and process faults
//     (crash, restart: the target is down and the frames in flight at the
//     stop are gone) count 1, and their tail (CrashInFlight by default)
//     covers the frames in socket buffers at the stop and those sent before
//     the clients notice.
//   - In flight at the end: frames sent during the last ParamTail before
//     callEnd while the window was open (a delay or jitter holding them) may
//     arrive after the end and not be recorded: overlap([Start, End+tail],
//     [callEnd−tail, callEnd]) / call duration.
//
// Windows still open count up to callEnd. Overlapping windows add up (more
// than the combined loss of independent faults: the rule errs towards no
// false alarm). The result is capped at 1; a call of zero length gets 0.
// HTTP faults carry no ParamLoss: they fail requests (counted as errors, an
// unacknowledged end promises nothing) but never lose acknowledged frames.
func LossTolerance(windows []Window, callStart, callEnd time.Time) float64 {
	total, _ := lossTerms(windows, callStart, callEnd)
	return total
}

// BaselineAllowed is the loss allowed on a track of sent frames on top of
// what the faults explain: frames a healthy path may still cost (a packet at
// the edge of a fault window, the last frames in flight when the end
// overtakes them). On the correct clinic at the chaos scenarios' load the gap
// between frames sent and frames delivered is 0 on every track (see
// scenarios/README, "Durability under faults"); 1% + 3 frames keeps a loaded
// machine from crying wolf. Runs and trace executions use the same rule.
func BaselineAllowed(sent int) int {
	if sent <= 0 {
		return 0
	}
	return int(math.Ceil(0.01*float64(sent))) + 3
}

// AllowedMissing turns the rule into a frame count for a track with expected
// frames: the mean loss LossTolerance × expected plus four standard
// deviations of the binomial loss of each partial-loss window, plus 2 frames
// when any window reaches the call (a packet lost at the edge of a window).
// A random 5% loss over 50 frames loses 5 or more about 10% of the time;
// this bound keeps the correct target free of false alarms.
func AllowedMissing(windows []Window, callStart, callEnd time.Time, expected int) int {
	if expected <= 0 {
		return 0
	}
	total, terms := lossTerms(windows, callStart, callEnd)
	if len(terms) == 0 {
		return 0
	}
	variance := 0.0
	for _, t := range terms {
		if t.p > 0 && t.p < 1 {
			n := float64(expected) * t.share
			variance += n * t.p * (1 - t.p)
		}
	}
	allowed := math.Ceil(total*float64(expected)+4*math.Sqrt(variance)) + 2
	return int(min(allowed, float64(expected)))
}

type lossTerm struct {
	p     float64 // loss probability of the window
	share float64 // fraction of the call the window's loss covers
}

func lossTerms(windows []Window, callStart, callEnd time.Time) (float64, []lossTerm) {
	call := callEnd.Sub(callStart)
	if call <= 0 {
		return 0, nil
	}
	total := 0.0
	var terms []lossTerm
	for _, w := range windows {
		if w.Params[ParamDirection] == DirDown {
			continue
		}
		p, _ := strconv.ParseFloat(w.Params[ParamLoss], 64)
		p = math.Max(0, math.Min(1, p))
		tail, _ := time.ParseDuration(w.Params[ParamTail])
		tail = max(tail, 0)
		end := w.End
		if end.IsZero() || end.After(callEnd) {
			end = callEnd
		}
		reach := end.Add(tail)
		if p > 0 {
			if ov := overlap(w.Start, reach, callStart, callEnd); ov > 0 {
				share := float64(ov) / float64(call)
				total += p * share
				terms = append(terms, lossTerm{p: p, share: share})
			}
		}
		if tail > 0 {
			if ov := overlap(w.Start, reach, callEnd.Add(-tail), callEnd); ov > 0 {
				share := float64(ov) / float64(call)
				total += share
				terms = append(terms, lossTerm{p: 1, share: share})
			}
		}
	}
	return math.Min(total, 1), terms
}

func overlap(a0, a1, b0, b1 time.Time) time.Duration {
	s, e := a0, a1
	if b0.After(s) {
		s = b0
	}
	if b1.Before(e) {
		e = b1
	}
	if !e.After(s) {
		return 0
	}
	return e.Sub(s)
}
