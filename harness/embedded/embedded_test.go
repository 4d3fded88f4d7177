package embedded_test

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/telechaos/telechaos/harness/embedded"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/models"
)

func TestOpenEmbeddedKeepsAddrAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	op, err := target.Open(ctx, embedded.Scheme, target.Options{TempDir: parent, KeepAddr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if op.Control == nil || op.URL == "" || op.MediaHost != "127.0.0.1" {
		t.Fatalf("opened %+v: want a Control, a URL and loopback media", op)
	}
	c, err := embedded.Of(op)
	if err != nil {
		t.Fatal(err)
	}
	s, err := op.Target.Register(ctx, models.Patient)
	if err != nil {
		t.Fatal(err)
	}
	for _, crash := range []bool{true, false} {
		if err := op.Control.Stop(ctx, crash); err != nil {
			t.Fatalf("stop (crash %v): %v", crash, err)
		}
		if c.URL() != "" {
			t.Errorf("a stopped clinic has URL %q", c.URL())
		}
		url, err := op.Control.Start(ctx)
		if err != nil {
			t.Fatalf("start after stop (crash %v): %v", crash, err)
		}
		if url != op.URL {
			t.Errorf("restarted at %s, want the first address %s (KeepAddr)", url, op.URL)
		}
	}
	if c.Restarts() != 2 {
		t.Errorf("restarts %d, want 2", c.Restarts())
	}
	// Same data: the user registered before the crash still lists.
	if _, err := op.Target.ListReplays(ctx, s); err != nil {
		t.Errorf("the user of before the restarts: %v", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Fatalf("temporary data directories under TempDir: %d, want 1", len(entries))
	}
	if err := op.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("Close left %d data directories", len(entries))
	}
}

func TestOpenEmbeddedKeepsAGivenDataDir(t *testing.T) {
	dir := t.TempDir()
	op, err := target.Open(context.Background(), "embedded", target.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	op.Close()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("DataDir removed by Close: %v", err)
	}
}

func TestValidateEmbedded(t *testing.T) {
	for name, tc := range map[string]struct {
		ref  string
		bugs []string
		want string // "" = valid
	}{
		"correct":         {"embedded", nil, ""},
		"bugs":            {"embedded", []string{"list-scope", "switch-reuse:0.5"}, ""},
		"unknown bug":     {"embedded", []string{"teleport"}, `unknown bug "teleport"`},
		"bad p":           {"embedded", []string{"list-scope:2"}, "probability"},
		"with an address": {"embedded://x", nil, "takes no address"},
	} {
		err := target.Validate(tc.ref, target.Options{Bugs: tc.bugs})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
	if _, err := target.Open(context.Background(), "embedded", target.Options{Bugs: []string{"teleport"}}); err == nil {
		t.Error("Open with an unknown bug succeeded")
	}
	if _, err := target.Open(context.Background(), "embedded:x", target.Options{}); !errors.Is(err, target.ErrBadRef) {
		t.Errorf("embedded:x: %v, want ErrBadRef", err)
	}
}

func TestBugCatalogue(t *testing.T) {
	bs := embedded.Bugs()
	if len(bs) != 8 {
		t.Fatalf("%d bugs, want the 8 of the catalogue", len(bs))
	}
	concurrent := 0
	for _, b := range bs {
		if !embedded.IsBug(b.ID) || b.Description == "" {
			t.Errorf("bug %+v: unknown or undescribed", b)
		}
		if b.Concurrent {
			concurrent++
			if b.ID != "switch-race" {
				t.Errorf("%s marked concurrent", b.ID)
			}
		}
	}
	if concurrent != 1 || embedded.IsBug("teleport") {
		t.Errorf("concurrent %d; IsBug(teleport) %v", concurrent, embedded.IsBug("teleport"))
	}
}

func TestBugInfo(t *testing.T) {
	if i := embedded.Info([]string{"list-scope"}); i.Probabilistic || i.MinP != 1 || i.Concurrent {
		t.Errorf("list-scope: %+v", i)
	}
	i := embedded.Info([]string{"list-scope,switch-reuse:0.3", "switch-race:0.5"})
	if !i.Probabilistic || i.MinID != "switch-reuse" || i.MinP != 0.3 || !i.Concurrent {
		t.Errorf("mixed: %+v", i)
	}
	if i := embedded.Info([]string{"teleport"}); i.Probabilistic || i.MinP != 1 {
		t.Errorf("bad specs describe nothing: %+v", i)
	}
}

func TestFireSeed(t *testing.T) {
	seed, run := embedded.FireSeed([]string{"switch-reuse:0.3"}, 2, 200_000, 12)
	if run < 6 || seed < 2 {
		t.Errorf("seed %d run %d: want a seed >= 2 with >= 6 firings in a row", seed, run)
	}
	// The seed is the clinic's: searching it alone finds the same run.
	if s2, run2 := embedded.FireSeed([]string{"switch-reuse:0.3"}, seed, 1, 12); s2 != seed || run2 != run {
		t.Errorf("seed %d alone: run %d, want %d", seed, run2, run)
	}
	if seed, run := embedded.FireSeed([]string{"list-scope"}, 7, 10, 12); seed != 7 || run != math.MaxInt {
		t.Errorf("a bug that always fires: seed %d run %d", seed, run)
	}
	// Fewer seeds than needed: the best run found, shorter than wanted.
	if _, run := embedded.FireSeed([]string{"switch-reuse:0.01"}, 1, 50, 12); run >= 12 {
		t.Errorf("p=0.01 over 50 seeds gave a run of %d", run)
	}
}
