package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/internal/tmpdir"
)

// Scheme is the target reference of the embedded clinic.
const Scheme = "embedded"

// tempPrefix names the temporary data directories of embedded clinics.
const tempPrefix = "telechaos-clinic-"

func init() { target.MustRegister(Scheme, opener{}) }

// opener opens "embedded": a fresh clinic on loopback with the options'
// bugs and seed, on Options.DataDir or a temporary directory; its Control
// is the Clinic.
type opener struct{}

var (
	_ target.Validator       = opener{}
	_ target.ControlReporter = opener{}
	_ target.Control         = (*Clinic)(nil)
)

func (opener) Validate(ref string, opts target.Options) error {
	if ref != Scheme {
		return fmt.Errorf("%w: target %q: the embedded target takes no address (write %q)", target.ErrBadRef, ref, Scheme)
	}
	if err := CheckBugs(opts.Bugs); err != nil {
		return fmt.Errorf("bugs: %w", err)
	}
	if f := opts.RecordFormat; f != "" && f != "webm" {
		return fmt.Errorf("embedded clinic: record format %q (want \"\" or \"webm\")", f)
	}
	return nil
}

func (opener) HasControl(string) bool { return true }

func (o opener) Open(ctx context.Context, ref string, opts target.Options) (*target.Opened, error) {
	if err := o.Validate(ref, opts); err != nil {
		return nil, err
	}
	dir, removeDir := opts.DataDir, func() {}
	if dir == "" {
		var err error
		if opts.TempDir == "" {
			// A run killed with SIGKILL leaves its directory; the next run
			// removes it (tmpdir sweeps those of dead owners).
			dir, removeDir, err = tmpdir.New(tempPrefix)
		} else {
			dir, err = os.MkdirTemp(opts.TempDir, tempPrefix+"*")
			removeDir = func() { os.RemoveAll(dir) }
		}
		if err != nil {
			return nil, fmt.Errorf("embedded clinic: data directory: %w", err)
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := Config{Addr: "127.0.0.1:0", DataDir: dir, UDPPort: 0, AdvertisedIP: "127.0.0.1",
		Bugs: opts.Bugs, Seed: opts.BugSeed, Logger: logger, RecordFormat: opts.RecordFormat}
	c, err := Start(ctx, cfg)
	if err != nil {
		removeDir()
		return nil, fmt.Errorf("start embedded clinic: %w", err)
	}
	if opts.KeepAddr {
		c.KeepAddr()
	}
	url := c.URL()
	h, err := driver.NewHTTP(url, opts.HTTP)
	if err != nil {
		c.Close()
		removeDir()
		return nil, fmt.Errorf("embedded clinic at %s: %w", url, err)
	}
	host := ""
	if u, err := neturl.Parse(url); err == nil {
		host = u.Hostname()
	}
	return &target.Opened{Ref: ref, Target: h, URL: url, MediaHost: host, Control: c,
		OnClose: func() error {
			h.Close()
			// A restart may have replaced the first server: Close stops
			// whichever runs now.
			err := c.Close()
			removeDir()
			return err
		}}, nil
}

// errNotEmbedded is returned by Of for an Opened of another scheme.
var errNotEmbedded = errors.New("not an embedded target")

// Of returns the clinic behind an Opened of the embedded scheme.
func Of(op *target.Opened) (*Clinic, error) {
	if op == nil {
		return nil, errNotEmbedded
	}
	c, ok := op.Control.(*Clinic)
	if !ok {
		return nil, fmt.Errorf("target %q: %w", op.Ref, errNotEmbedded)
	}
	return c, nil
}
