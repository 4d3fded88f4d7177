package models

import "sort"

// Authorization matrix statuses in a run's summary.
const (
	AuthzRun    = "run"     // the target's driver declared its routes and the matrix probed them
	AuthzNotRun = "not-run" // the driver declares no matrix: only the plain probes ran (never a pass)
)

// AuthzMatrix is the authorization matrix's tally (summary.json "authz"):
// per route x identity x variant, how many requests were tried, denied and
// leaked. Status says whether the matrix ran at all; a run that never
// probed (no foreign ids harvested) has Status run and no cells.
type AuthzMatrix struct {
	Status string      `json:"status"`
	Reason string      `json:"reason,omitempty"`
	Cells  []AuthzCell `json:"cells,omitempty"`
}

// AuthzCell is one row of the matrix. Route is the driver's route name
// ("GET /v1/replays/{rid}"), Identity who asked ("patient", "clinician": a
// user of other consultations), Variant how the request was varied
// ("token", "no-token", "header:X-User-Id+token", "own-replay+foreign-track"...).
// Tried = Denied + Leaked + NotJudged (no answer, a 5xx or a redirect).
type AuthzCell struct {
	Route     string `json:"route"`
	Identity  string `json:"identity"`
	Variant   string `json:"variant"`
	Tried     int64  `json:"tried"`
	Denied    int64  `json:"denied"`
	Leaked    int64  `json:"leaked"`
	NotJudged int64  `json:"not_judged,omitempty"`
}

// Totals sums the cells.
func (m AuthzMatrix) Totals() AuthzCell {
	var t AuthzCell
	for _, c := range m.Cells {
		t.Tried += c.Tried
		t.Denied += c.Denied
		t.Leaked += c.Leaked
		t.NotJudged += c.NotJudged
	}
	return t
}

// SortCells orders the cells by route, identity and variant.
func (m *AuthzMatrix) SortCells() {
	sort.Slice(m.Cells, func(i, j int) bool {
		a, b := m.Cells[i], m.Cells[j]
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		if a.Identity != b.Identity {
			return a.Identity < b.Identity
		}
		return a.Variant < b.Variant
	})
}
