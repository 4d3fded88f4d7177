package verdict

import (
	"fmt"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
	"slices"
	"sort"
	"strings"
)

// Judgement builds the per-invariant judgement table of a run and the lines
// that keep it from passing.
func Judgement(st oracle.Stats, sc *scenarios.Scenario) (map[string]reports.Judgement, []string) {
	out := map[string]reports.Judgement{}
	var short []string
	for _, inv := range models.InvariantIDs() {
		j := st.Judgement[inv]
		rj := reports.Judgement{Judged: j.Judged, NotJudged: j.NotJudged, Reasons: j.Reasons, Examples: j.Examples,
			Required: sc.MinJudged(inv)}
		if line := rj.Classify(inv, len(sc.Invariants) == 0 || slices.Contains(sc.Invariants, inv)); line != "" {
			short = append(short, line+": "+reasonsLine(j))
		}
		out[inv] = rj
	}
	return out, short
}

// reasonsLine lists the reasons of what was not judged, most frequent first,
// with the first example of the most frequent one.
func reasonsLine(j oracle.Judgement) string {
	type rc struct {
		r string
		n int64
	}
	var rs []rc
	for r, n := range j.Reasons {
		rs = append(rs, rc{r, n})
	}
	sort.Slice(rs, func(a, b int) bool { return rs[a].n > rs[b].n || rs[a].n == rs[b].n && rs[a].r < rs[b].r })
	parts := make([]string, 0, len(rs))
	for i, x := range rs {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("%d more reasons", len(rs)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s", x.n, x.r))
	}
	line := strings.Join(parts, ", ")
	if len(rs) > 0 {
		if ex := j.Examples[rs[0].r]; ex != "" {
			line += " (first: " + ex + ")"
		}
	}
	return line
}
