package oracle

import (
	"strings"
	"testing"

	"github.com/telechaos/telechaos/models"
)

func authzLedger(t *testing.T) *models.Ledger {
	t.Helper()
	l := models.NewLedger()
	for _, u := range []string{"pa", "pb"} {
		l.AddUser(u, models.Patient)
	}
	l.AddUser("da", models.Clinician)
	l.AddUser("db", models.Clinician)
	for _, c := range []models.Consultation{{ID: "ca", Patient: "pa", Clinician: "da"}, {ID: "cb", Patient: "pb", Clinician: "db"}} {
		if err := l.AddConsultation(c); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestCheckAuthzJudgesAndTallies(t *testing.T) {
	o := New(authzLedger(t), Options{})
	if o.AuthzMatrix() != nil {
		t.Fatal("matrix before anything was declared")
	}
	o.AuthzDeclared(true, "")
	probe := func(prober, cons, variant string, status, bytes int, write bool) {
		o.CheckAuthz(AuthzProbe{Route: "R", Identity: "patient", Variant: variant, Write: write, Prober: prober,
			Consultation: cons, Claim: "pb", Status: status, Bytes: bytes})
	}
	probe("pa", "cb", "token", 404, 0, false)
	probe("pa", "cb", "token", 403, 0, false)
	probe("pa", "cb", "no-token", 401, 0, false)
	probe("pa", "cb", "header:X-User-Id+token", 200, 10, true)
	probe("pa", "cb", "header:X-User-Id+token", 200, 10, true) // a duplicate: one violation
	probe("pa", "cb", "query:as+token", 404, 7, false)         // bytes with a 4xx: a leak
	probe("pa", "cb", "malformed-token", 503, 0, false)        // not judged
	probe("pa", "cb", "truncated-token", 0, 0, false)          // no answer: not judged
	probe("pb", "cb", "token", 200, 10, false)                 // own consultation: no probe
	probe("pa", "nope", "token", 200, 10, false)               // unknown: not attributable
	m := o.AuthzMatrix()
	if m.Status != models.AuthzRun {
		t.Fatalf("status %s", m.Status)
	}
	got := map[string]models.AuthzCell{}
	for _, c := range m.Cells {
		got[c.Variant] = c
	}
	want := map[string][4]int64{ // tried, denied, leaked, not judged
		"token": {2, 2, 0, 0}, "no-token": {1, 1, 0, 0}, "header:X-User-Id+token": {2, 0, 2, 0},
		"query:as+token": {1, 0, 1, 0}, "malformed-token": {1, 0, 0, 1}, "truncated-token": {1, 0, 0, 1},
	}
	if len(got) != len(want) {
		t.Fatalf("cells %+v", m.Cells)
	}
	for v, w := range want {
		c := got[v]
		if [4]int64{c.Tried, c.Denied, c.Leaked, c.NotJudged} != w {
			t.Errorf("%s: %+v, want %v", v, c, w)
		}
	}
	vs := o.Violations()
	if len(vs) != 2 {
		t.Fatalf("violations %d, want 2: %+v", len(vs), vs)
	}
	v := vs[0]
	if v.Invariant != ReplayAccessControl || v.Viewer != "pa" || v.Consultation != "cb" || v.Owner != "pb" ||
		!strings.Contains(v.Detail, "R (identity patient, variant header:X-User-Id+token)") ||
		!strings.Contains(v.Detail, "wrote (accepted)") || !strings.Contains(v.Detail, "claiming to be pb") {
		t.Errorf("evidence %+v", v)
	}
	st := o.Stats()
	if j := st.Judgement[ReplayAccessControl]; j.Judged != 6 || j.NotJudged != 2 {
		t.Errorf("judgement %+v, want 6 judged, 2 not", j)
	}
	if st.Authz == nil || st.Authz.Totals().Tried != 8 {
		t.Errorf("stats authz %+v", st.Authz)
	}
}

func TestAuthzNotRun(t *testing.T) {
	o := New(authzLedger(t), Options{})
	o.AuthzDeclared(false, "no matrix here")
	m := o.AuthzMatrix()
	if m == nil || m.Status != models.AuthzNotRun || m.Reason != "no matrix here" {
		t.Fatalf("%+v", m)
	}
	o2 := New(authzLedger(t), Options{})
	o2.AuthzDeclared(true, "")
	if m := o2.AuthzMatrix(); m.Status != models.AuthzRun || m.Reason == "" || len(m.Cells) != 0 {
		t.Fatalf("declared, nothing tried: %+v", m)
	}
}
