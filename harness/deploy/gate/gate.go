// Package gate is the release gate for pipelines, in the shape of a
// testcontainers module: stand the release's image up with deploy.Run, front
// it with a stable in-process HTTP proxy, attack it with a scenario (and
// container faults, if asked) through harness.Run, and return the verdict
// and the report directory. From a go test:
//
//	res, err := gate.Run(ctx, t, gate.Config{Image: "registry.local/clinic:1.4.2"})
//	if err != nil { t.Fatal(err) }
//	if res.ExitCode != harness.ExitPass { t.Fatalf("verdict %s, report %s", res.Verdict(), res.ReportDir) }
//
// Run registers the deployment's cleanup with t.Cleanup before it looks at
// any error, so a failed start or a failed test never leaves a container,
// network, volume or built image behind.
//
// The package sits below harness/deploy rather than in it so that deploy
// never imports harness (the runner may one day import deploy).
package gate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/deploy"
	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/internal/dockertest"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// ImageClinic as Config.Image builds the reference clinic image from the
// telechaos module (Config.RepoRoot) and removes it at Close.
const ImageClinic = "clinic"

// DefaultScenario is the scenario a gate runs when Config.Scenario is empty.
const DefaultScenario = "release-gate"

// Environment variables the clinic image reads for its bugs and seed
// (cmd/clinic); an image of your own may ignore them.
const (
	EnvBugs = "CLINIC_BUGS"
	EnvSeed = "CLINIC_SEED"
)

// Fault is one container fault of the run: Kind is one of deploy.FaultKinds,
// Trigger says when (a clock or an event trigger of the chaos package; For
// is how long the container stays broken before it is healed).
type Fault struct {
	Kind    string
	Trigger chaos.Trigger
	Name    string // labels the windows; default the kind (numbered if repeated)
}

// Config configures a gate. Only Image is needed; the zero value of every
// other field is a sensible default.
type Config struct {
	// Image is the release's image (name[:tag] or ID) that speaks
	// docs/api.md and takes the clinic's flags, or ImageClinic.
	Image string
	// RepoRoot is the telechaos module root, for ImageClinic; default: the
	// nearest directory upwards from the working directory with a go.mod
	// declaring module github.com/telechaos/telechaos.
	RepoRoot string
	// Scenario is a built-in name or a YAML file; default DefaultScenario.
	Scenario string
	// Sets are scenario overrides KEY=VALUE, as telechaos run --set.
	Sets []string
	// Loaded, when set, is the scenario to run, already loaded and adjusted
	// (the CLI's); Scenario and Sets are then ignored. It is copied, not
	// changed.
	Loaded *scenarios.Scenario
	// Edit, when set, changes the loaded scenario last (population, duration,
	// thresholds...).
	Edit func(*scenarios.Scenario)
	// Bugs are clinic catalogue bugs (ID or ID:P), passed with the scenario's
	// own bugs to the container through its environment (EnvBugs), the seed
	// as EnvSeed.
	Bugs []string
	// Env is more environment for the container.
	Env map[string]string
	// Options are more deploy.Run options (a pinned UDP port, a data
	// volume, a logger...).
	Options []deploy.Option
	// Faults are container faults scheduled during the run.
	Faults []Fault
	// ReportDir receives the report; default (Run) tb.ArtifactDir(), (a
	// Session) no report.
	ReportDir string
	// RunConfig is the base of the harness configuration (Logger, Progress,
	// MetricsAddr, Registry, Grace, OnEvent...). Scenario, NewTarget,
	// Chaos (the container faults) and ReportDir are set by the gate.
	RunConfig harness.RunConfig
}

// Result is a gate's outcome: the harness result (verdict, exit code,
// violations, report directory) plus what the gate measured.
type Result struct {
	*harness.Result
	// Windows are the run's fault windows (the container faults' and the
	// scenario's own), in the order they opened, as in the summary.
	Windows []chaos.Window
	// URL is the stable front (proxy) address the run used.
	URL string
}

// Session is a started deployment behind a stable HTTP front, ready to run
// scenarios. Close always; it is safe on a partly started Session.
type Session struct {
	cfg        Config
	d          *deploy.Deployment
	proxy      *chaos.HTTPProxy
	image      string
	builtImage bool

	// BuildTime is how long building the ImageClinic image took (0 if none
	// was built); StartTime how long the container took to answer /healthz.
	BuildTime, StartTime time.Duration
}

// ErrConfig wraps every configuration mistake Start reports.
var ErrConfig = errors.New("gate: invalid configuration")

// Start builds the image if asked, starts the deployment and its proxy. On
// error it still returns the Session so that Close removes what was made.
func Start(ctx context.Context, cfg Config) (*Session, error) {
	s := &Session{cfg: cfg}
	if cfg.Image == "" {
		return s, fmt.Errorf("%w: no image (want name[:tag], an image ID or %q)", ErrConfig, ImageClinic)
	}
	for i, f := range cfg.Faults {
		if !slices.Contains(deploy.FaultKinds, f.Kind) {
			return s, fmt.Errorf("%w: faults[%d]: kind %q (want one of %v)", ErrConfig, i, f.Kind, deploy.FaultKinds)
		}
		if errs := f.Trigger.Validate(fmt.Sprintf("faults[%d].trigger", i)); len(errs) > 0 {
			return s, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
		}
	}
	sc, err := s.scenario()
	if err != nil {
		return s, err
	}
	s.image = cfg.Image
	if cfg.Image == ImageClinic {
		root := cfg.RepoRoot
		if root == "" {
			if root, err = FindRepoRoot(); err != nil {
				return s, err
			}
		}
		t0 := time.Now()
		id, err := deploy.BuildClinicImage(ctx, root, "telechaos/clinic:gate-"+strconv.FormatInt(time.Now().UnixNano(), 36))
		s.BuildTime = time.Since(t0)
		if err != nil {
			return s, err
		}
		s.image, s.builtImage = id, true
	}

	env := maps.Clone(cfg.Env)
	if env == nil {
		env = map[string]string{}
	}
	if b := bugsOf(cfg, sc); len(b) > 0 {
		env[EnvBugs] = strings.Join(b, ",")
	}
	if _, ok := env[EnvSeed]; !ok {
		env[EnvSeed] = strconv.FormatUint(sc.Seed, 10)
	}
	opts := append([]deploy.Option{deploy.WithEnv(env)}, cfg.Options...)
	t0 := time.Now()
	s.d, err = deploy.Run(ctx, s.image, opts...)
	s.StartTime = time.Since(t0)
	if err != nil {
		return s, err
	}
	if s.proxy, err = chaos.NewHTTPProxy(s.d.URL()); err != nil {
		return s, fmt.Errorf("gate: proxy in front of %s: %w", s.d.URL(), err)
	}
	return s, nil
}

// bugsOf is the config's bugs, the scenario's and those already in
// cfg.Env[EnvBugs], without repeats.
func bugsOf(cfg Config, sc *scenarios.Scenario) []string {
	inEnv := strings.FieldsFunc(cfg.Env[EnvBugs], func(r rune) bool { return r == ',' || r == ' ' })
	var out []string
	for _, b := range slices.Concat(cfg.Bugs, sc.Bugs, inEnv) {
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// scenario loads and adjusts the configured scenario.
func (s *Session) scenario() (*scenarios.Scenario, error) {
	if s.cfg.Loaded != nil {
		sc := *s.cfg.Loaded
		sc.Bugs = slices.Clone(sc.Bugs)
		if s.cfg.Edit != nil {
			s.cfg.Edit(&sc)
		}
		return &sc, nil
	}
	name := s.cfg.Scenario
	if name == "" {
		name = DefaultScenario
	}
	sc, err := scenarios.Load(name)
	if err != nil {
		return nil, fmt.Errorf("%w: scenario: %w", ErrConfig, err)
	}
	if err := sc.ApplySets(s.cfg.Sets); err != nil {
		return nil, fmt.Errorf("%w: scenario %s: %w", ErrConfig, name, err)
	}
	if s.cfg.Edit != nil {
		s.cfg.Edit(sc)
	}
	return sc, nil
}

// Deployment is the running deployment (nil if Start failed early).
func (s *Session) Deployment() *deploy.Deployment { return s.d }

// URL is the stable front address ("" before the proxy started).
func (s *Session) URL() string {
	if s.proxy == nil {
		return ""
	}
	return s.proxy.URL()
}

// Image is the image the deployment runs (the built image's ID for ImageClinic).
func (s *Session) Image() string { return s.image }

// Run runs the configured scenario once against the deployment, with the
// configured container faults. The bugs went to the container at Start;
// the harness sees the deployment only through the proxy.
func (s *Session) Run(ctx context.Context) (*Result, error) {
	if s.d == nil || s.proxy == nil {
		return nil, fmt.Errorf("%w: the session did not start", ErrConfig)
	}
	sc, err := s.scenario()
	if err != nil {
		return nil, err
	}
	// The bugs live in the container; the runner rejects bugs for a target
	// other than the embedded clinic. The target is NewTarget's, so the
	// scenario names none, and the repro command carries --deploy (the
	// proxy's address dies with the run).
	rc := s.cfg.RunConfig
	rc.ReproArgs = append(slices.Clone(rc.ReproArgs), s.reproArgs(sc)...)
	sc.Bugs, sc.Target = nil, ""
	startURL := s.d.URL()
	rc.Scenario = sc
	if rc.ScenarioRef == "" {
		rc.ScenarioRef = s.cfg.Scenario
	}
	if s.cfg.ReportDir != "" {
		rc.ReportDir = s.cfg.ReportDir
	}
	// The container faults go to the runner, which schedules them with the
	// scenario's own: it records their windows (report, coverage, the loss
	// recording-durability allows), waits out their outages and has calls
	// rejoin after a kill, stop or disconnect.
	ext := &harness.ExternalChaos{Proxy: s.proxy, Target: s.d.ChaosTarget()}
	env := chaos.Env{Proxy: ext.Proxy, Target: ext.Target}
	seen := map[string]int{}
	for _, f := range s.cfg.Faults {
		name := f.Name
		if name == "" {
			name = f.Kind
			if seen[name]++; seen[name] > 1 {
				name += "#" + strconv.Itoa(seen[name])
			}
		}
		cf, err := deploy.NewContainerFault(f.Kind, s.d, s.proxy, name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if err := cf.Available(env); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		ext.Faults = append(ext.Faults, harness.ExternalFault{Fault: cf, Trigger: f.Trigger, Restarts: cf.RestartsTarget()})
	}
	rc.Chaos = ext

	var target *driver.HTTPTarget
	rc.NewTarget = func(obs driver.Observer) (driver.Target, error) {
		t, err := driver.NewHTTP(s.proxy.URL(), driver.HTTPOptions{Observer: obs})
		target = t
		return t, err
	}

	res, runErr := harness.Run(ctx, rc)
	if target != nil {
		target.Close()
	}
	if res == nil {
		if errors.Is(runErr, harness.ErrConfig) {
			runErr = fmt.Errorf("%w: %w", ErrConfig, runErr)
		}
		return nil, runErr
	}
	out := &Result{Result: res, URL: s.proxy.URL()}
	if res.Summary != nil {
		out.Windows = windowsOf(res.Summary)
		// Only the name: NewTarget leaves the runner nothing to call the
		// target by.
		res.Summary.Target = "deploy " + s.cfg.Image + " (" + startURL + " at the start, via " + s.proxy.URL() + ")"
		if res.ReportDir != "" {
			err := errors.Join(reports.WriteSummary(res.ReportDir, res.Summary), reports.Render(res.ReportDir, res.Summary))
			if err != nil {
				runErr = errors.Join(runErr, fmt.Errorf("gate: name the deployment in the report: %w", err))
			}
		}
	}
	for _, w := range out.Windows {
		if w.Err != "" {
			// A fault that failed to inject or heal leaves the verdict
			// unreliable: say so, whatever the run found.
			runErr = errors.Join(runErr, fmt.Errorf("%w: fault %s: %s", harness.ErrTarget, w.Fault, w.Err))
		}
	}
	return out, runErr
}

// windowsOf reads the run's fault windows back from its summary.
func windowsOf(s *reports.Summary) []chaos.Window {
	var out []chaos.Window
	for _, w := range s.FaultWindows {
		out = append(out, chaos.Window{Fault: w.Fault, Params: w.Params, Trigger: w.Trigger, Start: w.Start, End: w.End, Err: w.Err})
	}
	return out
}

// reproArgs are the telechaos run flags that stand this deployment up again.
func (s *Session) reproArgs(sc *scenarios.Scenario) []string {
	args := []string{"--deploy", s.cfg.Image}
	for _, b := range bugsOf(s.cfg, sc) {
		args = append(args, "--bug", b)
	}
	for _, k := range slices.Sorted(maps.Keys(s.cfg.Env)) {
		if k != EnvBugs && k != EnvSeed {
			args = append(args, "--deploy-env", k+"="+s.cfg.Env[k])
		}
	}
	for _, f := range s.cfg.Faults {
		// Only clock faults have a flag form.
		if t := f.Trigger; t.On == "" && t.Every.Duration == 0 && t.Count <= 1 {
			spec := strings.TrimPrefix(f.Kind, "container-") + "@" + t.At.Duration.String()
			if t.For.Duration > 0 {
				spec += "+" + t.For.Duration.String()
			}
			args = append(args, "--deploy-fault", spec)
		}
	}
	return args
}

// Close stops the proxy, terminates the deployment (container, network,
// volume) and removes the image Start built. It is safe to call twice and on
// a partly started Session, and it runs even when ctx is cancelled.
func (s *Session) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var errs []error
	if s.proxy != nil {
		errs = append(errs, s.proxy.Close())
		s.proxy = nil
	}
	if s.d != nil {
		errs = append(errs, s.d.Terminate(ctx))
	}
	if s.builtImage {
		errs = append(errs, deploy.RemoveImage(ctx, s.image))
		s.builtImage = false
	}
	return errors.Join(errs...)
}

// Run starts a gate from a test: the deployment's cleanup is registered with
// tb.Cleanup at once (before any error is looked at), Docker is required
// (dockertest.Require: a skip without an engine, a failure under CI=true),
// and the report goes to tb.ArtifactDir() unless cfg.ReportDir says
// otherwise. It returns the result and the run's error (a target or
// infrastructure failure); a violation is not an error: read ExitCode.
func Run(ctx context.Context, tb testing.TB, cfg Config) (*Result, error) {
	tb.Helper()
	dockertest.Require(tb, deploy.DockerAvailable)
	if cfg.ReportDir == "" {
		cfg.ReportDir = tb.ArtifactDir()
	}
	s, err := Start(ctx, cfg)
	tb.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			tb.Errorf("gate: cleanup: %v", err)
		}
	})
	if err != nil {
		return nil, err
	}
	tb.Logf("gate: %s healthy after %v (built in %v), front %s, udp %d",
		s.image, s.StartTime.Round(time.Millisecond), s.BuildTime.Round(time.Millisecond), s.URL(), s.d.UDPPort())
	return s.Run(ctx)
}

// FindRepoRoot walks up from the working directory to the telechaos module
// root (a go.mod declaring module github.com/telechaos/telechaos).
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	start := dir
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && f[1] == "github.com/telechaos/telechaos" {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: building the reference clinic needs the telechaos source: no telechaos module at or above %s (run from a checkout, or set RepoRoot)", ErrConfig, start)
		}
		dir = parent
	}
}
