package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/clinic"
	"github.com/telechaos/telechaos/reports"
)

// The sharding tests run real shard processes: the test binary re-executes
// itself as the telechaos CLI (envCLI), against one clinic started in the
// test, and merge their reports with `report merge`.

const envCLI = "TELECHAOS_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envCLI) == "1" {
		os.Exit(runMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cliProc is one telechaos process started by a test.
type cliProc struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func startCLI(t *testing.T, args ...string) *cliProc {
	t.Helper()
	p := &cliProc{cmd: exec.Command(os.Args[0], args...)}
	p.cmd.Env = append(os.Environ(), envCLI+"=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start telechaos %v: %v", args, err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// wait returns the exit code, killing the process after limit.
func (p *cliProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-done
		t.Errorf("telechaos %v still running after %v:\n%s", p.cmd.Args[1:], limit, tail(p.out.Bytes()))
	}
	return p.cmd.ProcessState.ExitCode()
}

func startClinic(t *testing.T, bugs ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := clinic.Start(ctx, clinic.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), AdvertisedIP: "127.0.0.1",
		Bugs: bugs, Seed: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatalf("start clinic: %v", err)
	}
	t.Cleanup(func() { srv.Close(); cancel() })
	return srv.URL()
}

// shardScenario is small enough for seconds on a loaded machine: 16
// patients, 2 clinicians (with 2 shards, each shard's clinician gets 8
// patients, so list-scope can show in either shard).
func shardScenario(t *testing.T, dir, target, extra string) string {
	t.Helper()
	y := fmt.Sprintf(`name: shard-check
target: %s
seed: 7
media: true
population: {patients: 16, clinicians: 2}
executor: {type: constant-arrival-rate, rate: 8, max_in_flight: 40}
duration: 20s
settle: 5s
behaviour: {switch_to_video: 0.6, replay: 1, abandon: 0, probe_other: 0.3, call_min: 1s, call_max: 2s, switch_min: 0.3, switch_max: 0.6, think_min: 0s, think_max: 100ms}
thresholds:
  - {metric: latency.book, stat: p95, max: 5s}
  - {metric: error_rate, max: "0.05"}
%s`, target, extra)
	p := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runShards runs n shard processes of one run side by side and merges them.
func runShards(t *testing.T, scenario, report, runID string, n int, extra func(i int) []string) (*reports.Summary, int, time.Duration) {
	t.Helper()
	start := time.Now()
	procs := make([]*cliProc, n)
	for i := range n {
		args := []string{"run", "--scenario", scenario, "--shard", fmt.Sprintf("%d/%d", i, n), "--run-id", runID, "--report", report}
		if extra != nil {
			args = append(args, extra(i)...)
		}
		procs[i] = startCLI(t, args...)
	}
	var dirs []string
	for i, p := range procs {
		code := p.wait(t, 120*time.Second)
		t.Logf("shard %d/%d exit %d", i, n, code)
		if code != 0 && code != 1 && code != 4 {
			t.Errorf("shard %d/%d: exit %d:\n%s", i, n, code, tail(p.out.Bytes()))
		}
		dirs = append(dirs, filepath.Join(report, runID, fmt.Sprintf("shard-%d", i)))
	}
	wall := time.Since(start)
	out := filepath.Join(report, runID, "merged")
	var stdout, stderr bytes.Buffer
	code := runMain(context.Background(), append(append([]string{"report", "merge"}, dirs...), "--out", out), &stdout, &stderr)
	m, err := reports.ReadSummary(filepath.Join(out, reports.SummaryFile))
	if err != nil {
		t.Fatalf("merged summary: %v (merge exit %d: %s)", err, code, stderr.String())
	}
	t.Logf("merged %d shards in %v:%s", n, wall.Round(100*time.Millisecond), stdout.String())
	return m, code, wall
}

func TestShardedRunMatchesUnsharded(t *testing.T) {
	if testing.Short() {
		t.Skip("short: media runs in subprocesses")
	}
	dir := t.TempDir()
	sc := shardScenario(t, dir, startClinic(t), "expect: pass\n")
	report := filepath.Join(dir, "report")

	start := time.Now()
	p := startCLI(t, "run", "--scenario", sc, "--run-id", "whole", "--report", filepath.Join(report, "whole"))
	wholeCode := p.wait(t, 120*time.Second)
	wholeWall := time.Since(start)
	whole, err := reports.ReadSummary(filepath.Join(report, "whole", reports.SummaryFile))
	if err != nil {
		t.Fatalf("unsharded summary: %v\n%s", err, tail(p.out.Bytes()))
	}
	merged, mergedCode, wall := runShards(t, sc, report, "sharded", 2, nil)
	t.Logf("unsharded: exit %d in %v; sharded: exit %d in %v", wholeCode, wholeWall.Round(100*time.Millisecond), mergedCode, wall.Round(100*time.Millisecond))

	if mergedCode != wholeCode || merged.Verdict != whole.Verdict {
		t.Errorf("merged verdict %s (exit %d), unsharded %s (exit %d)", merged.Verdict, mergedCode, whole.Verdict, wholeCode)
	}
	if whole.Verdict != reports.VerdictPass {
		t.Errorf("the correct clinic should pass: %s %s", whole.Verdict, whole.Error)
	}
	w, m := whole.Counts, merged.Counts
	// Plan-decided counts: the same users draw the same plans. Which recording
	// a probe picks, latencies, frame counts and the interleaving depend on
	// timing; whether a probe found a recording at all does too (probes +
	// skipped does not).
	for _, c := range []struct {
		name string
		w, m int
	}{
		{"patients", w.Patients, m.Patients},
		{"consultations", w.Consultations, m.Consultations},
		{"calls connected", w.CallsConnected, m.CallsConnected},
		{"calls ended", w.CallsEnded, m.CallsEnded},
		{"calls abandoned", w.CallsAbandoned, m.CallsAbandoned},
		{"switches", w.Switches, m.Switches},
		{"replays fetched", w.ReplaysFetched, m.ReplaysFetched},
		{"probes drawn", w.Probes + w.ProbesSkipped, m.Probes + m.ProbesSkipped},
		// 16 patients, 2 clinicians, 2 shards: shard I uses only slot I.
		{"clinicians", w.Clinicians, m.Clinicians},
	} {
		if c.w != c.m {
			t.Errorf("%s: unsharded %d, merged shards %d", c.name, c.w, c.m)
		}
	}
	if w.Patients != 16 {
		t.Errorf("unsharded run had %d patients, want 16", w.Patients)
	}
	if len(merged.Thresholds) != len(whole.Thresholds) {
		t.Errorf("merged has %d thresholds, unsharded %d", len(merged.Thresholds), len(whole.Thresholds))
	}
	for i := range min(len(merged.Thresholds), len(whole.Thresholds)) {
		if a, b := merged.Thresholds[i], whole.Thresholds[i]; a.Pass != b.Pass {
			t.Errorf("threshold %s %s: merged pass=%v (%g), unsharded pass=%v (%g)", a.Metric, a.Stat, a.Pass, a.Value, b.Pass, b.Value)
		}
	}
	t.Logf("counts unsharded/merged: patients %d/%d consultations %d/%d switches %d/%d calls %d/%d replays %d/%d probes %d/%d frames checked %d/%d",
		w.Patients, m.Patients, w.Consultations, m.Consultations, w.Switches, m.Switches, w.CallsEnded, m.CallsEnded,
		w.ReplaysFetched, m.ReplaysFetched, w.Probes, m.Probes, w.FramesChecked, m.FramesChecked)
}

// A violation found by one shard fails the merged verdict, and the same run's
// verdict computed from Prometheus (scraped shards + Pushgateway) agrees.
func TestShardedViolationFailsMergedVerdict(t *testing.T) {
	if testing.Short() {
		t.Skip("short: media runs in subprocesses")
	}
	dir := t.TempDir()
	sc := shardScenario(t, dir, startClinic(t, "list-scope:1"), "invariants: [replay-list-ownership]\nexpect: replay-list-ownership\n")
	report := filepath.Join(dir, "report")

	// Prometheus, when installed: scrape both shards' --metrics-addr at 1 s and
	// the Pushgateway they push their final metrics to.
	_, errP := exec.LookPath("prometheus")
	_, errG := exec.LookPath("prometheus-pushgateway")
	havePrometheus := errP == nil && errG == nil
	var promURL, pgURL string
	var metricsAddrs []string
	if havePrometheus {
		promURL, pgURL, metricsAddrs = startShardPrometheus(t, 2)
	}
	extra := func(i int) []string {
		if !havePrometheus {
			return nil
		}
		return []string{"--metrics-addr", metricsAddrs[i], "--push", pgURL}
	}
	m, code, wall := runShards(t, sc, report, "listscope", 2, extra)
	if code != 1 || m.Verdict != reports.VerdictViolation {
		t.Errorf("merged verdict %s (exit %d), want violation (exit 1)", m.Verdict, code)
	}
	if m.ViolationsByInvariant["replay-list-ownership"] == 0 {
		t.Errorf("merged summary has no replay-list-ownership violation: %v", m.ViolationsByInvariant)
	}
	shards := map[string]int{}
	for _, v := range m.Violations {
		if v.Shard == "" {
			t.Errorf("violation without its shard: %+v", v)
		}
		shards[v.Shard]++
	}
	t.Logf("list-scope: %d violations by shard %v in %v", len(m.Violations), shards, wall.Round(100*time.Millisecond))

	t.Run("from-prometheus", func(t *testing.T) {
		if !havePrometheus {
			obsBinary(t, "prometheus") // skips outside CI, fails under CI=true
			obsBinary(t, "prometheus-pushgateway")
		}
		var out, errb bytes.Buffer
		var pcode int
		// The Pushgateway's groups reach Prometheus at its next scrape (1 s).
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Second) {
			out.Reset()
			errb.Reset()
			pcode = runMain(context.Background(), []string{"report", "verdict", "--from-prometheus", promURL,
				"--run-id", "listscope", "--scenario", sc, "--shards", "2"}, &out, &errb)
			if pcode == 1 && invariantRow(out.String(), "replay-list-ownership", m.ViolationsByInvariant["replay-list-ownership"]) || time.Now().After(deadline) {
				break
			}
		}
		t.Logf("report verdict --from-prometheus: exit %d\n%s%s", pcode, out.String(), errb.String())
		if pcode != 1 {
			t.Errorf("prometheus verdict exit %d, want 1 (violation)", pcode)
		}
		if n := m.ViolationsByInvariant["replay-list-ownership"]; !invariantRow(out.String(), "replay-list-ownership", n) {
			t.Errorf("prometheus verdict does not sum the shards' violations as the merged report does (replay-list-ownership %d)", n)
		}
		if !strings.Contains(out.String(), "latency.book p95") || strings.Contains(out.String(), "FAILED") {
			t.Errorf("thresholds from the histograms missing or failed")
		}
		// The scraped series carry run_id and shard (not only the pushed ones).
		v, ok, err := promQuery(promURL, `count(count by (shard) (last_over_time(telechaos_operations_total{job="shards",run_id="listscope"}[1h])))`)
		if err != nil || !ok || v != 2 {
			t.Errorf("scraped shards with run_id and shard labels: %g (ok %v, err %v), want 2", v, ok, err)
		}
	})
}

// startShardPrometheus starts a Pushgateway and a Prometheus scraping it and n
// shard metrics addresses every second.
func startShardPrometheus(t *testing.T, n int) (promURL, pgURL string, addrs []string) {
	t.Helper()
	pgAddr, promAddr := freeAddr(t), freeAddr(t)
	pgURL, promURL = "http://"+pgAddr, "http://"+promAddr
	for range n {
		addrs = append(addrs, freeAddr(t))
	}
	startDaemon(t, "prometheus-pushgateway", pgURL+"/-/ready", "--web.listen-address="+pgAddr)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: shards
    static_configs: [{targets: ["%s"]}]
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{targets: [%q]}]
`, strings.Join(addrs, `", "`), pgAddr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "prometheus", promURL+"/-/ready", "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	eventually(t, promURL, `up{job="pushgateway"}`, func(v float64) bool { return v == 1 }, "Prometheus scraping")
	return promURL, pgURL, addrs
}

// invariantRow reports whether a verdict block has inv's row with n
// violations (the judgement column may follow).
func invariantRow(out, inv string, n int) bool {
	return regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(inv) + ` +` + strconv.Itoa(n) + `( |$)`).MatchString(out)
}
