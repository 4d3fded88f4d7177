// Package bugs is the clinic's switchboard of historical defects. Each bug lives
// in the real code path it concerns (a recorder slot, a query, a cache key); this
// package only decides, reproducibly, whether it fires on a given operation.
package bugs

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ID names a catalogue bug.
type ID string

// The catalogue (docs/design.md section 7).
const (
	SwitchReuse   ID = "switch-reuse"   // incident 2020-06-09: recorder slot owner not reset on switch
	ListScope     ID = "list-scope"     // replay list scoped by clinician, not by caller
	BOLAMedia     ID = "bola-media"     // media endpoint checks the token, not the owner
	CacheKey      ID = "cache-key"      // replay list cache key omits the user
	PrerollLeak   ID = "preroll-leak"   // shared pre-roll buffer not reset between recordings
	SwitchRace    ID = "switch-race"    // concurrent switches race on shared state
	LostOnCrash   ID = "lost-on-crash"  // media buffered in memory, written only at graceful end
	LiveCrosstalk ID = "live-crosstalk" // after a switch, video forwarded to the wrong subscriber
)

// All lists the catalogue in a stable order.
var All = []ID{SwitchReuse, ListScope, BOLAMedia, CacheKey, PrerollLeak, SwitchRace, LostOnCrash, LiveCrosstalk}

// Set is the set of enabled bugs with their firing probabilities. The zero value
// and nil have every bug off. Safe for concurrent use.
type Set struct {
	mu   sync.Mutex
	prob map[ID]float64
	rng  *rand.Rand
}

// Parse reads specs of the form ID or ID:PROBABILITY (0 < p <= 1, default 1).
// The seed fixes the sequence of firing decisions.
func Parse(specs []string, seed uint64) (*Set, error) {
	s := &Set{prob: map[ID]float64{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for _, spec := range specs {
		for _, part := range strings.Split(spec, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, p, hasP := strings.Cut(part, ":")
			id := ID(name)
			if !slices.Contains(All, id) {
				return nil, fmt.Errorf("unknown bug %q (known: %s)", name, strings.Join(names(), ", "))
			}
			prob := 1.0
			if hasP {
				v, err := strconv.ParseFloat(p, 64)
				if err != nil || v <= 0 || v > 1 {
					return nil, fmt.Errorf("bug %s: probability %q must be a number in (0,1]", name, p)
				}
				prob = v
			}
			s.prob[id] = prob
		}
	}
	return s, nil
}

func names() []string {
	out := make([]string, len(All))
	for i, id := range All {
		out[i] = string(id)
	}
	return out
}

// Enabled reports whether a bug is switched on at all.
func (s *Set) Enabled(id ID) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.prob[id]
	return ok
}

// Fire decides whether bug id fires on this operation. A bug that is off never
// fires and consumes no randomness, so enabling one bug does not change when
// another fires.
func (s *Set) Fire(id ID) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.prob[id]
	if !ok {
		return false
	}
	if p >= 1 {
		return true
	}
	return s.rng.Float64() < p
}

// String lists the enabled bugs as ID:P, sorted.
func (s *Set) String() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range All {
		if p, ok := s.prob[id]; ok {
			out = append(out, fmt.Sprintf("%s:%g", id, p))
		}
	}
	return strings.Join(out, ",")
}
