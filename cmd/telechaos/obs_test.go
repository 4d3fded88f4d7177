package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/dashboards"
	"github.com/telechaos/telechaos/reports"
)

// The observability end-to-end test runs Debian's real prometheus and
// prometheus-pushgateway on loopback (scripts/install-prom.sh installs them;
// `make test-deps` does under CI=true), has Prometheus scrape a live run's
// --metrics-addr every second and the run --push its final metrics, and checks
// through both HTTP APIs that the series arrived with the run's values.

// obsBinary finds a tool, or skips outside CI and fails under CI=true.
func obsBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed under CI=true: run scripts/install-prom.sh (make test-deps)", name)
	}
	t.Skipf("%s not installed: skipped outside CI (install with scripts/install-prom.sh, or apt-get install -y prometheus prometheus-pushgateway)", name)
	return ""
}

// freeAddr returns a loopback address free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDaemon starts a long-running tool, logs to a file, and stops it when
// the test ends; it waits until url answers 200.
func startDaemon(t *testing.T, name, readyURL string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not exit", name)
		}
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s exited at start:\n%s", name, tail(b))
		default:
		}
		if resp, err := http.Get(readyURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(logf.Name())
	t.Fatalf("%s not ready at %s after 30s:\n%s", name, readyURL, tail(b))
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func getJSON(url string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// promQuery returns the first sample value of an instant query (ok false when
// the result is empty).
func promQuery(base, q string) (float64, bool, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(base+"/api/v1/query?query="+url.QueryEscape(q), &r); err != nil {
		return 0, false, err
	}
	if r.Status != "success" || len(r.Data.Result) == 0 {
		return 0, false, nil
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil, err
}

// eventually polls q until want(v) holds or 20 s pass.
func eventually(t *testing.T, base, q string, want func(float64) bool, what string) float64 {
	t.Helper()
	var last float64
	var lastErr error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		v, ok, err := promQuery(base, q)
		lastErr = err
		if ok {
			last = v
			if want(v) {
				return v
			}
		}
	}
	t.Errorf("%s: %s = %g after 20s (last error %v)", what, q, last, lastErr)
	return last
}

func TestPrometheusAndPushgatewayEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("short: no external daemons")
	}
	obsBinary(t, "prometheus")
	obsBinary(t, "prometheus-pushgateway")

	pgAddr, promAddr, liveAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	pgURL, promURL := "http://"+pgAddr, "http://"+promAddr
	startDaemon(t, "prometheus-pushgateway", pgURL+"/-/ready", "--web.listen-address="+pgAddr)

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: live
    static_configs: [{targets: [%q]}]
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{targets: [%q]}]
`, liveAddr, pgAddr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "prometheus", promURL+"/-/ready", "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)

	// Prometheus throttles target discovery (5 s): wait for its first scrape
	// before starting the run, which lasts only seconds.
	eventually(t, promURL, `up{job="pushgateway"}`, func(v float64) bool { return v == 1 }, "Prometheus scraping")
	if t.Failed() {
		return
	}

	// A small media-free run, long enough for a few scrapes.
	report := filepath.Join(dir, "report")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := runMain(ctx, []string{"run", "--scenario", "smoke", "--media=false", "--users", "50",
		"--duration", "6s", "--set", "settle=2s", "--seed", "3",
		"--metrics-addr", liveAddr, "--push", pgURL, "--report", report}, &out, &errb)
	if code != 0 {
		t.Fatalf("run exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "metrics pushed to") {
		t.Errorf("no push confirmation on stderr:\n%s", errb.String())
	}
	s, err := reports.ReadSummary(filepath.Join(report, reports.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	ops := float64(s.Counts.Operations)
	if ops == 0 {
		t.Fatal("the run made no requests")
	}
	t.Logf("run %s: %d requests, %d patients, %.1fs", s.RunID, s.Counts.Operations, s.Counts.Patients, s.DurationSeconds)

	// Pushgateway: the group run_id/scenario under job telechaos holds the
	// final counts.
	var pg struct {
		Status string                       `json:"status"`
		Data   []map[string]json.RawMessage `json:"data"`
	}
	if err := getJSON(pgURL+"/api/v1/metrics", &pg); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range pg.Data {
		var labels map[string]string
		json.Unmarshal(g["labels"], &labels)
		if labels["job"] != "telechaos" || labels["run_id"] != s.RunID || labels["scenario"] != "smoke" {
			continue
		}
		found = true
		var fam struct {
			Type    string `json:"type"`
			Metrics []struct {
				Labels map[string]string `json:"labels"`
				Value  string            `json:"value"`
			} `json:"metrics"`
		}
		if err := json.Unmarshal(g["telechaos_operations_total"], &fam); err != nil {
			t.Fatalf("pushed telechaos_operations_total: %v", err)
		}
		sum := 0.0
		for _, m := range fam.Metrics {
			v, _ := strconv.ParseFloat(m.Value, 64)
			sum += v
		}
		if fam.Type != "COUNTER" || sum != ops {
			t.Errorf("pushgateway: telechaos_operations_total %s sums to %g, want %g", fam.Type, sum, ops)
		}
	}
	if !found {
		t.Errorf("pushgateway has no group job=telechaos run_id=%s scenario=smoke", s.RunID)
	}

	// Prometheus, through the Pushgateway: exact final values.
	sel := fmt.Sprintf(`{job="telechaos",run_id=%q,scenario="smoke"}`, s.RunID)
	eventually(t, promURL, "sum(telechaos_operations_total"+sel+")", func(v float64) bool { return v == ops },
		"pushed requests in Prometheus")
	eventually(t, promURL, fmt.Sprintf(`sum(telechaos_operations_total%s) - sum(telechaos_operations_total{job="telechaos",run_id=%q,outcome="ok"})`, sel, s.RunID),
		func(v float64) bool { return v == float64(s.Counts.OperationErrors) }, "pushed request errors in Prometheus")

	// Prometheus, scraping the live run: the target was up, the series came
	// in while it ran and never exceeded the final count.
	eventually(t, promURL, `max_over_time(up{job="live"}[5m])`, func(v float64) bool { return v == 1 }, "live target up")
	live := eventually(t, promURL, `max_over_time(sum(telechaos_operations_total{job="live"})[5m:1s])`,
		func(v float64) bool { return v > 0 && v <= ops }, "live requests scraped")
	eventually(t, promURL, `count(count_over_time(telechaos_violations_total{job="live"}[5m]))`, func(v float64) bool { return v == 5 },
		"violation series per invariant")
	eventually(t, promURL, `sum(max_over_time(telechaos_operation_duration_seconds_count{job="live",op="book"}[5m]))`,
		func(v float64) bool { return v > 0 }, "latency histogram scraped")
	t.Logf("live scrape saw up to %g of %g requests", live, ops)

	// The Grafana dashboard's queries parse and evaluate on this Prometheus.
	for where, q := range dashboards.PromQL() {
		var r struct {
			Status string `json:"status"`
		}
		if err := getJSON(promURL+"/api/v1/query?query="+url.QueryEscape(q), &r); err != nil || r.Status != "success" {
			t.Errorf("dashboard %s: %q: %v %s", where, q, err, r.Status)
		}
	}
	if t.Failed() {
		var targets any
		getJSON(promURL+"/api/v1/targets", &targets)
		t.Logf("targets: %v", targets)
	}
}
