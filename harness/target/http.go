package target

import (
	"context"
	"fmt"
	neturl "net/url"

	"github.com/telechaos/telechaos/harness/driver"
)

// httpOpener opens a running system by its base URL with the HTTP driver
// (docs/api.md). The harness cannot stop it: no Control.
type httpOpener struct{}

func init() {
	MustRegister("http", httpOpener{})
	MustRegister("https", httpOpener{})
}

var (
	_ Validator       = httpOpener{}
	_ ControlReporter = httpOpener{}
)

func (httpOpener) Open(_ context.Context, ref string, opts Options) (*Opened, error) {
	h, err := driver.NewHTTP(ref, opts.HTTP)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRef, err)
	}
	host := ""
	if u, err := neturl.Parse(ref); err == nil {
		host = u.Hostname()
	}
	return &Opened{Ref: ref, Target: h, URL: h.URL(), MediaHost: host, OnClose: h.Close}, nil
}

// Validate reads the URL and refuses bugs: they are the embedded clinic's.
func (httpOpener) Validate(ref string, opts Options) error {
	u, err := neturl.Parse(ref)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("%w: target %q is not a URL with a host", ErrBadRef, ref)
	}
	if len(opts.Bugs) > 0 {
		return fmt.Errorf("bugs: %v apply only to the embedded clinic, not to %s", opts.Bugs, ref)
	}
	return nil
}

func (httpOpener) HasControl(string) bool { return false }
