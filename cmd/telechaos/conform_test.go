package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/target"
)

// secondEndScheme is a test-only target: the embedded clinic behind a
// driver that accepts a second end (it answers with the first end's answer).
const secondEndScheme = "conformtest-second-end"

func init() {
	target.MustRegister(secondEndScheme, target.OpenerFunc(func(ctx context.Context, ref string, opts target.Options) (*target.Opened, error) {
		op, err := target.Open(ctx, "embedded", opts)
		if err != nil {
			return nil, err
		}
		op.Target = &endTwice{Target: op.Target, ended: map[string]driver.EndResult{}}
		return op, nil
	}))
}

type endTwice struct {
	driver.Target
	mu    sync.Mutex
	ended map[string]driver.EndResult
}

func (e *endTwice) End(ctx context.Context, s driver.Session, cid string) (driver.EndResult, error) {
	e.mu.Lock()
	prev, ok := e.ended[cid]
	e.mu.Unlock()
	if ok {
		return prev, nil
	}
	res, err := e.Target.End(ctx, s, cid)
	if err == nil {
		e.mu.Lock()
		e.ended[cid] = res
		e.mu.Unlock()
	}
	return res, err
}

// row finds clause's row of the conform table: its result column.
func row(t *testing.T, out, clause string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(clause) + `\s+(pass|FAIL|not run)\s`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no row for clause %s in:\n%s", clause, out)
	}
	return m[1]
}

func TestConformEmbeddedExits0(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls against the embedded clinic")
	}
	code, out, errb := runCLI(t, "conform", "--target", "embedded")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	for _, c := range []string{"open", "register", "join", "switch", "rejoin", "end", "list", "fetch", "deny", "second-end"} {
		if got := row(t, out, c); got != "pass" {
			t.Errorf("clause %s: %s, want pass", c, got)
		}
	}
	if !strings.Contains(out, "embedded conforms: 14/14 clauses hold") {
		t.Errorf("no conforming summary:\n%s", out)
	}
	t.Log(out)
}

func TestConformBrokenTargetExits1(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls against the embedded clinic")
	}
	code, out, errb := runCLI(t, "conform", "--target", secondEndScheme)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	if got := row(t, out, "second-end"); got != "FAIL" {
		t.Errorf("second-end: %s, want FAIL\n%s", got, out)
	}
	if got := row(t, out, "deny"); got != "pass" {
		t.Errorf("deny: %s, want pass (only the second end is broken)\n%s", got, out)
	}
	for _, w := range []string{"want 409", "request: end ", "answer:  ok: consultation", "failed: second-end"} {
		if !strings.Contains(out, w) {
			t.Errorf("output does not say %q:\n%s", w, out)
		}
	}
}

// TestConformEmbeddedBugExits1: a catalogue bug of the clinic itself (the
// media endpoint checks the token, not the owner) breaks the deny clause.
func TestConformEmbeddedBugExits1(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC calls against the embedded clinic")
	}
	code, out, errb := runCLI(t, "conform", "--target", "embedded", "--bug", "bola-media")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	if got := row(t, out, "deny"); got != "FAIL" {
		t.Errorf("deny: %s, want FAIL\n%s", got, out)
	}
	for _, w := range []string{"were not denied", "media (", "request: get replay", "answer:  ok:"} {
		if !strings.Contains(out, w) {
			t.Errorf("the deny failure does not say %q:\n%s", w, out)
		}
	}
}

func TestConformUsageExits2(t *testing.T) {
	for _, args := range [][]string{
		{"conform"},
		{"conform", "--target"},
		{"conform", "--target", "nosuchscheme://x"},
		{"conform", "--target", "http://127.0.0.1:1", "--bug", "bola-media"},
		{"conform", "--target", "embedded", "--bug", "no-such-bug"},
		{"conform", "--target", "embedded", "extra"},
		{"conform", "--target", "embedded", "--timeout", "0s"},
	} {
		code, out, errb := runCLI(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", args, code, out, errb)
		}
		if out != "" {
			t.Errorf("%v: a usage error printed a table:\n%s", args, out)
		}
	}
}

// TestConformUnreachableNotPassed: a URL nobody listens on fails health and
// every clause after it is failed or not run, none passed but open.
func TestConformUnreachableNotPassed(t *testing.T) {
	code, out, errb := runCLI(t, "conform", "--target", closedPort(t), "--settle", "100ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	for _, c := range []string{"health", "register"} {
		if got := row(t, out, c); got != "FAIL" {
			t.Errorf("%s: %s, want FAIL\n%s", c, got, out)
		}
	}
	for _, c := range []string{"book", "join", "end", "list", "deny", "second-end"} {
		if got := row(t, out, c); got != "not run" {
			t.Errorf("%s: %s, want not run\n%s", c, got, out)
		}
	}
}
