package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/deploy"
	"github.com/telechaos/telechaos/harness/deploy/gate"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
)

// deployFlags are the flags of `telechaos run --deploy`.
type deployFlags struct {
	image   string
	env     multiFlag
	udpPort int
	faults  multiFlag
}

func (d *deployFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.image, "deploy", "", "start `IMAGE[:TAG]` in Docker and run against it (\"clinic\": build the\nreference image); --bug goes to the container; all is removed at the end")
	fs.Var(&d.env, "deploy-env", "container environment `KEY=VALUE` for --deploy, repeatable")
	fs.IntVar(&d.udpPort, "deploy-udp-port", 0, "pin the deployment's media UDP port `N` (default: a free one)")
	fs.Var(&d.faults, "deploy-fault", "container fault `KIND@AT[+FOR]` for --deploy: kill, stop, pause or\ndisconnect AT into the run, healed FOR later, repeatable")
}

// gateConfig turns the flags into a gate configuration; errors are usage errors.
func (d *deployFlags) gateConfig(given map[string]bool) (gate.Config, error) {
	var cfg gate.Config
	if given["target"] {
		return cfg, errors.New("--deploy and --target exclude each other: the deployment is the target")
	}
	cfg.Image = d.image
	for _, kv := range d.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("--deploy-env %q: want KEY=VALUE", kv)
		}
		if cfg.Env == nil {
			cfg.Env = map[string]string{}
		}
		cfg.Env[k] = v
	}
	if given["deploy-udp-port"] {
		if d.udpPort < 1 || d.udpPort > 65535 {
			return cfg, fmt.Errorf("--deploy-udp-port %d: want 1..65535", d.udpPort)
		}
		cfg.Options = append(cfg.Options, deploy.WithUDPPort(d.udpPort))
	}
	for _, spec := range d.faults {
		f, err := parseDeployFault(spec)
		if err != nil {
			return cfg, err
		}
		cfg.Faults = append(cfg.Faults, f)
	}
	return cfg, nil
}

// parseDeployFault reads KIND@AT[+FOR], e.g. kill@10s+2s: kill the container
// 10 s into the run and start it again 2 s later.
func parseDeployFault(spec string) (gate.Fault, error) {
	bad := func(format string, a ...any) (gate.Fault, error) {
		return gate.Fault{}, fmt.Errorf("--deploy-fault %q: %s (want KIND@AT[+FOR], KIND one of kill, stop, pause, disconnect)", spec, fmt.Sprintf(format, a...))
	}
	kind, when, ok := strings.Cut(spec, "@")
	if !ok {
		return bad("no @AT")
	}
	if !strings.HasPrefix(kind, "container-") {
		kind = "container-" + kind
	}
	if !slices.Contains(deploy.FaultKinds, kind) {
		return bad("unknown kind")
	}
	at, dur, hasFor := strings.Cut(when, "+")
	var tr chaos.Trigger
	d, err := time.ParseDuration(at)
	if err != nil || d < 0 {
		return bad("AT %q is not a duration >= 0", at)
	}
	tr.At = chaos.D(d)
	if hasFor {
		d, err := time.ParseDuration(dur)
		if err != nil || d < 0 {
			return bad("FOR %q is not a duration >= 0", dur)
		}
		tr.For = chaos.D(d)
	}
	return gate.Fault{Kind: kind, Trigger: tr}, nil
}

// runDeployed is `telechaos run --deploy`: start the deployment, run cfg
// against it, and always clean up (container, network, volume, and the image
// when --deploy clinic built it), also on errors and interrupts.
func runDeployed(ctx context.Context, f *runFlags, cfg harness.RunConfig, pr *progressPrinter, stdout, stderr io.Writer) int {
	gc, err := f.deploy.gateConfig(f.given)
	if err != nil {
		fmt.Fprintf(stderr, "telechaos run: %v\n", err)
		return harness.ExitUsage
	}
	gc.Loaded, gc.ReportDir, gc.RunConfig = cfg.Scenario, cfg.ReportDir, cfg
	// The report directory is proven writable before the image is built or
	// the container started, as harness.Run does before traffic.
	if err := reports.Prepare(cfg.ReportDir); err != nil {
		printRunError(stderr, fmt.Errorf("%w: %w", harness.ErrConfig, err), cfg.ReportDir)
		return harness.ExitUsage
	}
	if gc.Image == gate.ImageClinic {
		fmt.Fprintf(stderr, "telechaos: building the reference clinic image\n")
	}
	started := time.Now()
	s, err := gate.Start(ctx, gc)
	defer func() {
		// Cleanup runs on a context of its own: ctx may be cancelled (Ctrl-C).
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			fmt.Fprintf(stderr, "telechaos run: clean up the deployment: %v\n", err)
		}
	}()
	if err != nil {
		fmt.Fprintf(stderr, "telechaos run: deploy %s: %v\n", f.deploy.image, err)
		usage := errors.Is(err, gate.ErrConfig) || errors.Is(err, deploy.ErrInvalidOption) || errors.Is(err, deploy.ErrImageNotFound)
		sum := deployFailureSummary(cfg, f.deploy.image, started, err, ctx.Err() != nil, usage)
		if werr := reports.Write(cfg.ReportDir, sum, nil); werr != nil {
			fmt.Fprintf(stderr, "telechaos run: write report: %v\n", werr)
		} else {
			printVerdict(stdout, sum, cfg.ReportDir)
		}
		return sum.ExitCode
	}
	d := s.Deployment()
	fmt.Fprintf(stderr, "telechaos: deployed %s at %s (udp %d, healthy after %v), harness front %s\n",
		f.deploy.image, d.URL(), d.UDPPort(), s.StartTime.Round(time.Millisecond), s.URL())
	res, err := s.Run(ctx)
	pr.done()
	if res == nil || res.Result == nil {
		printRunError(stderr, err, cfg.ReportDir)
		if errors.Is(err, gate.ErrConfig) {
			return harness.ExitUsage
		}
		return exitCodeOf(err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "telechaos run: %v\n", err)
	}
	for _, w := range res.Windows {
		fmt.Fprintf(stderr, "telechaos: fault %s (%s) %v%s\n", w.Fault, w.Trigger,
			w.End.Sub(w.Start).Round(time.Millisecond), map[bool]string{true: " error: " + w.Err}[w.Err != ""])
	}
	if f.push != "" {
		pushMetrics(ctx, f.push, res.Result, stderr)
	}
	printVerdict(stdout, res.Summary, res.ReportDir)
	code := res.ExitCode
	if code == harness.ExitPass && err != nil {
		code = harness.ExitTarget // a fault that failed leaves the verdict unreliable
	}
	return code
}

// deployFailureSummary is the report of a --deploy run that never reached
// traffic: the deployment failed or the run was interrupted while deploying.
// Its verdict comes from models.Decide like any run's.
func deployFailureSummary(cfg harness.RunConfig, image string, started time.Time, err error, interrupted, usage bool) *reports.Summary {
	sc := cfg.Scenario
	o := models.Outcome{Interrupted: interrupted}
	if !interrupted {
		o.Failure, o.Usage = "deploy "+image+": "+err.Error(), usage
	}
	d := models.Decide(o)
	msg := "deploy " + image + ": " + err.Error()
	if interrupted {
		msg = "interrupted while deploying " + image + " (no traffic was sent): " + err.Error()
	}
	repro := []string{"telechaos", "run", "--scenario", cfg.ScenarioRef, "--seed", strconv.FormatUint(sc.Seed, 10),
		"--users", strconv.Itoa(sc.Population.Patients), "--deploy", image}
	repro = append(repro, cfg.ReproArgs...)
	return &reports.Summary{
		Verdict: d.Verdict, ExitCode: d.ExitCode, Reason: d.Reason, Also: d.Also, Error: msg,
		RunID: cfg.RunID, Seed: sc.Seed, Scenario: sc.Name, Target: "deploy " + image, Bugs: sc.Bugs, Media: sc.Media,
		StartedAt: started.UTC(), DurationSeconds: time.Since(started).Seconds(), Interrupted: interrupted,
		Repro: strings.Join(repro, " "), Invariants: sc.Invariants, Expect: sc.Expect,
	}
}
