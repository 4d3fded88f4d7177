package dockertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fakeTB records what decide decided instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

// TestDecision: without an engine a test skips, unless CI=true where it
// fails; with an engine it runs. (testcontainers falls back to
// /var/run/docker.sock when DOCKER_HOST is broken, so "no engine" cannot be
// staged from outside on a machine that has one.)
func TestDecision(t *testing.T) {
	noEngine := errors.New("deploy: no docker engine: dial unix /var/run/docker.sock: no such file")
	for _, tc := range []struct {
		name          string
		err           error
		ci            string
		skip, fail    bool
		wantInMessage string
	}{
		{"engine", nil, "", false, false, ""},
		{"engine in CI", nil, "true", false, false, ""},
		{"no engine", noEngine, "", true, false, "set CI=true"},
		{"no engine, CI=1 is not CI=true", noEngine, "1", true, false, "no docker engine"},
		{"no engine in CI", noEngine, "true", false, true, "docker is required when CI=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			decide(f, tc.err, tc.ci)
			if (f.skipped != "") != tc.skip || (f.failed != "") != tc.fail {
				t.Fatalf("skipped=%q failed=%q, want skip=%v fail=%v", f.skipped, f.failed, tc.skip, tc.fail)
			}
			if msg := f.skipped + f.failed; !strings.Contains(msg, tc.wantInMessage) {
				t.Errorf("message %q lacks %q", msg, tc.wantInMessage)
			}
		})
	}
}

// TestRequireCallsTheCheck: Require asks the given check, and its error
// reaches the decision (here: a skip, with CI unset).
func TestRequireCallsTheCheck(t *testing.T) {
	t.Setenv("CI", "")
	called := false
	f := &fakeTB{TB: t}
	Require(f, func(context.Context) error { called = true; return errors.New("engine down") })
	if !called || !strings.Contains(f.skipped, "engine down") || f.failed != "" {
		t.Errorf("called=%v skipped=%q failed=%q", called, f.skipped, f.failed)
	}
	f = &fakeTB{TB: t}
	Require(f, func(context.Context) error { return nil })
	if f.skipped != "" || f.failed != "" {
		t.Errorf("engine up: skipped=%q failed=%q", f.skipped, f.failed)
	}
}
