// Package harness is telechaos' engine: it runs a scenario against a target (the
// embedded reference clinic or a URL), drives virtual patients and clinicians
// through real WebRTC calls with watermarked media, feeds every observation to
// the oracle and to per-run Prometheus metrics, and writes the reports.
//
// Run is the one entry point, used by the CLI, by tests and by properties.
//
// Run composes the stages, each a package of its own: the target registry
// (harness/target), the chaos runtime (harness/chaos), the load stage
// (harness/load) over the one client (harness/client), the oracle, the
// run's record (harness/history, harness/metrics), the verdict
// (harness/verdict) and the repro traces (harness/repro).
package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/client"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/executor"
	"github.com/telechaos/telechaos/harness/history"
	"github.com/telechaos/telechaos/harness/load"
	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/target"
	"github.com/telechaos/telechaos/models"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// Sentinel errors Run's callers branch on (exit codes 2 and 3).
var (
	// ErrConfig: the scenario or the run configuration is invalid.
	ErrConfig = errors.New("invalid configuration")
	// ErrTarget: the target or the local infrastructure failed (could not start
	// the embedded clinic, target unreachable, garbage answers at setup, every
	// call failed).
	ErrTarget = errors.New("target or infrastructure failure")
)

// Exit codes (models.Decide is the one rule that picks them).
const (
	ExitPass        = models.ExitPass
	ExitViolation   = models.ExitViolation
	ExitUsage       = models.ExitUsage
	ExitTarget      = models.ExitTarget
	ExitThresholds  = models.ExitThresholds
	ExitInterrupted = models.ExitInterrupted
)

// TargetEmbedded is the scenario target that starts the reference clinic in-process.
const TargetEmbedded = "embedded"

// RunConfig configures Run. Only Scenario is required.
type RunConfig struct {
	Scenario *scenarios.Scenario
	// ScenarioRef is how the user named the scenario (a built-in name or a file
	// path), used in repro commands; default Scenario.Name.
	ScenarioRef string
	// ReproArgs are extra arguments the repro command needs to replay this run
	// (the CLI passes its --set and --duration overrides).
	ReproArgs []string
	RunID     string // default: time and seed
	// ReportDir receives summary.json, junit.xml and evidence files; "" writes none.
	ReportDir string
	// MetricsAddr serves /metrics during the run (e.g. "127.0.0.1:9464"); "" does not.
	MetricsAddr string
	// Registry receives the run's collectors; default a fresh one.
	Registry *prometheus.Registry
	Logger   *slog.Logger // default: discard
	// NewTarget, when set, replaces the scenario's target (tests, fault
	// wrappers, drivers for other APIs). It receives the run's Observer, which
	// the target should call for every request so that metrics and evidence see
	// it. Run does not close the target.
	NewTarget func(obs driver.Observer) (driver.Target, error)
	// DataDir is the embedded clinic's data directory; default a temporary one,
	// removed at the end.
	DataDir string
	// Grace bounds how long calls and checks may run after ctx is cancelled;
	// default 5s.
	Grace time.Duration
	// Progress, when set, is called every ProgressEvery (default 1s) and once at
	// the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// OnEvent, when set, is called synchronously at the milestones of every
	// call (see EventKind), so faults can be timed to events (at the Nth
	// switch, during finalisation) rather than to clocks. It runs on the call's
	// goroutine: a slow hook delays that call.
	OnEvent func(Event)
	// ClinicLogger receives the embedded clinic's logs; default discard.
	ClinicLogger *slog.Logger
	// MediaLogger receives the WebRTC stack's logs (noisy at teardown);
	// default discard.
	MediaLogger *slog.Logger
	// ReproBudget bounds the minimisation of the violations into
	// repro-N.trace files after the run (ReportDir set); 0: 60s, < 0: none.
	ReproBudget time.Duration
	// Shard runs one slice of the population (see shard.go); zero: all.
	Shard Shard
	// Chaos brings faults the caller built (container faults of a
	// deployment) into the run, for URL and NewTarget targets too (see
	// ExternalChaos); nil: only the scenario's profile.
	Chaos *ExternalChaos
	// CAFile: a PEM file of CA certificates an https target may chain to,
	// besides the system roots (driver.HTTPOptions.CAFile).
	CAFile string
}

// Progress is a live snapshot for progress lines (see load.Progress).
type Progress = load.Progress

// recentOps is how many of a user's last requests a violation's evidence
// shows.
const recentOps = 16

// Call milestones (see load.Event), reported to RunConfig.OnEvent.
type (
	EventKind = load.EventKind
	Event     = load.Event
)

// Call milestones reported to RunConfig.OnEvent.
const (
	EventConnected = load.EventConnected // both participants' media connected
	EventSwitching = load.EventSwitching // about to renegotiate to video
	EventSwitched  = load.EventSwitched  // both participants switched
	EventEnding    = load.EventEnding    // about to end the call
	EventEnded     = load.EventEnded     // the target acknowledged the end
	EventFetching  = load.EventFetching  // a participant is about to fetch a replay's tracks
)

// Result is a finished run.
type Result struct {
	Summary    *reports.Summary
	Violations []oracle.Violation
	ReportDir  string // "" if no report was written
	ExitCode   int
	// FirstViolation is the time from start to the first violation, or -1.
	FirstViolation time.Duration
	Metrics        *metrics.Metrics
	// Chaos is what the faults did (nil without a fault profile); also
	// written as chaos.json.
	Chaos *ChaosReport
}

// Verdict is the summary's verdict.
func (r *Result) Verdict() string { return r.Summary.Verdict }

// run is one run's state shared by the virtual users.
type run struct {
	cfg    RunConfig
	sc     *scenarios.Scenario
	seed   uint64
	beh    models.Behaviour
	settle time.Duration
	log    *slog.Logger
	target driver.Target
	media  *driver.MediaFactory
	// mediaOpts is what media was built with (ICE gathering, servers).
	mediaOpts driver.MediaOptions
	// allowedRemote: where ICE checks may go (the target's host and network).
	allowedRemote []netip.Prefix
	ledger        *models.Ledger
	or            *oracle.Oracle
	met           *metrics.Metrics
	// vu is the load stage (virtual users); cnt its counters, which the
	// observer, the summary, thresholds and progress share.
	vu        *load.Users
	cnt       *load.Counters
	start     time.Time
	firstViol atomic.Int64 // nanos since start + 1; 0 = none
	stopping  chan struct{}
	stopOnce  sync.Once
	timeline  metrics.Timeline
	chaos     *chaos.Runtime // nil without a fault profile
	// control stops and starts the opened target (nil: the harness cannot);
	// its restarts become a repro trace's target ops.
	control target.Control
	oplog   history.Log // per-user recent ops: evidence and repro traces
}

func (r *run) interrupted() bool { return r.vu.Interrupted() }

func (r *run) stop() { r.stopOnce.Do(func() { close(r.stopping) }) }

// observe is the driver's Observer: every request feeds the metrics (counts
// and the timed ops' latencies) and the op log, which is both the repro
// traces' source and the oracle's evidence history.
func (r *run) observe(o driver.Observation) {
	r.met.Observe(o)
	logged := r.oplog.Add(r.ledger, o)
	r.cnt.Ops.Add(1)
	ok := o.Err == nil && (o.Status == 0 || o.Status/100 == 2)
	if !ok {
		r.cnt.OpErrors.Add(1)
	}
	// The op log is the oracle's evidence history (Options.History); only
	// users it no longer has room for are noted in the oracle's own ring.
	if !logged && r.or != nil {
		r.or.Note(o.User, oracle.OpNote{Op: string(o.Op), Subject: o.Subject, Status: o.Status, Bytes: int(o.Bytes),
			Dur: o.End.Sub(o.Start), Err: o.Err})
	}
}

// Run executes a scenario and returns its result. It returns an error wrapping
// ErrConfig (and a nil Result) for an invalid scenario; for a target or
// infrastructure failure it returns a Result with verdict error and exit code 3
// together with an error wrapping ErrTarget. When ctx is cancelled it stops
// arrivals, ends the calls in flight, finishes what checks it can within
// cfg.Grace and still writes the report (verdict interrupted, exit code 130).
func Run(ctx context.Context, cfg RunConfig) (*Result, error) {
	if cfg.Scenario == nil {
		return nil, fmt.Errorf("%w: no scenario", ErrConfig)
	}
	sc := cfg.Scenario
	// Scenarios built in Go (tests, properties) get the loader's defaults too.
	sc.ApplyDefaults()
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// The target's scheme is registered and its opener takes the bugs (only
	// the embedded clinic has any).
	if err := target.Validate(targetName(sc.Target), target.Options{Bugs: sc.Bugs}); err != nil {
		return nil, fmt.Errorf("%w: scenario %s: %w", ErrConfig, sc.Name, err)
	}
	exec, err := executor.New(sc.Executor)
	if err != nil {
		return nil, fmt.Errorf("%w: scenario %s: %w", ErrConfig, sc.Name, err)
	}
	if err := cfg.Shard.Check(sc.Population.Patients); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.ReportDir != "" {
		// Before any traffic: a run whose report cannot be written must not
		// first spend its whole length against the target.
		if err := reports.Prepare(cfg.ReportDir); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	exec = cfg.Shard.Apply(exec)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.ScenarioRef == "" {
		cfg.ScenarioRef = sc.Name
	}
	if cfg.RunID == "" {
		cfg.RunID = NewRunID(sc.Seed)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	r := &run{
		cfg: cfg, sc: sc, seed: sc.Seed, beh: sc.ModelBehaviour(), settle: sc.Settle.Duration,
		log: cfg.Logger.With("run", cfg.RunID), ledger: models.NewLedger(),
		met: metrics.NewMetrics(cfg.Registry), stopping: make(chan struct{}),
	}
	if r.settle <= 0 {
		r.settle = 10 * time.Second
	}
	r.vu = &load.Users{Seed: r.seed, Behaviour: r.beh, Settle: r.settle, Ledger: r.ledger, Metrics: r.met,
		Log: r.log, OnEvent: cfg.OnEvent, Stopping: r.stopping, SlotCount: sc.Population.Clinicians}
	r.cnt = &r.vu.Count
	r.start = time.Now()
	r.or = oracle.New(r.ledger, oracle.Options{
		OnViolation: func(v oracle.Violation) {
			r.met.Violation(v.Invariant)
			r.cnt.Violations.Add(1)
			r.firstViol.CompareAndSwap(0, int64(time.Since(r.start))+1)
			r.log.Warn("violation", "invariant", v.Invariant, "viewer", v.Viewer, "owner", v.Owner, "detail", v.Detail)
		},
		MaxFrameEvidence:    8,
		DurabilityTolerance: 0.02,
		RecentOps:           recentOps,
		History:             func(user string) []oracle.OpNote { return r.oplog.Notes(user, recentOps) },
	})
	r.vu.Oracle = r.or

	if err := cfg.Registry.Register(metrics.NewJudgementCollector(r.or.Stats)); err != nil {
		return nil, fmt.Errorf("%w: register judgement metrics: %w", ErrConfig, err)
	}
	res := &Result{ExitCode: ExitPass, FirstViolation: -1, Metrics: r.met}
	var runErr error
	cleanup, err := r.setup(ctx)
	defer cleanup()
	if err != nil {
		runErr = err
	} else {
		runErr = r.execute(ctx, exec)
	}
	r.chaos.Stop()
	r.or.Finish(time.Now())
	r.finish(ctx, res, runErr)
	if r.media != nil && res.Summary != nil {
		st := r.media.ICEStats()
		ice := &reports.ICE{Connected: st.Connected, Relayed: st.Relayed, RelayOnly: r.mediaOpts.RelayOnly}
		if st.Connected > 0 {
			ice.RelayedShare = float64(st.Relayed) / float64(st.Connected)
		}
		for _, a := range r.mediaOpts.GatherIPs {
			ice.Gather = append(ice.Gather, a.String())
		}
		res.Summary.ICE = ice
		r.log.Info("media connections", "connected", st.Connected, "relayed", st.Relayed, "gather", ice.Gather)
	}
	r.writeReproTraces(ctx, res) // minimised repro-N.trace files, before the report names them
	if cfg.ReportDir != "" {
		if err := r.writeReport(res); err != nil {
			r.log.Error("write report", "err", err)
			if runErr == nil {
				runErr = fmt.Errorf("%w: write report: %w", ErrTarget, err)
			}
			if res.ExitCode == ExitPass || res.ExitCode == ExitThresholds {
				res.ExitCode = ExitTarget // CI must not read a pass without its report
				res.Summary.ExitCode = ExitTarget
			}
		} else {
			res.ReportDir = cfg.ReportDir
		}
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return res, runErr
	}
	return res, nil
}

// NewRunID names a run by its start time and seed, e.g. 20260601-101500-s42.
func NewRunID(seed uint64) string {
	return fmt.Sprintf("%s-s%d", time.Now().UTC().Format("20060102-150405.000"), seed)
}

// setup opens the target (target.Open: the embedded clinic, a URL, a
// registered scheme; or RunConfig.NewTarget), checks its health, builds the
// media factory and registers the clinicians. The returned cleanup is
// always safe to call.
func (r *run) setup(ctx context.Context) (func(), error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if r.cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", r.cfg.MetricsAddr)
		if err != nil {
			return cleanup, fmt.Errorf("%w: metrics listener on %s: %w", ErrTarget, r.cfg.MetricsAddr, err)
		}
		srv := &http.Server{Handler: r.metricsHandler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		closers = append(closers, func() { srv.Close() })
		r.log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	var tgt driver.Target
	// mediaHost is the target's own host: the only place, with its network,
	// that ICE checks may go (empty: loopback, the driver's default).
	var mediaHost string
	if r.cfg.NewTarget != nil {
		if r.cfg.Chaos != nil && r.wantsChaos() {
			if _, err := r.setupChaos(nil, "", &closers); err != nil {
				return cleanup, err
			}
		}
		t, err := r.cfg.NewTarget(r.observe)
		if err != nil {
			return cleanup, fmt.Errorf("%w: target: %w", ErrTarget, err)
		}
		tgt = t
	} else {
		// The scenario's target through the target registry: the embedded
		// clinic (package harness/embedded), a URL, or a registered scheme.
		op, err := target.Open(ctx, targetName(r.sc.Target), target.Options{
			HTTP: driver.HTTPOptions{Observer: r.observe, Timeout: 15 * time.Second, CAFile: r.cfg.CAFile},
			Bugs: r.sc.Bugs, BugSeed: r.sc.Seed, DataDir: r.cfg.DataDir, Logger: r.cfg.ClinicLogger,
		})
		if errors.Is(err, target.ErrBadRef) {
			return cleanup, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if err != nil {
			return cleanup, fmt.Errorf("%w: %w", ErrTarget, err)
		}
		// Closed after the proxy (closers run in reverse): a restart may
		// have replaced the embedded clinic's server, Close stops the
		// current one.
		closers = append(closers, func() { op.Close() })
		mediaHost = op.MediaHost
		tgt = op.Target
		if r.wantsChaos() {
			front, err := r.setupChaos(op.Control, op.URL, &closers)
			if err != nil {
				return cleanup, err
			}
			if front != "" && front != op.URL {
				h, err := driver.NewHTTP(front, driver.HTTPOptions{Observer: r.observe, Timeout: 15 * time.Second})
				if err != nil {
					return cleanup, fmt.Errorf("%w: target %s: %w", ErrConfig, front, err)
				}
				tgt = h
			}
		}
	}
	r.target, r.vu.Target = tgt, tgt
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := tgt.Health(hctx)
	cancel()
	if err != nil {
		return cleanup, fmt.Errorf("%w: health check: %w", ErrTarget, err)
	}
	if r.sc.Media {
		mlog := r.cfg.MediaLogger
		if mlog == nil {
			mlog = slog.New(slog.DiscardHandler)
		}
		mo := driver.MediaOptions{LoopbackOnly: true, Logger: mlog}
		if err := mediaNetwork(ctx, r.sc.Network, mediaHost, &mo); err != nil {
			return cleanup, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if len(r.sc.ICEAllow) > 0 {
			// The user's list replaces the default (validated with the scenario).
			allowed, err := r.sc.ICEPrefixes()
			if err != nil {
				return cleanup, fmt.Errorf("%w: %w", ErrConfig, err)
			}
			mo.AllowedRemote = allowed
			r.allowedRemote = allowed
		} else if mediaHost != "" {
			allowed, err := driver.DefaultAllowedRemote(ctx, mediaHost)
			if err != nil {
				return cleanup, fmt.Errorf("%w: media: allowed ICE remotes of %s: %w", ErrTarget, mediaHost, err)
			}
			mo.AllowedRemote = allowed
			r.allowedRemote = allowed
		}
		if r.chaos != nil {
			// A dead target must be noticed in seconds, not pion's 25 s.
			mo.ICEDisconnectedTimeout, mo.ICEFailedTimeout = 2*time.Second, 4*time.Second
			if r.chaos.Media() != nil {
				mo.Net = r.chaos.Media().Net()
			}
		}
		f, err := driver.NewMediaFactory(mo)
		if err != nil {
			return cleanup, fmt.Errorf("%w: media: %w", ErrTarget, err)
		}
		r.media, r.vu.Media, r.mediaOpts = f, f, mo
	}
	for _, slot := range r.cfg.Shard.ClinicianSlots(r.sc.Population.Patients, r.sc.Population.Clinicians) {
		s, err := tgt.Register(ctx, models.Clinician)
		if err != nil {
			return cleanup, fmt.Errorf("%w: register clinician: %w", ErrTarget, err)
		}
		r.ledger.AddUser(s.ID, models.Clinician)
		r.vu.Clinicians = append(r.vu.Clinicians, s)
		r.vu.Slots = append(r.vu.Slots, slot)
	}
	if r.chaos != nil {
		if err := r.chaos.Start(ctx); err != nil {
			return cleanup, fmt.Errorf("%w: chaos: %w", ErrTarget, err)
		}
		// Heal before the clinic and the proxy close (closers run in reverse).
		closers = append(closers, r.chaos.Stop)
	}
	return cleanup, nil
}

// execute runs the arrival phase and waits for the patients, honouring ctx
// cancellation (stop arrivals, end calls, grace) and a hard deadline.
func (r *run) execute(ctx context.Context, exec executor.Executor) error {
	sc := r.sc
	// Patients run on work, not ctx: an interrupt ends calls gracefully and
	// work is cancelled only after the grace period.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	arrivals := ctx
	if sc.Duration.Duration > 0 {
		var cancel context.CancelFunc
		arrivals, cancel = context.WithTimeout(ctx, sc.Duration.Duration)
		defer cancel()
	}
	sh := r.cfg.Shard // the whole run unless sharded; exec is the shard's
	l := executor.NewPool(work, sh.Patients(sc.Population.Patients), exec.Slots(sc.Population.Patients), r.stopping, r.shardPatient, func() {
		r.met.Dropped.Inc()
		r.cnt.Dropped.Add(1)
	})

	// Hard bound: arrivals + the longest call + settle + slack, so a hung target
	// cannot hang the run.
	b := r.beh
	hard := sc.Duration.Duration
	if hard <= 0 {
		hard = time.Hour
	}
	hard += b.CallMax + 2*b.ThinkMax + r.settle + 2*client.ConnectTimeout + 30*time.Second

	done := make(chan struct{})
	go func() {
		defer close(done)
		exec.Run(arrivals, l)
		l.Done()
	}()
	ticker := time.NewTicker(r.cfg.ProgressEvery)
	defer ticker.Stop()
	hardT := time.NewTimer(hard)
	defer hardT.Stop()
	var graceC <-chan time.Time
	interrupted, hardHit := false, false
	for {
		select {
		case <-done:
			r.progress(false)
			if interrupted {
				return context.Canceled
			}
			if hardHit {
				return fmt.Errorf("%w: run exceeded its hard deadline of %v; calls in flight were ended", ErrTarget, hard)
			}
			return r.infraVerdict()
		case <-ticker.C:
			r.progress(false)
		case <-ctx.Done():
			if !interrupted {
				interrupted = true
				r.log.Info("interrupted: ending calls in flight", "grace", r.cfg.Grace)
				r.stop()
				graceC = time.After(r.cfg.Grace)
			}
			ctx = context.Background() // stop selecting on it
		case <-hardT.C:
			hardHit = true
			r.log.Error("hard deadline reached: stopping", "after", hard)
			r.stop()
			graceC = time.After(r.cfg.Grace)
		case <-graceC:
			cancelWork()
			graceC = nil
			// Patients notice work's cancellation at their next request; do not
			// wait for stragglers forever.
			select {
			case <-done:
			case <-time.After(r.cfg.Grace):
				r.log.Error("patients still running after grace; writing the report anyway")
			}
			if interrupted {
				return context.Canceled
			}
			return fmt.Errorf("%w: run exceeded its hard deadline of %v", ErrTarget, hard)
		}
	}
}

// infraVerdict turns a run where nothing worked into a target failure rather
// than a silent pass.
func (r *run) infraVerdict() error {
	p := r.cnt.Patients.Load()
	failed := r.cnt.CallsFailed.Load()
	if p > 0 && failed == p {
		last := strings.Join(r.vu.Errors(), "; ")
		return fmt.Errorf("%w: all %d patients failed (%s)", ErrTarget, p, last)
	}
	return nil
}

func (r *run) progress(final bool) {
	p := r.vu.Progress(time.Since(r.start), final)
	r.sample(p)
	if r.cfg.Progress != nil {
		r.cfg.Progress(p)
	}
}

// sample appends a point to the run's timeline (plots in the HTML report).
func (r *run) sample(p Progress) {
	r.timeline.Add(reports.Sample{
		T: p.Elapsed.Seconds(), UsersActive: p.UsersActive, CallsActive: p.CallsActive, Calls: p.Calls,
		Ops: r.cnt.Ops.Load(), OpErrors: r.cnt.OpErrors.Load(), FramesChecked: p.FramesChecked,
		Violations: p.Violations, Dropped: p.Dropped,
		FramesSent: r.cnt.FramesSent.Load(), FramesReceived: r.cnt.FramesReceived.Load(), Latency: r.met.LatencyWindow(),
	})
}
