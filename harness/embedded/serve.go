package embedded

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/telechaos/telechaos/clinic"
)

// ServeOptions configures the clinic Serve runs. It mirrors the clinic's
// configuration so that a caller (the bench suite's clinic process) needs no
// import of the clinic.
type ServeOptions struct {
	Addr         string   // HTTP listen address ("" = 127.0.0.1:0)
	DataDir      string   // database and recordings (required)
	UDPPort      int      // the one media port (0 picks a free one)
	ListenIP     string   // media listen IP ("" = all)
	AdvertisedIP string   // IP in the answer's host candidate ("" = 127.0.0.1)
	Bugs         []string // catalogue bugs to enable, ID or ID:P (see Bugs)
	Seed         uint64   // fixes the bugs' firing decisions
	Logger       *slog.Logger
	// Ready, if set, is called with the clinic's base URL once it listens.
	Ready func(url string)
}

// Serve runs the reference clinic with o until ctx ends, then closes it
// gracefully. It returns an error if the clinic cannot start (a bad option
// names itself) or does not close cleanly.
func Serve(ctx context.Context, o ServeOptions) error {
	srv, err := clinic.Start(ctx, clinic.Config{Addr: o.Addr, DataDir: o.DataDir, UDPPort: o.UDPPort,
		ListenIP: o.ListenIP, AdvertisedIP: o.AdvertisedIP, Bugs: o.Bugs, Seed: o.Seed, Logger: o.Logger})
	if err != nil {
		return err
	}
	if o.Ready != nil {
		o.Ready(srv.URL())
	}
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("close clinic: %w", err)
	}
	return nil
}
