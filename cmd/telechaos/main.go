// Command telechaos runs property, chaos and load scenarios against telehealth
// video systems: `telechaos run`, `telechaos scenarios`, `telechaos selftest`.
//
// Exit codes: 0 pass, 1 invariant violated, 2 usage or configuration error,
// 3 target or infrastructure failure, 4 thresholds failed, 130 interrupted (the
// report is still written).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/scenarios"
)

const usage = `telechaos: property/chaos harness and load simulator for telehealth video

usage:
  telechaos run [flags]          run a scenario (default smoke) and write a report
  telechaos scenarios            list the built-in scenarios
  telechaos selftest [flags]     prove every catalogue bug is caught, no false positives
  telechaos repro FILE [--target URL] [--times K]
                                 replay a minimised trace K times: "reproduced N/K"
  telechaos report DIR           redraw index.html, summary.md, junit.xml from DIR/summary.json
  telechaos report merge DIR... --out DIR
                                 merge shard reports into one verdict (exit code as run)
  telechaos report verdict --from-prometheus URL --run-id ID [--scenario S]
                                 the verdict of a sharded run from Prometheus
  telechaos bench [--quick] [--out FILE]
                                 the performance suite, side by side with k6/vegeta/wrk
  telechaos help                 this text

run flags:
  --scenario NAME|FILE   built-in name or YAML file (default smoke)
  --target URL           target base URL (default: the scenario's, usually embedded)
  --bug ID[:P]           enable a clinic bug (embedded target), repeatable
  --seed N               PRNG seed (fixes every decision of the run)
  --duration D           bound on the arrival phase, e.g. 90s
  --users N              number of patients
  --report DIR           report directory (default ./telechaos-report/<run-id>)
  --metrics-addr ADDR    serve Prometheus /metrics during the run, e.g. 127.0.0.1:9464
  --push URL             push the final metrics to a Pushgateway (job telechaos)
  --media=BOOL           real WebRTC calls (default: the scenario's)
  --set KEY=VALUE        override a scenario field, repeatable (--seed, --users,
                         --duration, --media, --target and --bug set theirs
                         the same way, after every --set)
  --shard I/N            run shard I of N of the population (users never shared)
  --shards N             shard index from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job)
  --run-id ID            run id; the shards of one run must share it (letters,
                         digits, . _ -; it names the report directory)
  --deploy IMAGE|clinic  start IMAGE[:TAG] in Docker (clinic: build the reference
                         image) and run against it; --bug goes to the container
                         (CLINIC_BUGS); everything is removed at the end
  --deploy-env KEY=VAL   container environment, repeatable
  --deploy-udp-port N    pin the media UDP port (default: a free one)
  --deploy-fault K@AT[+FOR]  container fault: kill, stop, pause or disconnect AT
                         into the run, healed FOR later, repeatable
  -v                     verbose logs on stderr

selftest flags:
  --seeds N              seeds for the correct clinic (default 5)
  --chaos-seeds N        seeds for the correct clinic under each chaos scenario (default 1)
  --quick                smaller runs, one seed unless --seeds is given
  --only ID              only this catalogue bug, repeatable
  --report DIR           keep every run's report under DIR

exit codes: 0 pass, 1 violation, 2 usage, 3 target/infrastructure, 4 thresholds,
130 interrupted (report written)
`

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
		fmt.Fprint(stderr, usage)
		return harness.ExitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "scenarios":
		return cmdScenarios(stdout)
	case "repro":
		return cmdRepro(ctx, args[1:], stdout, stderr)
	case "selftest":
		return cmdSelftest(ctx, args[1:], stdout, stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(ctx, args[1:], stdout, stderr)
	case "conform":
		return cmdConform(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "telechaos: unknown command %q\n\n%s", args[0], usage)
	return harness.ExitUsage
}

func cmdScenarios(stdout io.Writer) int {
	list := scenarios.List()
	w := 0
	for _, s := range list {
		w = max(w, len(s.Name))
	}
	for _, s := range list {
		fmt.Fprintf(stdout, "%-*s  %s\n", w, s.Name, firstLine(s.Description))
	}
	return 0
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

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return fs
}
