package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --scenario /dev/zero fails fast with the limit named (it used to read
// forever, growing memory).
func TestRunScenarioDevZeroExit2(t *testing.T) {
	start := time.Now()
	code, _, stderr := runCLI(t, "run", "--scenario", "/dev/zero")
	if code != 2 || !strings.Contains(stderr, "scenario file exceeds 8 MiB") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// A run id that is not one safe path element is refused before anything is
// written, so nothing lands outside the report root.
func TestRunIDTraversalRefused(t *testing.T) {
	root := t.TempDir()
	work := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	for _, args := range [][]string{
		{"run", "--run-id", "../../../x", "--users", "1", "--media=false", "--duration", "1s"},
		{"run", "--run-id", "../../../x", "--shard", "0/2", "--users", "2", "--media=false", "--duration", "1s"},
		{"run", "--run-id", "/tmp/abs", "--users", "1"},
		{"run", "--run-id", "a/b", "--users", "1"},
		{"run", "--run-id", "..", "--users", "1"},
		{"report", "verdict", "--from-prometheus", "http://127.0.0.1:1", "--run-id", `x"} or up{`},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, "--run-id") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "x")); err == nil {
		t.Error("a report was written outside the report root")
	}
	if _, err := os.Stat(filepath.Join(work, "telechaos-report")); err == nil {
		t.Error("a report directory was created")
	}
	if err := checkRunID("20261207-135456.666-s2"); err != nil {
		t.Errorf("a generated run id is refused: %v", err)
	}
}

// Every --deploy-* flag without --deploy is a usage error naming both.
func TestDeployFlagsNeedDeploy(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--deploy-env", "A=B"},
		{"run", "--deploy-udp-port", "4000"},
		{"run", "--deploy-fault", "kill@1s"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, args[1]) || !strings.Contains(stderr, "needs --deploy") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// An address --metrics-addr cannot listen on is a usage error (exit 2), told
// before the run, not a target failure (3) after it started.
func TestMetricsAddrUnparseableExit2(t *testing.T) {
	for _, addr := range []string{"nonsense", "127.0.0.1:http:x", "127.0.0.1:99999", "[::1"} {
		code, _, stderr := runCLI(t, "run", "--users", "1", "--metrics-addr", addr)
		if code != 2 || !strings.Contains(stderr, "--metrics-addr") {
			t.Errorf("%q: exit %d, stderr %q", addr, code, stderr)
		}
	}
	if err := checkListenAddr(":9464"); err != nil {
		t.Errorf(":9464: %v", err)
	}
}

// A report directory that cannot be created is refused before any traffic:
// harness.Run's ErrConfig maps to exit 2 with a message naming the directory.
func TestUnwritableReportExit2(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "rep")
	start := time.Now()
	code, stdout, stderr := runCLI(t, "run", "--users", "1", "--media=false", "--duration", "5s", "--report", dir)
	if code != 2 || !strings.Contains(stderr, dir) || !strings.Contains(stderr, "--report") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %v: traffic ran before the report directory was checked", d)
	}
}

// 1e8 patients are refused with the bound named.
func TestPopulationBoundCLI(t *testing.T) {
	code, _, stderr := runCLI(t, "run", "--users", "100000000")
	if code != 2 || !strings.Contains(stderr, "bound of 1000000") || !strings.Contains(stderr, "--users") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
