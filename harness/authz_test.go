package harness

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
)

// The authorization matrix in whole runs: against the correct embedded
// clinic every cell tried is denied and the run passes; the tally reaches
// summary.json; bola-media is caught by the matrix's cells; a target whose
// driver declares no matrix is reported "not run".

func TestEmbeddedMatrixCorrectClinicAllDenied(t *testing.T) {
	sc := mediaScenario(16)
	sc.Media = false
	sc.Behaviour.ProbeOther = 1
	dir := filepath.Join(t.TempDir(), "report")
	res, err := Run(context.Background(), RunConfig{Scenario: sc, ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Verdict != reports.VerdictPass {
		t.Fatalf("verdict %s violations %+v", s.Verdict, s.Violations)
	}
	m := s.Authz
	if m == nil || m.Status != models.AuthzRun {
		t.Fatalf("authz %+v, want run", m)
	}
	tot := m.Totals()
	if tot.Tried == 0 || tot.Leaked != 0 || tot.Denied+tot.NotJudged != tot.Tried {
		t.Fatalf("totals %+v", tot)
	}
	roles, writes := map[string]bool{}, 0
	for _, c := range m.Cells {
		roles[c.Identity] = true
		if strings.HasPrefix(c.Route, "POST") {
			writes += int(c.Tried)
		}
	}
	if !roles["patient"] || !roles["clinician"] || writes == 0 {
		t.Fatalf("identities %v, writes tried %d: want both roles and writes probed", roles, writes)
	}
	back, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if back.Authz == nil || back.Authz.Totals() != tot {
		t.Fatalf("summary.json authz %+v, want totals %+v", back.Authz, tot)
	}
}

func TestEmbeddedMatrixCatchesBOLAMedia(t *testing.T) {
	sc := mediaScenario(12)
	sc.Media = false
	sc.Behaviour.ProbeOther = 1
	sc.Bugs = []string{"bola-media"}
	sc.Expect = models.ReplayAccessControl
	res, err := Run(context.Background(), RunConfig{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Authz == nil || res.Summary.Authz.Totals().Leaked == 0 {
		t.Fatalf("authz %+v: want leaks", res.Summary.Authz)
	}
	found := false
	for _, v := range res.Summary.Violations {
		if strings.Contains(v.Detail, "authorization matrix: ") && strings.Contains(v.Detail, "GET /v1/replays/{rid} (identity ") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no matrix violation on the replay route: %+v", res.Summary.Violations)
	}
}

func TestFakeTargetMatrixNotRun(t *testing.T) {
	sc := smallScenario(8)
	sc.Behaviour.ProbeOther = 1
	res, err, _ := fakeRun(t, context.Background(), sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Summary.Authz
	if m == nil || m.Status != models.AuthzNotRun || m.Reason == "" {
		t.Fatalf("authz %+v, want not-run with a reason", m)
	}
}

// With real calls the media route and the mixed-id fetch (own replay, a
// harvested track) are probed too, and still denied.
func TestEmbeddedMatrixMediaRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	sc := mediaScenario(10)
	sc.Behaviour.ProbeOther = 1
	sc.Behaviour.SwitchToVideo = 0
	sc.Behaviour.CallMin, sc.Behaviour.CallMax = dur(300*time.Millisecond), dur(600*time.Millisecond)
	res, err := Run(context.Background(), RunConfig{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Verdict != reports.VerdictPass {
		t.Fatalf("verdict %s violations %+v", s.Verdict, s.Violations)
	}
	media, mix := int64(0), int64(0)
	for _, c := range s.Authz.Cells {
		if strings.HasSuffix(c.Route, "/media?track=") {
			media += c.Tried
			if c.Variant == "own-replay+foreign-track" {
				mix += c.Tried
			}
		}
		if c.Leaked != 0 {
			t.Errorf("cell %+v leaked", c)
		}
	}
	if media == 0 {
		t.Fatalf("media route never probed: %+v", s.Authz.Cells)
	}
	t.Logf("media cells tried %d (own-replay+foreign-track %d), totals %+v", media, mix, s.Authz.Totals())
}
