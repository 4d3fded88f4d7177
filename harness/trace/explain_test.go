package trace

import (
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	det := &Trace{Header: Header{Target: TargetEmbedded, Bugs: []string{"switch-reuse:1"}, BugSeed: 3}}
	prob := &Trace{Header: Header{Target: TargetEmbedded, Bugs: []string{"cache-key:0.3"}, BugSeed: 3}}
	cases := []struct {
		name     string
		tr       *Trace
		target   string
		n, total int
		want     string
	}{
		{"deterministic, always", det, "", 3, 3, ""},
		{"nothing ran", det, "", 0, 0, ""},
		{"probabilistic", prob, "", 1, 5, "cache-key (p=0.3)"},
		{"probabilistic names the seed", prob, "", 1, 5, "bug seed 3"},
		{"never", det, "", 0, 3, "did not reproduce"},
		{"partial", det, "", 2, 5, "2 of 5"},
		{"url target", det, "http://127.0.0.1:8088", 1, 5, "is not seeded by the trace"},
		{"url target suggests embedded", det, "http://127.0.0.1:8088", 1, 5, "--target embedded"},
		{"url target, always", det, "http://127.0.0.1:8088", 5, 5, "5 of 5"},
	}
	for _, c := range cases {
		got := Explain(c.tr, c.target, c.n, c.total)
		if c.want == "" && got != "" {
			t.Errorf("%s: %q, want nothing", c.name, got)
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want it to say %q", c.name, got, c.want)
		}
	}
}
