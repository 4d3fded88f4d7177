// Package dockertest holds the test helper that decides whether a test that
// needs a Docker engine runs, skips or fails. It is imported by test files
// only, so no package of the harness imports testing outside its tests.
//
// It takes the engine check as a function (deploy.DockerAvailable) rather
// than importing harness/deploy, so deploy's own in-package tests can use it
// without an import cycle.
package dockertest

import (
	"context"
	"os"
	"testing"
)

// Require skips tb when available reports no engine, unless CI=true, where a
// missing engine is a broken setup and fails the test instead:
//
//	dockertest.Require(t, deploy.DockerAvailable)
func Require(tb testing.TB, available func(context.Context) error) {
	tb.Helper()
	decide(tb, available(context.Background()), os.Getenv("CI"))
}

func decide(tb testing.TB, err error, ci string) {
	tb.Helper()
	if err == nil {
		return
	}
	if ci == "true" {
		tb.Fatalf("docker is required when CI=true: %v", err)
		return // Fatalf does not return; this is for test doubles
	}
	tb.Skipf("skipping: %v (set CI=true to make this a failure)", err)
}
