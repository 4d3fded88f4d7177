package reports

import (
	"strings"
	"testing"

	"github.com/telechaos/telechaos/models"
)

func TestAuthzMarkdown(t *testing.T) {
	if AuthzMarkdown(nil) != "" {
		t.Error("nil matrix rendered")
	}
	if s := AuthzMarkdown(&models.AuthzMatrix{Status: models.AuthzNotRun, Reason: "no prober"}); !strings.Contains(s, "not run") || !strings.Contains(s, "no prober") {
		t.Errorf("not run: %q", s)
	}
	m := &models.AuthzMatrix{Status: models.AuthzRun, Cells: []models.AuthzCell{
		{Route: "GET /v1/replays/{rid}", Identity: "patient", Variant: "token", Tried: 3, Denied: 1, Leaked: 2},
		{Route: "GET /v1/replays/{rid}", Identity: "patient", Variant: "no-token", Tried: 2, Denied: 2},
		{Route: "POST /v1/consultations/{cid}/end", Identity: "clinician", Variant: "query:as+token", Tried: 1, NotJudged: 1},
	}}
	s := AuthzMarkdown(m)
	for _, want := range []string{
		"6 tried, 3 denied, 2 leaked, 1 not judged",
		"| `GET /v1/replays/{rid}` | `patient` | 2 | 5 | 3 | ❌ 2 | 0 |",
		"| `POST /v1/consultations/{cid}/end` | `clinician` | 1 | 1 | 0 | 0 | 1 |",
		"- `GET /v1/replays/{rid}` as `patient`, `token`: 2 of 3",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	if strings.Contains(s, "no-token`: ") {
		t.Errorf("a denied cell listed as leaked:\n%s", s)
	}
}
