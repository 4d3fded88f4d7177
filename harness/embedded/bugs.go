package embedded

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telechaos/telechaos/clinic/bugs"
)

// Bug is one bug of the reference clinic's catalogue (docs/design.md
// section 7): what a scenario's bugs and a trace's header name.
type Bug struct {
	ID          string
	Description string
	// Concurrent: the bug only shows when requests overlap at the clinic
	// (a repro needs concurrent ops and several tries).
	Concurrent bool
}

// descriptions of the catalogue, in the clinic's words.
var descriptions = map[bugs.ID]string{
	bugs.SwitchReuse:   "recorder slot owner not reset on switch (incident 2020-06-09)",
	bugs.ListScope:     "replay list scoped by clinician, not by caller",
	bugs.BOLAMedia:     "media endpoint checks the token, not the owner",
	bugs.CacheKey:      "replay list cache key omits the user",
	bugs.PrerollLeak:   "shared pre-roll buffer not reset between recordings",
	bugs.SwitchRace:    "concurrent switches race on shared state",
	bugs.LostOnCrash:   "media buffered in memory, written only at graceful end",
	bugs.LiveCrosstalk: "after a switch, video forwarded to the wrong subscriber",
}

// Bugs lists the catalogue in the clinic's stable order.
func Bugs() []Bug {
	out := make([]Bug, 0, len(bugs.All))
	for _, id := range bugs.All {
		out = append(out, Bug{ID: string(id), Description: descriptions[id], Concurrent: id == bugs.SwitchRace})
	}
	return out
}

// IsBug reports whether id names a catalogue bug.
func IsBug(id string) bool { return slices.Contains(bugs.All, bugs.ID(id)) }

// CheckBugs reads specs (ID or ID:P, 0 < P <= 1; comma lists allowed) as
// the clinic does, naming the first bad one.
func CheckBugs(specs []string) error {
	_, err := bugs.Parse(specs, 0)
	return err
}

// BugInfo is what a repro needs to know of a bug list.
type BugInfo struct {
	// MinID has the smallest firing probability below 1, MinP (1 when
	// every bug fires always; then Probabilistic is false).
	MinID         string
	MinP          float64
	Probabilistic bool
	// Concurrent: one of the bugs only shows under concurrency.
	Concurrent bool
}

// Info describes specs; bad specs describe nothing (the zero BugInfo with
// MinP 1).
func Info(specs []string) BugInfo {
	info := BugInfo{MinP: 1}
	set, err := bugs.Parse(specs, 0)
	if err != nil {
		return info
	}
	for _, part := range strings.Split(set.String(), ",") {
		name, p, ok := strings.Cut(part, ":")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(p, 64)
		if err == nil && v < info.MinP {
			info.MinP, info.MinID = v, name
		}
	}
	info.Probabilistic = info.MinP < 1
	info.Concurrent = set.Enabled(bugs.SwitchRace)
	return info
}

// fireSeedDeadline bounds FireSeed's search in wall-clock time.
const fireSeedDeadline = 2 * time.Second

// FireSeed searches bug seeds (offline: nothing runs) for one whose first
// firing decisions all fire, so that a short sequential trace sees the
// probabilistic bugs fire every time they are consulted. The clinic draws
// one number per decision of any bug with probability < 1 (clinic/bugs), so
// a seed whose draws are all below the smallest probability fires whichever
// bug asks. It tries seeds from..from+search-1 (for at most two seconds)
// and returns the seed with the longest such run, at most want, and its
// length; with no probabilistic bug (or bad specs) it returns from and
// math.MaxInt.
func FireSeed(specs []string, from uint64, search uint64, want int) (seed uint64, run int) {
	info := Info(specs)
	if !info.Probabilistic {
		return from, math.MaxInt
	}
	id := bugs.ID(info.MinID)
	deadline := time.Now().Add(fireSeedDeadline)
	for s := from; s < from+search; s++ {
		if s&1023 == 0 && time.Now().After(deadline) {
			break
		}
		set, err := bugs.Parse(specs, s)
		if err != nil {
			return from, 0
		}
		n := 0
		for n < want && set.Fire(id) {
			n++
		}
		if n > run {
			seed, run = s, n
			if n == want {
				break
			}
		}
	}
	return seed, run
}
