package trace

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness/target"
)

// countingControl is a custom driver's Control: the embedded clinic's,
// counted.
type countingControl struct {
	target.Control
	stops, starts atomic.Int32
	crashes       atomic.Int32
}

func (c *countingControl) Stop(ctx context.Context, crash bool) error {
	c.stops.Add(1)
	if crash {
		c.crashes.Add(1)
	}
	return c.Control.Stop(ctx, crash)
}

func (c *countingControl) Start(ctx context.Context) (string, error) {
	c.starts.Add(1)
	return c.Control.Start(ctx)
}

// labScheme is a user's driver registered as its own scheme: it stands the
// system up (here, an embedded clinic with lost-on-crash) and hands over a
// Control of its own. opened counts its Opens, ctl is the last Control.
var (
	labOpened atomic.Int32
	labCtl    atomic.Pointer[countingControl]
)

func init() {
	target.MustRegister("tracetest-lab", target.OpenerFunc(func(ctx context.Context, ref string, opts target.Options) (*target.Opened, error) {
		labOpened.Add(1)
		opts.Bugs = []string{"lost-on-crash:1"} // the lab's system has the bug whatever the trace says
		op, err := target.Open(ctx, TargetEmbedded, opts)
		if err != nil {
			return nil, err
		}
		ctl := &countingControl{Control: op.Control}
		labCtl.Store(ctl)
		return &target.Opened{Ref: ref, Target: op.Target, URL: op.URL, MediaHost: op.MediaHost, Control: ctl, OnClose: op.Close}, nil
	}))
	target.MustRegister("tracetest-nocontrol", target.OpenerFunc(func(ctx context.Context, ref string, opts target.Options) (*target.Opened, error) {
		op, err := target.Open(ctx, TargetEmbedded, opts)
		if err != nil {
			return nil, err
		}
		return &target.Opened{Ref: ref, Target: op.Target, URL: op.URL, OnClose: op.Close}, nil
	}))
}

// A trace replays against a registered custom target, its target ops going
// through the driver's own Control, and Repro does the same from a file.
func TestRunOnceOpensARegisteredTarget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := media(t)
	tr := crashCall(OpCrashTarget) // no bugs in the header: the lab's system has them
	tr.Target = "tracetest-lab://bench-3"
	before := labOpened.Load()
	out, err := RunOnce(ctx, tr, Options{DataDir: t.TempDir(), Media: m})
	if err != nil {
		t.Fatal(err)
	}
	if labOpened.Load() != before+1 {
		t.Fatalf("the registered opener ran %d times, want 1", labOpened.Load()-before)
	}
	ctl := labCtl.Load()
	if ctl.stops.Load() != 1 || ctl.crashes.Load() != 1 || ctl.starts.Load() != 1 {
		t.Errorf("crash_target through the custom Control: %d stops (%d crashes), %d starts; want 1, 1, 1",
			ctl.stops.Load(), ctl.crashes.Load(), ctl.starts.Load())
	}
	if out.OpErrors != nil {
		t.Errorf("op errors: %v", out.OpErrors)
	}
	if !out.Reproduced {
		t.Errorf("lost-on-crash on the custom target not reproduced: %+v", out.Violations)
	}

	path := filepath.Join(t.TempDir(), "lab.trace")
	if err := tr.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	n, total, err := Repro(ctx, path, ReproOptions{Options: Options{DataDir: t.TempDir(), Media: m}, Times: 2})
	if err != nil || n != 2 || total != 2 {
		t.Errorf("Repro against the custom target: %d/%d, %v", n, total, err)
	}
}

// A custom target that turns out to have no Control refuses a trace with
// target ops before running it; an unregistered scheme is a bad reference,
// not an outage.
func TestRunOnceCustomTargetErrors(t *testing.T) {
	tr := crashCall(OpCrashTarget)
	_, err := RunOnce(context.Background(), tr, Options{Target: "tracetest-nocontrol:x", DataDir: t.TempDir()})
	if !errors.Is(err, ErrNeedsEmbedded) || !strings.Contains(err.Error(), "op 5: crash_target") || !strings.Contains(err.Error(), "tracetest-nocontrol:x") {
		t.Errorf("no control: %v", err)
	}
	_, err = RunOnce(context.Background(), tr, Options{Target: "nosuch://x"})
	if !errors.Is(err, target.ErrBadRef) || errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), `"nosuch://x"`) {
		t.Errorf("unknown scheme: %v", err)
	}
	if err := CheckTarget(tr, "nosuch://x"); !errors.Is(err, target.ErrBadRef) {
		t.Errorf("CheckTarget(unknown scheme) = %v", err)
	}
	if err := CheckTarget(tr, "tracetest-lab:x"); err != nil {
		t.Errorf("CheckTarget(a scheme that may have a Control) = %v", err)
	}
}

// movingControl comes back on another address.
type movingControl struct{}

func (movingControl) Stop(context.Context, bool) error { return nil }
func (movingControl) Start(context.Context) (string, error) {
	return "http://127.0.0.1:2", nil
}

// A target that comes back elsewhere fails the target op: the trace's
// client would talk to nobody.
func TestSessionControlRefusesAMovedTarget(t *testing.T) {
	sc := &sessionControl{ctl: movingControl{}, url: "http://127.0.0.1:1/"}
	err := sc.Start(context.Background())
	if !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "came back at http://127.0.0.1:2") {
		t.Errorf("moved target: %v", err)
	}
}
