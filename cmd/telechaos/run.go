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
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// runFlags are the flags of `telechaos run`.
type runFlags struct {
	scenario, target, report, metricsAddr string
	push                                  string
	shard, runID                          string
	cpuProfile, caFile                    string
	shards                                int
	bugs, sets                            multiFlag
	seed                                  uint64
	duration                              time.Duration
	users                                 int
	media, verbose                        bool
	given                                 map[string]bool   // flags given explicitly
	values                                map[string]string // their values as given (flag.Value.String)
	deploy                                deployFlags
}

var runCommand = &command{
	name: "run", args: "[flags]",
	summary: "run a scenario (default smoke) and write a report",
	doc: `Runs the scenario against its target (the in-process clinic unless
--target or --deploy says otherwise), judges every answer and frame, and
writes the report (index.html, summary.json, summary.md, junit.xml,
evidence and minimal traces) under --report. Scenario fields are set by
--set KEY=VALUE ('telechaos validate' checks a file without running it);
--seed, --users, --duration, --media, --target and --bug set theirs the
same way, after every --set. The exit code is the verdict's.
`,
	run: cmdRun,
}

// runFlagSet defines the flags of run into f.
func runFlagSet(f *runFlags, stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet("run", stderr)
	fs.StringVar(&f.scenario, "scenario", scenarios.Default, "scenario `NAME|FILE`: a built-in ('telechaos scenarios') or a YAML file")
	fs.StringVar(&f.target, "target", "", "target base `URL` (default: the scenario's, usually the embedded clinic)")
	fs.Var(&f.bugs, "bug", "enable clinic bug `ID[:P]` with probability P (embedded target or --deploy),\nrepeatable")
	fs.Uint64Var(&f.seed, "seed", 0, "PRNG seed `N`, fixes every decision of the run (default: the scenario's)")
	fs.DurationVar(&f.duration, "duration", 0, "bound `D` on the arrival phase, e.g. 90s (default: the scenario's)")
	fs.IntVar(&f.users, "users", 0, "number `N` of patients (default: the scenario's)")
	fs.StringVar(&f.report, "report", "", "report directory `DIR` (default ./telechaos-report/RUN-ID;\nsharded: DIR/RUN-ID/shard-I)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics on `ADDR` during the run, e.g. 127.0.0.1:9464")
	fs.StringVar(&f.push, "push", "", "push the final metrics to the Pushgateway at `URL` (job telechaos)")
	fs.BoolVar(&f.media, "media", false, "real WebRTC calls, --media=false for none (default: the scenario's)")
	fs.Var(&f.sets, "set", "override a scenario field `KEY=VALUE`, repeatable")
	fs.BoolVar(&f.verbose, "v", false, "verbose logs on stderr")
	fs.StringVar(&f.shard, "shard", "", "run shard `I/N` of the population (users never shared; needs --run-id)")
	fs.IntVar(&f.shards, "shards", 0, "run shard $JOB_COMPLETION_INDEX of `N` (Kubernetes Indexed Job)")
	fs.StringVar(&f.runID, "run-id", "", "run `ID`: letters, digits, . _ - (it names the report directory);\nthe shards of one run must share it")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM `FILE` of CA certificates an https target may chain to, besides the system roots")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE`")
	f.deploy.register(fs)
	return fs
}

// parseRunFlags parses run's arguments; flag.ErrHelp for -h/--help.
func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	f := &runFlags{given: map[string]bool{}, values: map[string]string{}}
	fs := runFlagSet(f, stderr)
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", pos)
	}
	fs.Visit(func(fl *flag.Flag) { f.given[fl.Name], f.values[fl.Name] = true, fl.Value.String() })
	if f.given["users"] && f.users <= 0 {
		return nil, fmt.Errorf("--users %d: want a positive number", f.users)
	}
	if f.given["duration"] && f.duration <= 0 {
		return nil, fmt.Errorf("--duration %v: want a positive duration", f.duration)
	}
	if f.given["run-id"] {
		if err := checkRunID(f.runID); err != nil {
			return nil, err
		}
	}
	if f.metricsAddr != "" {
		if err := checkListenAddr(f.metricsAddr); err != nil {
			return nil, fmt.Errorf("--metrics-addr %q: %w", f.metricsAddr, err)
		}
	}
	// Flags that only mean something with another one.
	var orphan []string
	fs.Visit(func(fl *flag.Flag) {
		if strings.HasPrefix(fl.Name, "deploy-") && f.deploy.image == "" {
			orphan = append(orphan, "--"+fl.Name)
		}
	})
	if len(orphan) > 0 {
		return nil, fmt.Errorf("%s needs --deploy IMAGE (it configures the deployment)", strings.Join(orphan, ", "))
	}
	return f, nil
}

// maxRunID bounds a run id's length (it names a directory and a metric label).
const maxRunID = 128

// checkRunID accepts run ids that are one safe path element: letters, digits,
// '.', '_' and '-', starting with a letter or digit (so never "..", never a
// path separator), at most maxRunID bytes. harness.NewRunID's ids qualify.
func checkRunID(id string) error {
	bad := func(why string) error { return fmt.Errorf("--run-id %q: %s", id, why) }
	if id == "" {
		return bad("empty")
	}
	if len(id) > maxRunID {
		return bad(fmt.Sprintf("longer than %d bytes", maxRunID))
	}
	for i, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return bad("want letters, digits, '.', '_' and '-', starting with a letter or digit (it names the report directory)")
		}
	}
	return nil
}

// checkListenAddr checks a host:port to listen on (host may be empty).
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, e.g. 127.0.0.1:9464: %w", err)
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("bad host %q", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 0..65535", port)
	}
	return nil
}

// scenarioFlags are the run flags that set a scenario field, with the field's
// --set path. They go through the same path as --set (Scenario.SetFlag), and
// only when given, so the scenario's defaults never overwrite them.
var scenarioFlags = []struct{ flag, path string }{
	{"target", "target"},
	{"seed", "seed"},
	{"duration", "duration"},
	{"users", "population.patients"},
	{"media", "media"},
}

// loadScenario builds the scenario the run executes: it loads the file or
// built-in, applies --set, then the explicit flags (each as its --set would),
// then the defaults, and validates the result. What it returns is what runs:
// harness.Run re-applying the defaults changes nothing.
func (f *runFlags) loadScenario(ctx context.Context) (*scenarios.Scenario, error) {
	sc, err := scenarios.LoadContext(ctx, f.scenario)
	if err != nil {
		return nil, err
	}
	for _, kv := range f.sets {
		if err := sc.Set(kv); err != nil {
			return nil, fmt.Errorf("--set %s: %w", kv, err)
		}
	}
	for _, sf := range scenarioFlags {
		if !f.given[sf.flag] {
			continue
		}
		if err := sc.SetFlag("--"+sf.flag, sf.path, f.values[sf.flag]); err != nil {
			return nil, err
		}
	}
	if len(f.bugs) > 0 {
		// --bug adds to the scenario's bugs (a later ID:P overrides an earlier one).
		list := slices.Clone(sc.Bugs)
		for _, b := range f.bugs {
			if !slices.Contains(list, b) {
				list = append(list, b)
			}
		}
		if err := sc.SetFlag("--bug", "bugs", strings.Join(list, ",")); err != nil {
			return nil, err
		}
	}
	sc.ApplyDefaults()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		return flagsDone(runFlagSet(&runFlags{}, stderr), err, stdout, stderr)
	}
	sc, err := f.loadScenario(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "telechaos run: %v\n", err)
		if ctx.Err() != nil {
			return harness.ExitInterrupted
		}
		return harness.ExitUsage
	}
	shard, err := f.parseShard()
	if err != nil {
		fmt.Fprintf(stderr, "telechaos run: %v\n", err)
		return harness.ExitUsage
	}
	runID := f.runID
	if runID == "" {
		runID = harness.NewRunID(sc.Seed)
	}
	dir := f.report
	if dir == "" {
		dir = filepath.Join("telechaos-report", runID)
	}
	if shard.Sharded() {
		// <report>/<run-id>/shard-I, so `report merge <report>/<run-id>/shard-*` finds them.
		dir = shardReportDir(f.report, runID, shard)
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	pr := newProgressPrinter(stderr)
	fmt.Fprintf(stderr, "telechaos: run %s, scenario %s, seed %d, target %s, %d patients, %d clinicians, media %v, duration %v\n",
		runID, sc.Name, sc.Seed, orDefault(sc.Target, harness.TargetEmbedded), sc.Population.Patients,
		sc.Population.Clinicians, sc.Media, sc.Duration.Duration)
	if shard.Sharded() {
		fmt.Fprintf(stderr, "telechaos: shard %s: %d of the patients (global index i mod %d = %d)\n",
			shard, shard.Patients(sc.Population.Patients), shard.Count, shard.Index)
	}
	cfg := harness.RunConfig{
		Scenario: sc, ScenarioRef: f.scenario, RunID: runID, ReportDir: dir, MetricsAddr: f.metricsAddr,
		Logger: logger, Progress: pr.update, Shard: shard, CAFile: f.caFile,
	}
	if shard.Sharded() {
		cfg.ReproArgs = append(cfg.ReproArgs, "--shard", shard.String())
	}
	for _, kv := range f.sets {
		cfg.ReproArgs = append(cfg.ReproArgs, "--set", kv)
	}
	if f.given["duration"] {
		cfg.ReproArgs = append(cfg.ReproArgs, "--duration", f.duration.String())
	}
	if f.given["media"] && sc.Media {
		// The repro line names --media=false itself; a --media=true that
		// overrode a scenario's media: false must be replayed too.
		cfg.ReproArgs = append(cfg.ReproArgs, "--media=true")
	}
	if f.metricsAddr != "" {
		fmt.Fprintf(stderr, "telechaos: metrics on http://%s/metrics during the run\n", f.metricsAddr)
	}
	if f.verbose {
		cfg.MediaLogger, cfg.ClinicLogger = logger, logger
	}
	if f.deploy.image != "" {
		return runDeployed(ctx, f, cfg, pr, stdout, stderr)
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "telechaos run: --cpuprofile: %v\n", err)
			return harness.ExitUsage
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintf(stderr, "telechaos run: --cpuprofile: %v\n", err)
			return harness.ExitUsage
		}
		defer pprof.StopCPUProfile()
	}
	res, err := harness.Run(ctx, cfg)
	pr.done()
	if res == nil {
		printRunError(stderr, err, dir)
		return exitCodeOf(err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "telechaos run: %v\n", err)
	}
	if f.push != "" && shard.Sharded() {
		pushShardMetrics(ctx, f.push, res, shard, stderr)
	} else if f.push != "" {
		pushMetrics(ctx, f.push, res, stderr)
	}
	printVerdict(stdout, res.Summary, res.ReportDir)
	return res.ExitCode
}

// printRunError explains an error harness.Run returned without a result
// (ErrConfig: exit 2), naming the flag to fix where there is one.
func printRunError(stderr io.Writer, err error, reportDir string) {
	if errors.Is(err, reports.ErrReportDir) {
		fmt.Fprintf(stderr, "telechaos run: --report %s: %v (refused before any traffic)\n", reportDir, err)
		return
	}
	fmt.Fprintf(stderr, "telechaos run: %v\n", err)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// progressPrinter shows live progress: one refreshing line on a terminal, a
// plain line every 5 s otherwise (CI logs).
type progressPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	last  time.Time
	shown bool
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, tty: isTerminal(w)}
}

func (p *progressPrinter) update(pg harness.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("%6s users %d  calls %d (%d live)  switches %d  replays %d  frames %d  violations %d",
		pg.Elapsed.Round(time.Second), pg.UsersActive, pg.Calls, pg.CallsActive, pg.Switches, pg.ReplaysChecked,
		pg.FramesChecked, pg.Violations)
	if pg.Dropped > 0 {
		line += fmt.Sprintf("  dropped %d", pg.Dropped)
	}
	if p.tty {
		if len(line) > 79 {
			line = line[:79]
		}
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
		return
	}
	if pg.Final || time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		fmt.Fprintln(p.w, strings.TrimSpace(line))
	}
}

func (p *progressPrinter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprintln(p.w)
	}
}

// printVerdict prints the short verdict table (fits 80 columns): the verdict
// and why (the summary's Reason, then its Also lines), each invariant with
// its violations and how much of it was judged (a 0 that judged nothing is
// not shown as a pass), the coverage shortfalls, the thresholds.
func printVerdict(w io.Writer, s *reports.Summary, dir string) {
	fmt.Fprintf(w, "\nverdict: %s (exit %d)  scenario %s  seed %d  %.1fs\n",
		strings.ToUpper(s.Verdict), s.ExitCode, s.Scenario, s.Seed, s.DurationSeconds)
	if s.Reason != "" {
		printWrapped(w, "reason: ", s.Reason)
	}
	for _, a := range s.Also {
		printWrapped(w, "also: ", a)
	}
	if s.Error != "" && !strings.Contains(s.Reason, s.Error) {
		fmt.Fprintf(w, "  %s\n", truncate(s.Error, 76))
	}
	c := s.Counts
	fmt.Fprintf(w, "patients %d  calls %d  switches %d  replays %d  frames %d+%d live  probes %d\n",
		c.Patients, c.CallsEnded, c.Switches, c.ReplaysFetched, c.FramesChecked, c.LiveFramesChecked, c.Probes)
	if c.CallsFailed > 0 || c.ArrivalsDropped > 0 {
		fmt.Fprintf(w, "failed patients %d  dropped arrivals %d\n", c.CallsFailed, c.ArrivalsDropped)
	}
	printInvariants(w, s.Invariants, func(inv string) float64 { return float64(s.ViolationsByInvariant[inv]) }, s.Judgement)
	for i, v := range s.Violations {
		if i == 3 {
			fmt.Fprintf(w, "  ... %d more in the report\n", len(s.Violations)-3)
			break
		}
		fmt.Fprintf(w, "  ! %s\n", truncate(v.Invariant+": "+v.Detail, 76))
	}
	if len(s.CoverageShortfalls) > 0 {
		fmt.Fprintf(w, "chaos coverage not met: the faults did not reach these paths often enough,\nso a pass would prove nothing about them:\n")
		for _, sf := range s.CoverageShortfalls {
			fmt.Fprintf(w, "  ! %s\n", truncate(sf, 76))
		}
	}
	printThresholds(w, s.Thresholds, false)
	if s.Expect != "" && s.Expect != "pass" {
		fmt.Fprintf(w, "expect %s: met=%v\n", s.Expect, s.ExpectMet)
	}
	if len(s.Violations) > 0 {
		fmt.Fprintf(w, "repro: %s\n", s.Repro)
		for _, cmd := range s.ReproTraces {
			fmt.Fprintf(w, "minimal repro: %s\n", cmd)
		}
	}
	if dir != "" {
		fmt.Fprintf(w, "report: %s\n", dir)
	}
}

// printInvariants prints one row per invariant: its violations and its
// judgement (judged / not-judged / not-exercised / not-checked). Without a
// judgement table (an older summary) only the violations are shown.
func printInvariants(w io.Writer, checked []string, violations func(string) float64, js map[string]reports.Judgement) {
	if len(js) == 0 {
		fmt.Fprintf(w, "%-32s %s\n", "invariant", "violations")
	} else {
		fmt.Fprintf(w, "%-32s %-10s %s\n", "invariant", "violations", "judgement")
	}
	for _, inv := range reports.AllInvariants {
		n := violations(inv)
		mark := fmt.Sprint(n)
		j, hasJ := js[inv]
		notChecked := len(checked) > 0 && !slices.Contains(checked, inv)
		if !hasJ {
			if notChecked {
				mark = "not checked"
			}
			fmt.Fprintf(w, "  %-30s %s\n", inv, mark)
			continue
		}
		var judged, detail string
		switch j.Status {
		case reports.JudgementJudged:
			judged = fmt.Sprintf("judged %d/%d", j.Judged, j.Judged+j.NotJudged)
		case reports.JudgementShort:
			judged = fmt.Sprintf("NOT JUDGED %d/%d (%.0f%% < %.0f%%)", j.Judged, j.Judged+j.NotJudged, 100*j.Share, 100*j.Required)
			detail = topReason(j)
		case reports.JudgementNotExercised:
			judged = "not exercised: nothing to judge"
		case reports.JudgementNotChecked:
			judged = "not checked"
		default:
			judged = j.Status
		}
		if n == 0 && (j.Status == reports.JudgementNotExercised || j.Status == reports.JudgementNotChecked || notChecked) {
			mark = "-" // no check ran: not a 0 that passed
		}
		fmt.Fprintf(w, "  %-30s %-10s %s\n", inv, mark, truncate(judged, 36))
		if detail != "" {
			fmt.Fprintf(w, "    %s\n", truncate(detail, 76))
		}
	}
}

// topReason is the most frequent reason an invariant was not judged, with
// its first example.
func topReason(j reports.Judgement) string {
	best, bestN := "", int64(-1)
	for r, n := range j.Reasons {
		if n > bestN || n == bestN && r < best {
			best, bestN = r, n
		}
	}
	if best == "" {
		return ""
	}
	line := fmt.Sprintf("not judged: %d %s", bestN, best)
	if len(j.Reasons) > 1 {
		line += fmt.Sprintf(" (+%d more reasons)", len(j.Reasons)-1)
	}
	if ex := j.Examples[best]; ex != "" {
		line += ", first: " + ex
	}
	return line
}

// printWrapped prints prefix+text wrapped at word boundaries to 80 columns,
// continuation lines indented under the text.
func printWrapped(w io.Writer, prefix, text string) {
	const width = 80
	indent := strings.Repeat(" ", len(prefix))
	line := prefix
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			fmt.Fprintln(w, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += truncate(word, width-len(indent))
	}
	fmt.Fprintln(w, line)
}

// printThresholds prints the threshold table (80 columns); notes, when asked,
// go under failed rows.
func printThresholds(w io.Writer, ts []reports.Threshold, notes bool) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(w, "%-32s %-12s %-16s %s\n", "threshold", "value", "limit", "result")
	for _, t := range ts {
		res := "ok"
		if !t.Pass {
			res = "FAILED"
		}
		name := t.Metric
		if t.Stat != "" {
			name += " " + t.Stat
		}
		val := fmt.Sprintf("%.4g", t.Value)
		if strings.HasPrefix(t.Metric, "latency.") {
			val = time.Duration(t.Value * float64(time.Second)).Round(100 * time.Microsecond).String()
		}
		fmt.Fprintf(w, "  %-30s %-12s %-16s %s\n", truncate(name, 30), val, truncate(t.Limit, 16), res)
		if notes && !t.Pass && t.Note != "" {
			fmt.Fprintf(w, "    %s\n", truncate(t.Note, 74))
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
