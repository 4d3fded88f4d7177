package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telechaos/telechaos/harness/deploy"
	"github.com/telechaos/telechaos/internal/dockertest"
	"github.com/telechaos/telechaos/reports"
)

// A --deploy run whose image is missing fails before anything starts
// (nothing pulled), exits 2 naming the image and make image, and still
// writes its report.
func TestDeployMissingImageWritesReport(t *testing.T) {
	dockertest.Require(t, deploy.DockerAvailable)
	dir := filepath.Join(t.TempDir(), "rep")
	const img = "telechaos-test/no-such-image:never-built"
	code, stdout, stderr := runCLI(t, "run", "--deploy", img, "--users", "1", "--media=false", "--report", dir)
	if code != 2 || !strings.Contains(stderr, img) || !strings.Contains(stderr, "make image") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	s, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	if s.Verdict != reports.VerdictError || s.ExitCode != 2 || !strings.Contains(s.Reason, "make image") || !strings.Contains(s.Error, img) {
		t.Errorf("summary: verdict %s exit %d reason %q error %q", s.Verdict, s.ExitCode, s.Reason, s.Error)
	}
	if !strings.Contains(stdout, "reason: configuration error: deploy "+img) {
		t.Errorf("verdict block: %s", stdout)
	}
}

// A --deploy run interrupted while deploying exits 130 and writes a report
// with verdict interrupted (it used to exit without one). Needs no engine:
// the interrupt comes first.
func TestDeployInterruptedWritesReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rep")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // SIGINT before the engine answered
	var out, errb bytes.Buffer
	code := runMain(ctx, []string{"run", "--deploy", "telechaos-test/whatever:1", "--users", "1", "--report", dir}, &out, &errb)
	if code != 130 {
		t.Errorf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	s, err := reports.ReadSummary(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, errb.String())
	}
	if s.Verdict != reports.VerdictInterrupted || !s.Interrupted || !strings.Contains(s.Error, "interrupted while deploying") {
		t.Errorf("summary: verdict %s interrupted %v error %q", s.Verdict, s.Interrupted, s.Error)
	}
}

// An unwritable --report with --deploy is refused before anything is built
// or started.
func TestDeployUnwritableReportExit2(t *testing.T) {
	code, _, stderr := runCLI(t, "run", "--deploy", "clinic", "--report", "/proc/nope/rep")
	if code != 2 || !strings.Contains(stderr, "--report") || strings.Contains(stderr, "building") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
