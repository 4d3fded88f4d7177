// Command clinic runs the reference telehealth service telechaos tests against:
// the HTTP API of docs/api.md, the SFU/recorder on one UDP port, and the
// catalogue bugs switched on with --bug.
//
// In a container the bugs and the seed may also come from the environment:
// CLINIC_BUGS (IDs or ID:PROBABILITY separated by commas or spaces) and
// CLINIC_SEED, used when the matching flag is not given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/telechaos/telechaos/clinic"
	"github.com/telechaos/telechaos/clinic/bugs"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// options are the parsed command line.
type options struct {
	cfg      clinic.Config
	logLevel slog.Level
}

// errUsage marks command-line mistakes (exit 2).
var errUsage = errors.New("usage")

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("clinic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o         options
		bugSpecs  stringList
		addr      = fs.String("addr", "127.0.0.1:8088", "HTTP listen address")
		data      = fs.String("data", "./clinic-data", "data directory (database and recordings; kept across restarts)")
		udpPort   = fs.Int("udp-port", 8443, "the one UDP port for all media (ICE UDP mux); 0 picks a free one")
		listenIP  = fs.String("listen-ip", "127.0.0.1", "IPv4 address the media socket binds (0.0.0.0 in a container)")
		advertise = fs.String("advertised-ip", "127.0.0.1", "IPv4 address put in the answer's host candidate")
		seed      = fs.Uint64("seed", 1, "seed for the bugs' firing decisions")
		level     = fs.String("log-level", "info", "log level: debug, info, warn or error")
		recFormat = fs.String("record-format", "native", "track recording container: native (Ogg/Opus audio, IVF/VP8 video) or webm (WebM for both)")
	)
	fs.Var(&bugSpecs, "bug", "enable a catalogue bug, ID or ID:PROBABILITY (repeatable; known: "+knownBugs()+")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: clinic [flags]\n\nRuns the reference telehealth clinic (HTTP API + SFU/recorder).\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := envFallbacks(fs, &bugSpecs, seed); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return o, fmt.Errorf("%w: --addr %q: %v", errUsage, *addr, err)
	}
	if *data == "" {
		return o, fmt.Errorf("%w: --data must name a directory", errUsage)
	}
	if *udpPort < 0 || *udpPort > 65535 {
		return o, fmt.Errorf("%w: --udp-port %d is not a port", errUsage, *udpPort)
	}
	for name, ip := range map[string]string{"--listen-ip": *listenIP, "--advertised-ip": *advertise} {
		if p := net.ParseIP(ip); p == nil || p.To4() == nil {
			return o, fmt.Errorf("%w: %s %q is not an IPv4 address", errUsage, name, ip)
		}
	}
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return o, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, *level)
	}
	var recordFormat string
	switch *recFormat {
	case "native", "":
	case "webm":
		recordFormat = "webm"
	default:
		return o, fmt.Errorf("%w: --record-format %q: want native or webm", errUsage, *recFormat)
	}
	if _, err := bugs.Parse(bugSpecs, *seed); err != nil {
		return o, fmt.Errorf("%w: --bug: %v", errUsage, err)
	}
	o.cfg = clinic.Config{
		Addr: *addr, DataDir: *data, UDPPort: *udpPort, ListenIP: *listenIP, AdvertisedIP: *advertise,
		Bugs: bugSpecs, Seed: *seed, RecordFormat: recordFormat,
	}
	return o, nil
}

// getenv is os.Getenv; tests replace it.
var getenv = os.Getenv

// envFallbacks applies CLINIC_BUGS and CLINIC_SEED where --bug and --seed
// were not given, so an image's bugs can be switched on through its
// environment without changing its command line.
func envFallbacks(fs *flag.FlagSet, bugSpecs *stringList, seed *uint64) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if v := strings.TrimSpace(getenv("CLINIC_BUGS")); v != "" && !given["bug"] {
		specs := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
		if _, err := bugs.Parse(specs, 0); err != nil {
			return fmt.Errorf("%w: CLINIC_BUGS %q: %v", errUsage, v, err)
		}
		*bugSpecs = specs
	}
	if v := strings.TrimSpace(getenv("CLINIC_SEED")); v != "" && !given["seed"] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: CLINIC_SEED %q: want an unsigned integer", errUsage, v)
		}
		*seed = n
	}
	return nil
}

func knownBugs() string {
	names := make([]string, len(bugs.All))
	for i, id := range bugs.All {
		names[i] = string(id)
	}
	return strings.Join(names, ", ")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "clinic: %v\n", strings.TrimPrefix(err.Error(), "usage: "))
		}
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	o.cfg.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := clinic.Start(ctx, o.cfg)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	<-ctx.Done()
	log.Info("signal received, shutting down")
	if err := srv.Close(); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}
