package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/telechaos/telechaos/harness/embedded"
)

// ServeClinic runs the reference clinic in this process until ctx ends: the
// suite starts it as its own (pinned) process from the same binary, so a
// clean clone needs nothing but the telechaos binary.
func ServeClinic(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve-clinic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "HTTP listen address")
	data := fs.String("data", "", "data directory")
	udp := fs.Int("udp-port", 0, "UDP media port")
	_ = fs.String("log-level", "error", "ignored: the clinic's logs are discarded")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" {
		fmt.Fprintln(stderr, "serve-clinic: --data is required")
		return 2
	}
	err := embedded.Serve(ctx, embedded.ServeOptions{Addr: *addr, DataDir: *data, UDPPort: *udp,
		AdvertisedIP: "127.0.0.1", ListenIP: "127.0.0.1", Seed: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintf(stderr, "serve-clinic: %v\n", err)
		return 1
	}
	return 0
}
