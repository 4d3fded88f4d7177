// Command telechaos runs property, chaos and load scenarios against telehealth
// video systems: `telechaos run`, `telechaos scenarios`, `telechaos selftest`,
// and the rest of the command table (commands.go); `telechaos help CMD` prints
// a command's usage and flags.
//
// Exit codes: 0 pass, 1 invariant violated, 2 usage or configuration error,
// 3 target or infrastructure failure, 4 thresholds failed, 130 interrupted (the
// report is still written).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/telechaos/telechaos/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the default way
	}()
	os.Exit(runMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// runMain is main without the process: tests call it.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printGlobalUsage(stderr)
		return harness.ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printGlobalUsage(stdout)
		return 0
	case "-version", "--version":
		return cmdVersion(ctx, args[1:], stdout, stderr)
	}
	c, _ := lookup(commands, args[:1])
	if c == nil {
		fmt.Fprintf(stderr, "telechaos: unknown command %q\n", args[0])
		usageHint(stderr, nil)
		return harness.ExitUsage
	}
	return dispatch(ctx, c, args[1:], stdout, stderr)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// exitCodeOf maps a Run error without a result to an exit code.
func exitCodeOf(err error) int {
	switch {
	case errors.Is(err, harness.ErrConfig):
		return harness.ExitUsage
	case errors.Is(err, context.Canceled):
		return harness.ExitInterrupted
	}
	return harness.ExitTarget
}

// isTerminal reports whether f is a character device (a terminal), without a
// dependency on x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
