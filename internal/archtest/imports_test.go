package archtest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// pkg is what `go list -json` says of one of our packages.
type pkg struct {
	ImportPath string
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

// list returns the module's packages (non-test imports), by import path.
func list(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "github.com/telechaos/telechaos/...")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: the rules below would prove nothing", len(pkgs))
	}
	return pkgs
}

// module is this repository's module path.
const module = "github.com/telechaos/telechaos"

func ours(paths []string) []string {
	var out []string
	for _, p := range paths {
		if p == module || strings.HasPrefix(p, module+"/") {
			out = append(out, p)
		}
	}
	return out
}

func under(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }

// TestOracleSideSharesNoCodeWithTheClinic: the clinic is the target, the
// oracle judges it. An oracle that shared the target's code would share its
// bugs, so neither side may reach the other's packages.
func TestOracleSideSharesNoCodeWithTheClinic(t *testing.T) {
	pkgs := list(t)
	for path, p := range pkgs {
		if !under(path, "github.com/telechaos/telechaos/clinic") {
			continue
		}
		for _, d := range ours(p.Deps) {
			if !under(d, "github.com/telechaos/telechaos/clinic") {
				t.Errorf("%s depends on %s: the clinic imports nothing of the harness side", path, d)
			}
		}
	}
	for _, root := range []string{"github.com/telechaos/telechaos/models", "github.com/telechaos/telechaos/harness/oracle", "github.com/telechaos/telechaos/harness/driver", "github.com/telechaos/telechaos/reports", "github.com/telechaos/telechaos/internal/hostile"} {
		p, ok := pkgs[root]
		if !ok {
			t.Errorf("%s: not in the module", root)
			continue
		}
		for _, d := range ours(p.Deps) {
			if under(d, "github.com/telechaos/telechaos/clinic") {
				t.Errorf("%s depends on %s: the oracle side shares no code with the clinic", root, d)
			}
		}
	}
}

// TestPureVocabularyAndReports: models imports none of our packages;
// reports only models.
func TestPureVocabularyAndReports(t *testing.T) {
	pkgs := list(t)
	if d := ours(pkgs["github.com/telechaos/telechaos/models"].Imports); len(d) > 0 {
		t.Errorf("models imports %v: it is the vocabulary everyone imports, and imports none of ours", d)
	}
	for _, d := range ours(pkgs["github.com/telechaos/telechaos/reports"].Imports) {
		if d != "github.com/telechaos/telechaos/models" {
			t.Errorf("reports imports %s: reports read the run's results, in models' vocabulary only", d)
		}
	}
}

// clinicImporters are the only packages that may import the clinic: the
// embedded target (the one place the harness starts it in-process, behind
// the target registry) and the clinic's own binary. Anything else reaches
// the clinic through harness/embedded or harness/target; a test may import
// it (go list's Imports are non-test).
var clinicImporters = []string{
	"github.com/telechaos/telechaos/harness/embedded", // the embedded target
	"github.com/telechaos/telechaos/cmd/clinic",       // the clinic's own binary
}

func TestOnlyTheEmbeddedTargetImportsTheClinic(t *testing.T) {
	pkgs := list(t)
	var got []string
	for path, p := range pkgs {
		if under(path, "github.com/telechaos/telechaos/clinic") {
			continue
		}
		if slices.ContainsFunc(p.Imports, func(d string) bool { return under(d, "github.com/telechaos/telechaos/clinic") }) {
			got = append(got, path)
			if !slices.Contains(clinicImporters, path) {
				t.Errorf("%s imports the clinic: start it through the packages that already do (%v)", path, clinicImporters)
			}
		}
	}
	for _, want := range clinicImporters {
		if !slices.Contains(got, want) {
			t.Errorf("%s no longer imports the clinic: remove it from clinicImporters so the list keeps shrinking", want)
		}
	}
}

// specRoot is the scenario spec: the scenario format and the fault spec
// (scenarios/faultspec). It depends, transitively, on models among our
// packages and on nothing else of ours, so loading a YAML scenario builds
// no engine (no pion, no Prometheus, no clinic).
const specRoot = "github.com/telechaos/telechaos/scenarios"

// maxSpecDeps bounds the packages (standard library and YAML included)
// that building the spec takes: 86 when the fault spec moved out of
// harness/chaos (267 before). A new heavy import fails here.
const maxSpecDeps = 110

func TestScenarioSpecImportsOnlyTheVocabulary(t *testing.T) {
	pkgs := list(t)
	found := 0
	for path, p := range pkgs {
		if !under(path, specRoot) {
			continue
		}
		found++
		for _, d := range ours(p.Deps) {
			if d != "github.com/telechaos/telechaos/models" && !under(d, specRoot) {
				t.Errorf("%s depends on %s: the spec imports only models among our packages (and its own sub-packages)", path, d)
			}
		}
		if len(p.Deps) > maxSpecDeps {
			t.Errorf("%s builds %d packages, over %d: the spec is read without the engine", path, len(p.Deps), maxSpecDeps)
		}
	}
	if found < 2 || !slices.ContainsFunc(pkgs[specRoot].Deps, func(d string) bool { return d == "github.com/telechaos/telechaos/models" }) {
		t.Errorf("found %d spec packages, scenarios depends on %v: the rule above would prove nothing", found, ours(pkgs[specRoot].Deps))
	}
}

// testingImporters are the non-test packages that may import "testing":
// helpers whose API is for tests. Anything else that imports it drags the
// test framework (and its flags) into the binaries.
var testingImporters = []string{
	"github.com/telechaos/telechaos/internal/dockertest", // Require(tb): skip without Docker, fail in CI
	"github.com/telechaos/telechaos/harness/deploy/gate", // the release gate as a go test API (gate.Run(t, ...))
}

func TestOnlyTestHelpersImportTesting(t *testing.T) {
	pkgs := list(t)
	for path, p := range pkgs {
		if slices.Contains(p.Imports, "testing") && !slices.Contains(testingImporters, path) {
			t.Errorf("%s imports testing in non-test code: move the helper to a _test.go file or a test-helper package (%v)", path, testingImporters)
		}
	}
	for _, want := range testingImporters {
		if p, ok := pkgs[want]; !ok || !slices.Contains(p.Imports, "testing") {
			t.Errorf("%s no longer imports testing (or is gone): remove it from testingImporters", want)
		}
	}
}
