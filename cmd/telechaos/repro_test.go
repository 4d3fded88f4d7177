package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// listScopeTrace is the smallest list-scope incident: two patients of one
// clinician; after both calls end, p2's replay list offers p1's recording.
const listScopeTrace = `{"telechaos_trace":1,"scenario":"bug-list-scope","seed":1,"target":"embedded","bugs":["list-scope:1"],"bug_seed":1,"expect":"replay-list-ownership"}
{"user":"p1","role":"patient"}
{"user":"p2","role":"patient"}
{"user":"c1","role":"clinician"}
{"op":"book","user":"p1","with":"c1","consult":"k1"}
{"op":"end","user":"p1","consult":"k1","after":[0]}
{"op":"book","user":"p2","with":"c1","consult":"k2","after":[1]}
{"op":"end","user":"p2","consult":"k2","after":[2]}
{"op":"list","user":"p2","after":[3]}
`

func writeTrace(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "repro-1.trace")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReproReproducesEveryTime(t *testing.T) {
	code, out, errb := runCLI(t, "repro", writeTrace(t, listScopeTrace), "--times", "3")
	if code != 1 || !strings.Contains(out, "reproduced 3/3") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and reproduced 3/3", code, out, errb)
	}
}

func TestReproCorrectClinicNeverReproduces(t *testing.T) {
	clean := strings.Replace(listScopeTrace, `"bugs":["list-scope:1"]`, `"bugs":[]`, 1)
	code, out, errb := runCLI(t, "repro", writeTrace(t, clean), "--times", "2")
	if code != 0 || !strings.Contains(out, "reproduced 0/2") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 0 and reproduced 0/2", code, out, errb)
	}
}

func TestReproBadTraceNamesTheLine(t *testing.T) {
	bad := strings.Replace(listScopeTrace, `"op":"list"`, `"op":"teleport"`, 1)
	code, _, errb := runCLI(t, "repro", writeTrace(t, bad))
	if code != 2 || !strings.Contains(errb, ":9:") {
		t.Fatalf("exit %d, stderr %q; want exit 2 naming line 9", code, errb)
	}
	code, _, errb = runCLI(t, "repro")
	if code != 2 || !strings.Contains(errb, "no trace file") {
		t.Fatalf("no file: exit %d, stderr %q", code, errb)
	}
}
