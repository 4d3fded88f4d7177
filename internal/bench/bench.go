package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Sections of the suite, in the order they run.
var Sections = []string{"floor", "cpu", "oracle", "users", "mixed", "media", "setup", "detect"}

// Config configures Run.
type Config struct {
	Quick bool
	// OutDir receives the profiles and the tools' scratch files.
	OutDir string
	// Self is the telechaos command line (argv prefix) used for the
	// telechaos client and, with "bench serve-clinic", for the clinic process.
	Self []string
	// Install lets the suite install missing comparison tools.
	Install bool
	// Only runs these sections (nil: all).
	Only []string
	// Log receives progress lines.
	Log io.Writer
}

// Goal is one of issue 8's goals, judged on this run's figures.
type Goal struct {
	Name  string   `json:"name"`
	Want  string   `json:"want"`
	Value *float64 `json:"value"`
	Met   bool     `json:"met"`
	Note  string   `json:"note,omitempty"`
}

// Report is the suite's JSON. Headline figures are medians (null when not
// measured; Notes says why); Spread holds every run of each figure.
type Report struct {
	Machine   Machine   `json:"machine"`
	Pinning   string    `json:"pinning"`
	Quick     bool      `json:"quick"`
	StartedAt time.Time `json:"started_at"`
	Seconds   float64   `json:"duration_s"`
	// LoadAvgStart/End are /proc/loadavg: this machine is shared, and the
	// figures are only as good as the CPU other work left.
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`

	MediaConsultations         *float64 `json:"media_consultations"`
	MediaLossPct               *float64 `json:"media_loss_pct"`
	SwitchP95ms                *float64 `json:"switch_p95_ms"`
	SetupCallsPerS             *float64 `json:"setup_calls_per_s"`
	LoopbackFloorPPS           *float64 `json:"loopback_floor_pps"`
	LoopbackFloorConsultations *float64 `json:"loopback_floor_consultations"`
	MediaVsFloorPct            *float64 `json:"media_vs_floor_pct"`
	HTTPUsers                  *float64 `json:"http_users"`
	BytesPerHTTPUser           *float64 `json:"bytes_per_http_user"`
	MixedUsers                 *float64 `json:"mixed_users"`
	MixedMediaLossPct          *float64 `json:"mixed_media_loss_pct"`
	// MixedMediaCalls is the peak of concurrent media calls in the mixed
	// run; MixedMediaPct that peak as a share of MixedUsers.
	MixedMediaCalls *float64 `json:"mixed_media_calls"`
	MixedMediaPct   *float64 `json:"mixed_media_pct"`
	// The share of lifecycles that failed in the users and mixed runs: a
	// scale figure counts only when at most 1% failed (maxFailedPct).
	HTTPUsersFailedPct      *float64 `json:"http_users_failed_pct"`
	MixedUsersFailedPct     *float64 `json:"mixed_users_failed_pct"`
	ClientCPUusPerOp        *float64 `json:"client_cpu_us_per_op"`
	K6ClientCPUusPerOp      *float64 `json:"k6_client_cpu_us_per_op"`
	VegetaClientCPUusPerOp  *float64 `json:"vegeta_client_cpu_us_per_op"`
	WrkClientCPUusPerOp     *float64 `json:"wrk_client_cpu_us_per_op"`
	ClientOpsPerS           *float64 `json:"client_ops_per_s"`
	K6OpsPerS               *float64 `json:"k6_ops_per_s"`
	VegetaOpsPerS           *float64 `json:"vegeta_ops_per_s"`
	WrkOpsPerS              *float64 `json:"wrk_ops_per_s"`
	RatioVsK6               *float64 `json:"client_cpu_ratio_vs_k6"`
	RatioVsVegeta           *float64 `json:"client_cpu_ratio_vs_vegeta"`
	OracleOverheadPct       *float64 `json:"oracle_overhead_pct"`
	OracleABCPUPct          *float64 `json:"oracle_ab_cpu_pct"`
	OracleThroughputCostPct *float64 `json:"oracle_throughput_cost_pct"`
	DetectMedianS           *float64 `json:"detect_median_s"`

	Spread      map[string]Spread `json:"spread"`
	Notes       map[string]string `json:"notes"`
	Goals       []Goal            `json:"goals"`
	Floor       []Floor           `json:"floor_runs,omitempty"`
	MediaSteps  []MediaStep       `json:"media_steps,omitempty"`
	Users       []UsersRun        `json:"users_runs,omitempty"`
	Mixed       []UsersRun        `json:"mixed_runs,omitempty"`
	OracleRuns  []OracleRun       `json:"oracle_runs,omitempty"`
	Detection   *Detection        `json:"detection,omitempty"`
	Profiles    []string          `json:"profiles,omitempty"`
	ProfileTop  []string          `json:"profile_top,omitempty"`
	ProfileNote string            `json:"profile_note,omitempty"`
}

func f64(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// sizes are the bounded sizes of each section.
type sizes struct {
	floorReps             int
	floorDur              time.Duration
	cpuReps               int
	cpuDur                time.Duration
	oraclePairs           int
	oracleDur             time.Duration
	vus                   int
	users, mixed          int
	usersRamp, usersThink time.Duration
	mediaSteps            []int
	mediaRamp, mediaCall  time.Duration
	setupBurst, setupReps int
	detectSeeds           int
	detectBound           time.Duration
	detectRate            float64
	installLimit          time.Duration
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{floorReps: 3, floorDur: time.Second, cpuReps: 2, cpuDur: 5 * time.Second, oraclePairs: 4, oracleDur: 3 * time.Second, vus: 200,
			users: 5000, mixed: 3000, usersRamp: 4 * time.Second, usersThink: 3 * time.Second,
			mediaSteps: []int{60, 120}, mediaRamp: 3 * time.Second, mediaCall: 8 * time.Second,
			setupBurst: 50, setupReps: 1, detectSeeds: 5, detectBound: 20 * time.Second, detectRate: 20,
			installLimit: time.Minute}
	}
	return sizes{floorReps: 5, floorDur: 2 * time.Second, cpuReps: 3, cpuDur: 10 * time.Second, oraclePairs: 8, oracleDur: 6 * time.Second, vus: 200,
		// 20,000 users over 90 s, each thinking 40-80 s between steps: all
		// are active at once while the clinic (one core, one SQLite writer)
		// sees about 550 requests/s. It serves about 1,200/s of this mix at
		// most: a 10 s ramp with 6 s thinks (4,000/s) had three lifecycles
		// in four time out at the clinic, 60 s with 20 s thinks two in five.
		// 2.5% more users than the goals: the first arrivals finish before
		// the last arrive (20,000 offered peaked at 19,896 active).
		users: 20500, mixed: 10250, usersRamp: 90 * time.Second, usersThink: 40 * time.Second,
		mediaSteps: []int{50, 100, 150, 200, 250, 300, 400}, mediaRamp: 5 * time.Second, mediaCall: 15 * time.Second,
		setupBurst: 100, setupReps: 3, detectSeeds: 20, detectBound: 30 * time.Second, detectRate: 20,
		installLimit: 15 * time.Minute}
}

// Run runs the suite. It returns the report even when sections failed (their
// figures are null with the reason in Notes); the error is for a suite that
// could not run at all.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if len(cfg.Self) == 0 {
		return nil, errors.New("bench: no telechaos command line (Config.Self)")
	}
	if cfg.OutDir == "" {
		cfg.OutDir = "."
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: out directory: %w", err)
	}
	for _, s := range cfg.Only {
		if !slices.Contains(Sections, s) {
			return nil, fmt.Errorf("bench: unknown section %q (want one of %s)", s, strings.Join(Sections, ", "))
		}
	}
	want := func(s string) bool { return len(cfg.Only) == 0 || slices.Contains(cfg.Only, s) }
	sz := sizesFor(cfg.Quick)
	pin := newPinning()
	rep := &Report{Machine: DescribeMachine(), LoadAvgStart: loadAvg(), Pinning: pin.String(), Quick: cfg.Quick, StartedAt: time.Now().UTC(),
		Spread: map[string]Spread{}, Notes: map[string]string{}}
	s := &suite{cfg: cfg, sz: sz, pin: pin, rep: rep}
	defer func() {
		rep.Seconds = round(time.Since(rep.StartedAt).Seconds(), 1)
		rep.LoadAvgEnd = loadAvg()
	}()

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"floor", s.floor}, {"cpu", s.cpu}, {"oracle", s.oracle}, {"users", s.users},
		{"mixed", s.mixed}, {"media", s.media}, {"setup", s.setup}, {"detect", s.detect},
	}
	for _, st := range steps {
		if !want(st.name) {
			continue
		}
		if ctx.Err() != nil {
			rep.Notes[st.name] = "interrupted before this section"
			continue
		}
		t0 := time.Now()
		s.logf("== %s", st.name)
		if err := st.fn(ctx); err != nil {
			rep.Notes[st.name] = err.Error()
			s.logf("   %s: %v", st.name, err)
		}
		s.logf("   %s done in %.0fs", st.name, time.Since(t0).Seconds())
	}
	s.judge()
	return rep, ctx.Err()
}

type suite struct {
	cfg Config
	sz  sizes
	pin pinning
	rep *Report
}

func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Log, format+"\n", args...)
}

// set records a figure's runs: the headline gets the median.
func (s *suite) set(dst **float64, name string, runs []float64, digits int) {
	sp, ok := spreadOf(runs)
	if !ok {
		return
	}
	for i := range sp.Runs {
		sp.Runs[i] = round(sp.Runs[i], digits)
	}
	sp.Median, sp.Min, sp.Max = round(sp.Median, digits), round(sp.Min, digits), round(sp.Max, digits)
	*dst = f64(sp.Median)
	if len(sp.Runs) > 1 {
		s.rep.Spread[name] = sp
	}
}

func (s *suite) floor(context.Context) error {
	var pps, cons []float64
	for range s.sz.floorReps {
		f, err := LoopbackFloor(s.sz.floorDur)
		if err != nil {
			return err
		}
		s.rep.Floor = append(s.rep.Floor, f)
		pps = append(pps, f.PacketsPerSecond)
		cons = append(cons, f.Consultations)
	}
	s.set(&s.rep.LoopbackFloorPPS, "loopback_floor_pps", pps, 0)
	s.set(&s.rep.LoopbackFloorConsultations, "loopback_floor_consultations", cons, 1)
	s.logf("   floor %.0f packets/s -> %.0f consultations", *s.rep.LoopbackFloorPPS, *s.rep.LoopbackFloorConsultations)
	return nil
}

// withClinic starts a fresh clinic process (pinned to core 1) for fn.
func (s *suite) withClinic(ctx context.Context, name string, fn func(base string) error) error {
	dir, err := os.MkdirTemp("", "telechaos-bench-"+name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	argv := append(append([]string{}, s.cfg.Self...), "bench", "serve-clinic")
	c, err := startClinic(ctx, s.pin, argv, dir)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c.URL)
}

func (s *suite) cpu(ctx context.Context) error {
	tools := map[string]string{}
	for _, t := range []string{"k6", "vegeta", "wrk"} {
		s.logf("   looking for %s", t)
		p, err := ensureTool(ctx, t, s.sz.installLimit, s.cfg.Install)
		if err != nil {
			s.rep.Notes[t+"_client_cpu_us_per_op"] = err.Error()
			continue
		}
		tools[t] = p
	}
	scratch := filepath.Join(s.cfg.OutDir, "tools")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return err
	}
	return s.withClinic(ctx, "cpu", func(base string) error {
		token, err := register(ctx, base)
		if err != nil {
			return err
		}
		cpu := map[string][]float64{}
		ops := map[string][]float64{}
		d := s.sz.cpuDur
		for rep := range s.sz.cpuReps {
			for _, name := range []string{"telechaos", "k6", "vegeta", "wrk"} {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				var r clientRun
				var err error
				switch name {
				case "telechaos":
					r, err = runTelechaos(ctx, s.pin, s.cfg.Self, base, scratch, s.sz.vus, d)
				case "k6":
					if tools["k6"] == "" {
						continue
					}
					r, err = runK6(ctx, s.pin, tools["k6"], base, scratch, s.sz.vus, d)
				case "vegeta":
					if tools["vegeta"] == "" {
						continue
					}
					r, err = runVegeta(ctx, s.pin, tools["vegeta"], base, token, scratch, s.sz.vus, d)
				case "wrk":
					if tools["wrk"] == "" {
						continue
					}
					r, err = runWrk(ctx, s.pin, tools["wrk"], base, token, scratch, s.sz.vus, d)
				}
				if err != nil {
					s.rep.Notes[name+"_run_"+fmt.Sprint(rep+1)] = err.Error()
					s.logf("   %s: %v", name, err)
					continue
				}
				s.logf("   %-9s run %d: %d ops in %.1fs, %.1f us CPU/op, %.0f ops/s", name, rep+1, r.Ops, r.Wall.Seconds(), r.usPerOp(), r.opsPerSec())
				cpu[name] = append(cpu[name], r.usPerOp())
				ops[name] = append(ops[name], r.opsPerSec())
			}
		}
		s.set(&s.rep.ClientCPUusPerOp, "client_cpu_us_per_op", cpu["telechaos"], 1)
		s.set(&s.rep.K6ClientCPUusPerOp, "k6_client_cpu_us_per_op", cpu["k6"], 1)
		s.set(&s.rep.VegetaClientCPUusPerOp, "vegeta_client_cpu_us_per_op", cpu["vegeta"], 1)
		s.set(&s.rep.WrkClientCPUusPerOp, "wrk_client_cpu_us_per_op", cpu["wrk"], 1)
		s.set(&s.rep.ClientOpsPerS, "client_ops_per_s", ops["telechaos"], 0)
		s.set(&s.rep.K6OpsPerS, "k6_ops_per_s", ops["k6"], 0)
		s.set(&s.rep.VegetaOpsPerS, "vegeta_ops_per_s", ops["vegeta"], 0)
		s.set(&s.rep.WrkOpsPerS, "wrk_ops_per_s", ops["wrk"], 0)
		ratio := func(a, b *float64) *float64 {
			if a == nil || b == nil || *b == 0 {
				return nil
			}
			return f64(round(*a / *b, 3))
		}
		s.rep.RatioVsK6 = ratio(s.rep.ClientCPUusPerOp, s.rep.K6ClientCPUusPerOp)
		s.rep.RatioVsVegeta = ratio(s.rep.ClientCPUusPerOp, s.rep.VegetaClientCPUusPerOp)
		s.rep.Notes["client_cpu_us_per_op"] = "telechaos run (media-free full lifecycle: register, book, end, list, replay, probe; oracle and metrics on) as its own process; " +
			"k6: POST /v1/users then GET /v1/replays with the new token; vegeta: the same two requests alternated with a pre-registered token; wrk: GET /v1/replays only. " +
			"CPU = the client process's rusage utime+stime, startup included; same clinic process, " + s.pin.String()
		return nil
	})
}

func (s *suite) oracle(ctx context.Context) error {
	return s.withClinic(ctx, "oracle", func(base string) error {
		if s.pin.taskset != "" {
			// One core, one P: as the pinned client processes run (the
			// runtime sizes GOMAXPROCS from their affinity), and so that the
			// kernel does not time-slice two of our threads on one core in
			// the middle of a timed observer call.
			pinSelf(0)
			procs := runtime.GOMAXPROCS(1)
			defer func() {
				runtime.GOMAXPROCS(procs)
				pinSelf()
			}()
		}
		// A first run warms the clinic and this process (connections, heap,
		// page faults) and is the one profiled; it is not counted, so neither
		// warm-up nor the profiler's signals land on one side of the
		// comparison.
		prof := filepath.Join(s.cfg.OutDir, "api-cpu.pprof")
		pf, err := os.Create(prof)
		if err != nil {
			return err
		}
		w, err := apiRun(ctx, base, s.sz.vus, s.sz.oracleDur, true, pf)
		pf.Close()
		if err != nil {
			return fmt.Errorf("api warm-up run: %w", err)
		}
		s.rep.Profiles = append(s.rep.Profiles, prof)
		s.logf("   warm-up  %d ops, %.0f ops/s, %.1f us CPU/op (profiled, not counted)", w.Ops, w.OpsPerSec, w.CPUusPerOp)
		var thr, cpu, inRun []float64
		for i := range s.sz.oraclePairs {
			var on, off OracleRun
			// Pairs alternate their order (on-off, off-on, ...) so drift on a
			// shared machine does not always favour one side; each pair gives
			// one ratio and the headline is their median.
			for _, checks := range []bool{i%2 == 0, i%2 != 0} {
				r, rerr := apiRun(ctx, base, s.sz.vus, s.sz.oracleDur, checks, nil)
				if rerr != nil {
					return fmt.Errorf("api run (checks %t): %w", checks, rerr)
				}
				s.rep.OracleRuns = append(s.rep.OracleRuns, r)
				s.logf("   checks=%-5t %d ops, %.0f ops/s, %.1f us CPU/op%s", checks, r.Ops, r.OpsPerSec, r.CPUusPerOp, observerLog(r))
				if checks {
					on = r
					inRun = append(inRun, r.ObserverPct)
				} else {
					off = r
				}
			}
			if off.OpsPerSec > 0 && off.CPUusPerOp > 0 {
				thr = append(thr, 100*(1-on.OpsPerSec/off.OpsPerSec))
				cpu = append(cpu, 100*(on.CPUusPerOp/off.CPUusPerOp-1))
			}
		}
		s.set(&s.rep.OracleOverheadPct, "oracle_overhead_pct", inRun, 2)
		s.set(&s.rep.OracleABCPUPct, "oracle_ab_cpu_pct", cpu, 2)
		s.set(&s.rep.OracleThroughputCostPct, "oracle_throughput_cost_pct", thr, 2)
		s.rep.Notes["oracle_overhead_pct"] = fmt.Sprintf("same seed, in-process harness pinned to core 0, clinic process on core 1, %d on/off pairs of %v runs (alternating order, after an uncounted warm-up run). "+
			"Off = the driver's observer only counts; on = the run's observer (per-request metrics, latency samples, the op log that serves repro traces and the oracle's evidence); the oracle's list/replay/probe checks run in both (RunConfig has no switch for them). "+
			"oracle_overhead_pct (judged) = the share of client CPU spent inside that observer, timed in each on run: the on/off difference measured without run-to-run noise. "+
			"oracle_ab_cpu_pct = median over pairs of client CPU per op on / off - 1, and oracle_throughput_cost_pct = 1 - ops/s on / off: both side by side, "+
			"but a closed loop's CPU per op swings by 10-30%% between runs on this shared machine (more wake-ups per op when the clinic is slower), so they bound the cost only loosely. "+
			"go test -bench RunObserve ./harness times the observer alone", s.sz.oraclePairs, s.sz.oracleDur)
		return nil
	})
}

func observerLog(r OracleRun) string {
	if !r.Checks {
		return ""
	}
	return fmt.Sprintf(", observer %.0f ns/op = %.2f%% of CPU", r.ObserverNsOp, r.ObserverPct)
}

func (s *suite) users(ctx context.Context) error {
	return s.withClinic(ctx, "users", func(base string) error {
		u, err := usersRun(ctx, base, s.sz.users, s.sz.usersRamp, s.sz.usersThink)
		s.rep.Users = append(s.rep.Users, u)
		s.logf("   users %d: peak %d active, %.0f B/user, %d ops (%d non-2xx, %d of them probes rightly denied), %d failed, %d violations, %.0fs",
			u.Users, u.PeakActive, u.BytesPerUser, u.Operations, u.OpErrors, u.ProbesDenied, u.CallsFailed, u.Violations, u.Seconds)
		for _, e := range u.FirstErrors {
			s.logf("     error: %s", e)
		}
		if u.PeakActive > 0 {
			s.rep.HTTPUsers = f64(float64(u.PeakActive))
			s.rep.HTTPUsersFailedPct = f64(round(100*float64(u.CallsFailed)/float64(max(u.Users, 1)), 2))
			s.rep.BytesPerHTTPUser = f64(u.BytesPerUser)
		}
		s.rep.Notes["http_users"] = "peak concurrent media-free users (whole lifecycle) against the clinic process on one core; bytes = live-heap growth at the peak / users then"
		if u.CallsFailed*100 > u.Users {
			s.rep.Notes["http_users"] += fmt.Sprintf("; %d of %d lifecycles failed, first: %s", u.CallsFailed, u.Users, strings.Join(u.FirstErrors[:min(1, len(u.FirstErrors))], ""))
		}
		return err
	})
}

func (s *suite) mixed(ctx context.Context) error {
	return s.withClinic(ctx, "mixed", func(base string) error {
		u, err := mixedRun(ctx, base, s.sz.mixed, s.sz.usersRamp, s.sz.usersThink)
		s.rep.Mixed = append(s.rep.Mixed, u)
		s.logf("   mixed %d: peak %d active, media %d calls (peak %d at once of %d media users), loss %.2f%%, %d ops (%d non-2xx, %d of them probes rightly denied), %d failed, %d violations",
			u.Users, u.PeakActive, u.MediaCalls, u.MediaPeak, u.MediaUsers, u.MediaLossPct, u.Operations, u.OpErrors, u.ProbesDenied, u.CallsFailed, u.Violations)
		for _, e := range u.FirstErrors {
			s.logf("     error: %s", e)
		}
		if u.PeakActive > 0 {
			s.rep.MixedUsers = f64(float64(u.PeakActive))
			s.rep.MixedUsersFailedPct = f64(round(100*float64(u.CallsFailed)/float64(max(u.Users, 1)), 2))
			s.rep.MixedMediaLossPct = f64(u.MediaLossPct)
			s.rep.MixedMediaCalls = f64(float64(u.MediaPeak))
			s.rep.MixedMediaPct = f64(round(100*float64(u.MediaPeak)/float64(u.PeakActive), 2))
		}
		s.rep.Notes["mixed_users"] = fmt.Sprintf("98%% media-free users and 2%% (%d) media users against one clinic process; the media users arrive over the same ramp and stay in their calls (%v) until after it; "+
			"mixed_media_calls is the peak of concurrent media calls, mixed_media_pct that peak / mixed_users", u.MediaUsers, mixedCallLen(s.sz.usersRamp))
		if u.CallsFailed*100 > u.Users {
			s.rep.Notes["mixed_users"] += fmt.Sprintf("; %d of %d lifecycles failed, first: %s", u.CallsFailed, u.Users, strings.Join(u.FirstErrors[:min(1, len(u.FirstErrors))], ""))
		}
		return err
	})
}

func (s *suite) media(ctx context.Context) error {
	var best *MediaStep
	var lastProf string
	for _, n := range s.sz.mediaSteps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		prof := filepath.Join(s.cfg.OutDir, fmt.Sprintf("media-%d-cpu.pprof", n))
		pf, err := os.Create(prof)
		if err != nil {
			return err
		}
		st, err := mediaStep(ctx, n, s.sz.mediaRamp, s.sz.mediaCall, pf)
		pf.Close()
		s.rep.Profiles = append(s.rep.Profiles, prof)
		lastProf = prof
		s.rep.MediaSteps = append(s.rep.MediaSteps, st)
		s.logf("   media %d: peak %d active, %d connected, %d failed, loss %.2f%% (record %.2f, live %.2f), switch p95 %.0fms, join p95 %.0fms, ok=%t %s",
			n, st.PeakActive, st.Connected, st.Failed, st.LossPct, st.RecordLossPct, st.LiveLossPct, st.SwitchP95ms, st.JoinP95ms, st.OK, st.Why)
		for _, e := range st.FirstErrors {
			s.logf("     error: %s", e)
		}
		if err != nil {
			return err
		}
		if !st.OK {
			break
		}
		best = &s.rep.MediaSteps[len(s.rep.MediaSteps)-1]
	}
	// One bisection between the last step that held and the first that did
	// not, so a coarse step does not hide most of the capacity.
	if best != nil && len(s.rep.MediaSteps) > 0 && !s.rep.MediaSteps[len(s.rep.MediaSteps)-1].OK && ctx.Err() == nil {
		hi := s.rep.MediaSteps[len(s.rep.MediaSteps)-1].Consultations
		if mid := (best.Consultations + hi) / 2; mid-best.Consultations >= 10 {
			st, err := mediaStep(ctx, mid, s.sz.mediaRamp, s.sz.mediaCall, nil)
			s.rep.MediaSteps = append(s.rep.MediaSteps, st)
			s.logf("   media %d (bisect): peak %d active, loss %.2f%%, switch p95 %.0fms, ok=%t %s", mid, st.PeakActive, st.LossPct, st.SwitchP95ms, st.OK, st.Why)
			if err == nil && st.OK {
				best = &s.rep.MediaSteps[len(s.rep.MediaSteps)-1]
			}
		}
	}
	s.profileTop(lastProf)
	if best == nil {
		s.rep.Notes["media_consultations"] = "no step met loss < 1% and switch p95 < 300 ms with every call active at once"
		return nil
	}
	s.rep.MediaConsultations = f64(float64(best.PeakActive))
	s.rep.MediaLossPct = f64(best.LossPct)
	s.rep.SwitchP95ms = f64(best.SwitchP95ms)
	if s.rep.LoopbackFloorConsultations != nil && *s.rep.LoopbackFloorConsultations > 0 {
		s.rep.MediaVsFloorPct = f64(round(100*float64(best.PeakActive) / *s.rep.LoopbackFloorConsultations, 1))
	}
	s.rep.Notes["media_consultations"] = "one upward search (each step costs a minute or more): the highest step whose calls were all active at once with loss < 1% and switch p95 < 300 ms; " +
		"loss is the worse of recorded (1 - acked/sent) and live (1 - received/sent); clinic embedded, both cores"
	return nil
}

// profileTop summarises a CPU profile with `go tool pprof -top`, when Go is
// installed.
func (s *suite) profileTop(prof string) {
	if prof == "" {
		return
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		s.rep.ProfileNote = "go not in PATH: run `go tool pprof -top " + prof + "`"
		return
	}
	out, err := exec.Command(goBin, "tool", "pprof", "-top", "-nodecount=25", prof).CombinedOutput()
	if err != nil {
		s.rep.ProfileNote = fmt.Sprintf("pprof: %v: %s", err, lastLine(out))
		return
	}
	s.rep.ProfileNote = "top of " + prof
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		s.rep.ProfileTop = append(s.rep.ProfileTop, strings.TrimRight(l, " "))
	}
}

func (s *suite) setup(ctx context.Context) error {
	var runs []float64
	for range s.sz.setupReps {
		r, err := setupRate(ctx, s.sz.setupBurst)
		if err != nil {
			return err
		}
		s.logf("   setup burst of %d: %.0f calls/s", s.sz.setupBurst, r)
		runs = append(runs, r)
	}
	s.set(&s.rep.SetupCallsPerS, "setup_calls_per_s", runs, 1)
	s.rep.Notes["setup_calls_per_s"] = fmt.Sprintf("%d calls started at once (register, book, two joins, ICE+DTLS+SRTP), calls connected / time to the last connect; clinic embedded", s.sz.setupBurst)
	return nil
}

func (s *suite) detect(ctx context.Context) error {
	d := &Detection{BoundS: s.sz.detectBound.Seconds(), Rate: s.sz.detectRate, BugSpec: "switch-reuse:0.01"}
	s.rep.Detection = d
	for i := range s.sz.detectSeeds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		seed := uint64(1000 + i)
		sec, sw, err := detectOnce(ctx, seed, s.sz.detectRate, s.sz.detectBound, d.BugSpec)
		if err != nil && !math.IsInf(sec, 1) {
			err = nil // found; a cut run reports an error we do not need
		}
		if err != nil {
			s.logf("   seed %d: %v", seed, err)
		}
		d.Seeds = append(d.Seeds, seed)
		d.Switches = append(d.Switches, sw)
		if !math.IsInf(sec, 1) {
			d.Found++
			d.Seconds = append(d.Seconds, round(sec, 2))
		} else {
			d.Seconds = append(d.Seconds, -1)
		}
		s.logf("   seed %d: first violation at %.2fs after %d switches", seed, sec, sw)
	}
	// Not found counts as longer than any found time: the median is only
	// defined if more than half were found.
	v := make([]float64, 0, len(d.Seconds))
	for _, x := range d.Seconds {
		if x < 0 {
			x = math.Inf(1)
		}
		v = append(v, x)
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	s.rep.DetectMedianS = f64(round(med, 2))
	if found := slices.DeleteFunc(slices.Clone(v), func(x float64) bool { return math.IsInf(x, 1) }); len(found) > 1 {
		s.rep.Spread["detect_median_s"] = Spread{Median: round(med, 2), Min: found[0], Max: found[len(found)-1], Runs: d.Seconds}
	}
	s.rep.Notes["detect_median_s"] = fmt.Sprintf("switch-reuse:0.01, %d seeds, %g calls/s arriving, every call switches, -1 = not found within %v; embedded clinic",
		len(d.Seeds), d.Rate, s.sz.detectBound)
	if s.rep.DetectMedianS == nil {
		s.rep.Notes["detect_median_s"] += "; median undefined: half or more seeds not found"
	}
	return nil
}

// WriteJSON writes the report.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
