package props

import (
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The sequential property passes on the correct clinic. -rapid.checks,
// -rapid.steps and -rapid.seed given on the command line win over the modest
// defaults set here; fail files go to testdata/rapid/ as rapid documents.
func TestSequentialCleanClinic(t *testing.T) {
	if testing.Short() {
		t.Skip("property runs with real calls: slow; make test runs them")
	}
	withRapidFlags(t, map[string]string{"rapid.checks": "12", "rapid.steps": "25"}, nil)
	rec := &Recorder{}
	start := time.Now()
	rapid.Check(t, SequentialProperty(Config{Media: media(t), DataDir: t.TempDir()}, rec))
	last := rec.Last()
	if last == nil {
		t.Fatal("no check ran")
	}
	t.Logf("%d checks in %v; last check: %d actions, %d ops", rec.Runs(), time.Since(start), len(last.Actions), len(last.Trace.Ops))
	if rec.Runs() < 2 {
		t.Errorf("only %d checks ran", rec.Runs())
	}
	_ = strings.Join
}
