package reports

import (
	"fmt"
	"strings"

	"github.com/telechaos/telechaos/models"
)

// maxLeakRows bounds the leaked cells AuthzMarkdown lists one by one.
const maxLeakRows = 20

// AuthzMarkdown renders the authorization matrix for summary.md: one row
// per route x identity summed over the variants (the full matrix, a
// hundred-odd cells, is in summary.json), then every leaked cell with its
// variant. "" when the run has no matrix; a matrix that did not run says
// so, never that it passed.
func AuthzMarkdown(m *models.AuthzMatrix) string {
	if m == nil {
		return ""
	}
	var b strings.Builder
	if m.Status != models.AuthzRun {
		fmt.Fprintf(&b, "**Authorization matrix**: ➖ not run: %s\n", mdCode(truncateRunes(m.Reason, 300), false))
		return b.String()
	}
	if len(m.Cells) == 0 {
		fmt.Fprintf(&b, "**Authorization matrix**: ➖ nothing tried: %s\n", mdCode(truncateRunes(m.Reason, 300), false))
		return b.String()
	}
	type key struct{ route, identity string }
	var order []key
	sum := map[key]*models.AuthzCell{}
	var leaks []models.AuthzCell
	for _, c := range m.Cells {
		k := key{c.Route, c.Identity}
		s := sum[k]
		if s == nil {
			s = &models.AuthzCell{Route: c.Route, Identity: c.Identity}
			sum[k] = s
			order = append(order, k)
		}
		s.Tried += c.Tried
		s.Denied += c.Denied
		s.Leaked += c.Leaked
		s.NotJudged += c.NotJudged
		if c.Leaked > 0 {
			leaks = append(leaks, c)
		}
	}
	t := m.Totals()
	fmt.Fprintf(&b, "**Authorization matrix**: %d tried, %d denied, %d leaked, %d not judged\n\n", t.Tried, t.Denied, t.Leaked, t.NotJudged)
	b.WriteString("| route | identity | variants | tried | denied | leaked | not judged |\n|---|---|---|---|---|---|---|\n")
	variants := map[key]int{}
	for _, c := range m.Cells {
		variants[key{c.Route, c.Identity}]++
	}
	for _, k := range order {
		s := sum[k]
		mark := ""
		if s.Leaked > 0 {
			mark = "❌ "
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %s%d | %d |\n", mdCode(k.route, true), mdCode(k.identity, true), variants[k],
			s.Tried, s.Denied, mark, s.Leaked, s.NotJudged)
	}
	if len(leaks) > 0 {
		b.WriteString("\nleaked:\n")
		for i, c := range leaks {
			if i == maxLeakRows {
				fmt.Fprintf(&b, "- … %d more in summary.json\n", len(leaks)-i)
				break
			}
			fmt.Fprintf(&b, "- %s as %s, %s: %d of %d\n", mdCode(c.Route, false), mdCode(c.Identity, false), mdCode(c.Variant, false), c.Leaked, c.Tried)
		}
	}
	return b.String()
}
