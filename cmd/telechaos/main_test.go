package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/reports"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := runMain(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// closedPort returns a loopback URL nobody listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestUsageErrorsExit2(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\npopulation: [1, 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no command":       {},
		"unknown command":  {"frobnicate"},
		"unknown flag":     {"run", "--nope"},
		"unknown scenario": {"run", "--scenario", "no-such-scenario"},
		"bad yaml":         {"run", "--scenario", bad},
		"bad users":        {"run", "--users", "0"},
		"bad set":          {"run", "--set", "population.nope=3"},
		"unknown bug":      {"run", "--bug", "no-such-bug", "--users", "1"},
		"extra args":       {"run", "stray"},
		"selftest seeds":   {"selftest", "--seeds", "0"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := runCLI(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, stderr)
			}
			if name != "no command" && !strings.Contains(stderr, "telechaos") {
				t.Errorf("no clear message: %q", stderr)
			}
		})
	}
}

func TestUnreachableTargetExit3WithReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rep")
	code, stdout, stderr := runCLI(t, "run", "--target", closedPort(t), "--users", "2", "--report", dir)
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "unreachable") && !strings.Contains(stderr, "refused") {
		t.Errorf("message does not say why: %s", stderr)
	}
	s, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil || s.Verdict != reports.VerdictError {
		t.Errorf("summary %v %+v", err, s)
	}
}

func TestScenariosListsBuiltins(t *testing.T) {
	code, out, _ := runCLI(t, "scenarios")
	if code != 0 || !strings.Contains(out, "smoke") || !strings.Contains(out, "bug-list-scope") {
		t.Errorf("exit %d out %q", code, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(l) == 0 {
			t.Error("empty line")
		}
	}
}

func TestSmallRunPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	dir := filepath.Join(t.TempDir(), "rep")
	code, out, stderr := runCLI(t, "run", "--users", "4", "--seed", "3", "--report", dir,
		"--set", "behaviour.call_min=1s", "--set", "behaviour.call_max=1500ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "verdict: PASS") || !strings.Contains(out, "report: "+dir) {
		t.Errorf("verdict table: %s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 80 {
			t.Errorf("line longer than 80 columns: %q", l)
		}
	}
	for _, f := range []string{reports.SummaryFile, reports.JUnitFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestListScopeRunExits1(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	dir := filepath.Join(t.TempDir(), "rep")
	code, out, stderr := runCLI(t, "run", "--scenario", "bug-list-scope", "--users", "8", "--report", dir)
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "repro: telechaos run --scenario bug-list-scope --seed 1 --users 8 --bug list-scope:1") {
		t.Errorf("no repro line: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, reports.EvidenceFile(1))); err != nil {
		t.Error(err)
	}
}

func TestInterruptExits130WithReport(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	dir := filepath.Join(t.TempDir(), "rep")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2*time.Second, cancel)
	var out, errb bytes.Buffer
	start := time.Now()
	code := runMain(ctx, []string{"run", "--users", "100", "--report", dir}, &out, &errb)
	if code != 130 {
		t.Fatalf("exit %d, want 130\n%s\n%s", code, out.String(), errb.String())
	}
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("interrupt took %v", d)
	}
	s, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil || s.Verdict != reports.VerdictInterrupted {
		t.Errorf("summary %v %+v", err, s)
	}
}

func TestSelftestOneBug(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls")
	}
	code, out, stderr := runCLI(t, "selftest", "--quick", "--only", "list-scope")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "bug-list-scope") || !strings.Contains(out, "caught") || !strings.Contains(out, "clean") {
		t.Errorf("table: %s", out)
	}
	if code, _, _ := runCLI(t, "selftest", "--only", "nope"); code != 2 {
		t.Errorf("unknown bug: exit %d", code)
	}
}

func TestGarbageTargetExit3(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>not a clinic</html>"))
	}))
	defer srv.Close()
	code, out, stderr := runCLI(t, "run", "--target", srv.URL, "--users", "2", "--report", filepath.Join(t.TempDir(), "r"))
	if code != 3 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "garbage") {
		t.Errorf("message does not say the answer was garbage: %s", stderr)
	}
}
