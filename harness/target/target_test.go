package target_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/target"
)

// The chaos package's Stoppable is the same interface as Control.
var (
	_ chaos.Stoppable = target.Control(nil)
	_ target.Control  = chaos.Stoppable(nil)
)

// fakeControl counts stops and starts.
type fakeControl struct{ stops, starts atomic.Int32 }

func (f *fakeControl) Stop(context.Context, bool) error { f.stops.Add(1); return nil }
func (f *fakeControl) Start(context.Context) (string, error) {
	f.starts.Add(1)
	return "http://127.0.0.1:9", nil
}

func TestRegisteredSchemeIsUsed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	ctl := &fakeControl{}
	var gotRef string
	var gotOpts target.Options
	var closed atomic.Bool
	err := target.Register("testscheme-used", target.OpenerFunc(func(ctx context.Context, ref string, opts target.Options) (*target.Opened, error) {
		gotRef, gotOpts = ref, opts
		h, err := driver.NewHTTP(srv.URL, opts.HTTP)
		if err != nil {
			return nil, err
		}
		return &target.Opened{Target: h, URL: srv.URL, Control: ctl, OnClose: func() error { closed.Store(true); return nil }}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	ref := "TestScheme-Used://lab/7" // schemes compare case-insensitively
	op, err := target.Open(context.Background(), ref, target.Options{BugSeed: 42})
	if err != nil {
		t.Fatal(err)
	}
	if gotRef != ref || gotOpts.BugSeed != 42 {
		t.Errorf("opener got ref %q seed %d, want %q 42", gotRef, gotOpts.BugSeed, ref)
	}
	if op.Ref != ref || op.Control != ctl || op.URL != srv.URL {
		t.Errorf("opened %+v", op)
	}
	if err := op.Target.Health(context.Background()); err != nil {
		t.Errorf("health through the custom target: %v", err)
	}
	if ok, err := target.Controllable(ref); !ok || err != nil {
		t.Errorf("Controllable(%q) = %v, %v; an opener that does not say may have a Control", ref, ok, err)
	}
	if _, err := target.Restart(context.Background(), op.Control, true); err != nil || ctl.stops.Load() != 1 || ctl.starts.Load() != 1 {
		t.Errorf("Restart: err %v, stops %d starts %d", err, ctl.stops.Load(), ctl.starts.Load())
	}
	if r := target.WithRestart(op.Control); r == nil {
		t.Error("WithRestart returned nil")
	} else if _, err := r.Restart(context.Background(), false); err != nil || ctl.starts.Load() != 2 {
		t.Errorf("WithRestart(...).Restart: err %v, starts %d", err, ctl.starts.Load())
	}
	op.Close()
	op.Close()
	if !closed.Load() {
		t.Error("Close did not run the opener's OnClose")
	}
	found := false
	for _, s := range target.Schemes() {
		found = found || s == "testscheme-used"
	}
	if !found {
		t.Errorf("Schemes() = %v, missing testscheme-used", target.Schemes())
	}
}

func TestUnknownSchemeNamesTheRef(t *testing.T) {
	for _, ref := range []string{"gopher://clinic.example/1", "localhost:8080", "nosuchscheme", "", "://x", "9p://x"} {
		_, err := target.Open(context.Background(), ref, target.Options{})
		if !errors.Is(err, target.ErrBadRef) || !strings.Contains(err.Error(), `"`+ref+`"`) {
			t.Errorf("Open(%q): err %v, want ErrBadRef naming the ref", ref, err)
		}
		if err := target.Check(ref); !errors.Is(err, target.ErrBadRef) {
			t.Errorf("Check(%q) = %v, want ErrBadRef", ref, err)
		}
		if _, err := target.Controllable(ref); !errors.Is(err, target.ErrBadRef) {
			t.Errorf("Controllable(%q) = %v, want ErrBadRef", ref, err)
		}
	}
	_, err := target.Open(context.Background(), "gopher://x", target.Options{})
	if err == nil || !strings.Contains(err.Error(), "http") {
		t.Errorf("the error lists the registered schemes: %v", err)
	}
}

func TestRegisterRefusesBadRegistrations(t *testing.T) {
	o := target.OpenerFunc(func(context.Context, string, target.Options) (*target.Opened, error) {
		return nil, errors.New("unused")
	})
	for name, reg := range map[string]func() error{
		"duplicate":       func() error { return target.Register("HTTP", o) },
		"empty scheme":    func() error { return target.Register("", o) },
		"colon in scheme": func() error { return target.Register("a:b", o) },
		"leading digit":   func() error { return target.Register("9p", o) },
		"nil opener":      func() error { return target.Register("nil-opener", nil) },
	} {
		if err := reg(); !errors.Is(err, target.ErrRegister) {
			t.Errorf("%s: err %v, want ErrRegister", name, err)
		}
	}
}

func TestOpenerWithoutTargetIsAnError(t *testing.T) {
	if err := target.Register("testscheme-empty", target.OpenerFunc(func(context.Context, string, target.Options) (*target.Opened, error) {
		return &target.Opened{}, nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := target.Open(context.Background(), "testscheme-empty:x", target.Options{}); err == nil || !strings.Contains(err.Error(), "no target") {
		t.Errorf("err %v, want 'no target'", err)
	}
}

func TestHTTPScheme(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	op, err := target.Open(context.Background(), srv.URL, target.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if op.Control != nil || op.URL != srv.URL || op.MediaHost != "127.0.0.1" {
		t.Errorf("opened %+v: want no control, the URL and its host", op)
	}
	if err := op.Target.Health(context.Background()); err != nil {
		t.Error(err)
	}
	if ok, err := target.Controllable("https://x.example"); ok || err != nil {
		t.Errorf("Controllable(https) = %v, %v: a URL cannot be stopped", ok, err)
	}
	if err := target.Validate(srv.URL, target.Options{Bugs: []string{"list-scope"}}); err == nil || !strings.Contains(err.Error(), "apply only to the embedded clinic") {
		t.Errorf("bugs on a URL: %v", err)
	}
	if err := target.Validate(srv.URL, target.Options{}); err != nil {
		t.Errorf("Validate(%s) = %v", srv.URL, err)
	}
	for _, bad := range []string{"http://", "http://x/?q=1"} {
		if _, err := target.Open(context.Background(), bad, target.Options{}); !errors.Is(err, target.ErrBadRef) {
			t.Errorf("Open(%q) = %v, want ErrBadRef", bad, err)
		}
	}
}
