package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Comparison tools and the versions the suite installs.
const (
	k6Module     = "go.k6.io/k6@v1.8.1"
	vegetaModule = "github.com/tsenart/vegeta/v12@v12.13.0"
)

// ErrTool: a comparison tool is missing and could not be installed.
var ErrTool = errors.New("comparison tool unavailable")

// findTool looks for a binary in PATH, then in GOBIN / GOPATH/bin.
func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

func goBinDirs() []string {
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
			dirs = append(dirs, strings.TrimSpace(lines[0]))
		}
		if len(lines) > 1 {
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "go", "bin"))
	}
	return dirs
}

// ensureTool finds name or installs it (go install for Go modules, apt-get
// for wrk), bounded by limit. The error says why it is unavailable.
func ensureTool(ctx context.Context, name string, limit time.Duration, install bool) (string, error) {
	if p := findTool(name); p != "" {
		return p, nil
	}
	if !install {
		return "", fmt.Errorf("%w: %s not installed (run make bench-tools)", ErrTool, name)
	}
	ictx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var cmd *exec.Cmd
	switch name {
	case "k6":
		cmd = exec.CommandContext(ictx, "go", "install", k6Module)
	case "vegeta":
		cmd = exec.CommandContext(ictx, "go", "install", vegetaModule)
	case "wrk":
		cmd = exec.CommandContext(ictx, "apt-get", "-o", "DPkg::Lock::Timeout=120", "install", "-y", "wrk")
	default:
		return "", fmt.Errorf("%w: unknown tool %s", ErrTool, name)
	}
	// -buildvcs or other project GOFLAGS must not leak into a tool's build.
	cmd.Env = append(os.Environ(), "GOFLAGS=", "DEBIAN_FRONTEND=noninteractive")
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ictx.Err() != nil {
			return "", fmt.Errorf("%w: installing %s did not finish within %v (run make bench-tools first)", ErrTool, name, limit)
		}
		return "", fmt.Errorf("%w: install %s: %v: %s", ErrTool, name, err, lastLine(out))
	}
	if p := findTool(name); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s installed but not found in PATH or GOPATH/bin", ErrTool, name)
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// clientRun is one load client's run against the clinic.
type clientRun struct {
	Ops       int64
	CPU, Wall time.Duration
}

func (c clientRun) usPerOp() float64 {
	if c.Ops <= 0 {
		return 0
	}
	return float64(c.CPU.Microseconds()) / float64(c.Ops)
}

func (c clientRun) opsPerSec() float64 {
	if c.Wall <= 0 {
		return 0
	}
	return float64(c.Ops) / c.Wall.Seconds()
}

// register makes a patient on the clinic and returns its token.
func register(ctx context.Context, base string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/users", strings.NewReader(`{"role":"patient"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var u struct{ Token string }
	if err := json.Unmarshal(b, &u); err != nil || u.Token == "" {
		return "", fmt.Errorf("register: status %d, body %q", resp.StatusCode, b)
	}
	return u.Token, nil
}

const k6Script = `import http from 'k6/http';
const base = __ENV.BASE;
const params = { headers: { 'Content-Type': 'application/json' } };
export default function () {
  const r = http.post(base + '/v1/users', '{"role":"patient"}', params);
  const tok = r.json('token');
  http.get(base + '/v1/replays', { headers: { Authorization: 'Bearer ' + tok } });
}
`

var k6Reqs = regexp.MustCompile(`http_reqs[.:\s]+(\d+)`)

// runK6 runs k6 with vus VUs for d: POST /v1/users then GET /v1/replays with
// the new token, in a loop.
func runK6(ctx context.Context, pin pinning, bin, base, dir string, vus int, d time.Duration) (clientRun, error) {
	script := filepath.Join(dir, "k6.js")
	if err := os.WriteFile(script, []byte(k6Script), 0o644); err != nil {
		return clientRun{}, err
	}
	sum := filepath.Join(dir, "k6-summary.json")
	os.Remove(sum)
	cpu, wall, out, err := runChild(ctx, pin, d+60*time.Second, dir, bin, "run", "--quiet", "--no-usage-report",
		"--vus", strconv.Itoa(vus), "--duration", d.String(), "--summary-export", sum, "-e", "BASE="+base, script)
	if err != nil {
		return clientRun{}, fmt.Errorf("k6: %w: %s", err, lastLine(out))
	}
	var s struct {
		Metrics map[string]struct {
			Count float64 `json:"count"`
		} `json:"metrics"`
	}
	ops := int64(0)
	if b, err := os.ReadFile(sum); err == nil && json.Unmarshal(b, &s) == nil {
		ops = int64(s.Metrics["http_reqs"].Count)
	}
	if ops == 0 {
		if m := k6Reqs.FindSubmatch(out); m != nil {
			ops, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
	}
	if ops == 0 {
		return clientRun{}, fmt.Errorf("k6: no request count in its summary: %s", lastLine(out))
	}
	return clientRun{Ops: ops, CPU: cpu, Wall: wall}, nil
}

// runVegeta attacks at the highest rate workers allow, alternating POST
// /v1/users and GET /v1/replays with a pre-registered token (vegeta cannot
// chain a response into the next request).
func runVegeta(ctx context.Context, pin pinning, bin, base, token, dir string, workers int, d time.Duration) (clientRun, error) {
	body := filepath.Join(dir, "vegeta-body.json")
	if err := os.WriteFile(body, []byte(`{"role":"patient"}`), 0o644); err != nil {
		return clientRun{}, err
	}
	targets := fmt.Sprintf("POST %s/v1/users\nContent-Type: application/json\n@%s\n\nGET %s/v1/replays\nAuthorization: Bearer %s\n\n", base, body, base, token)
	tf := filepath.Join(dir, "vegeta-targets.txt")
	if err := os.WriteFile(tf, []byte(targets), 0o644); err != nil {
		return clientRun{}, err
	}
	res := filepath.Join(dir, "vegeta.bin")
	w := strconv.Itoa(workers)
	cpu, wall, out, err := runChild(ctx, pin, d+60*time.Second, dir, bin, "attack", "-format=http", "-targets="+tf,
		"-rate=0", "-workers="+w, "-max-workers="+w, "-duration="+d.String(), "-output="+res)
	if err != nil {
		return clientRun{}, fmt.Errorf("vegeta attack: %w: %s", err, lastLine(out))
	}
	rep, err := exec.CommandContext(ctx, bin, "report", "-type=json", res).Output()
	if err != nil {
		return clientRun{}, fmt.Errorf("vegeta report: %w", err)
	}
	var r struct {
		Requests int64 `json:"requests"`
	}
	if err := json.Unmarshal(rep, &r); err != nil || r.Requests == 0 {
		return clientRun{}, fmt.Errorf("vegeta report: no request count in %q", lastLine(rep))
	}
	return clientRun{Ops: r.Requests, CPU: cpu, Wall: wall}, nil
}

var wrkReqs = regexp.MustCompile(`(\d+) requests in`)

// runWrk runs wrk (one thread, conns connections) on GET /v1/replays with a
// pre-registered token (wrk has no request chaining without Lua state).
func runWrk(ctx context.Context, pin pinning, bin, base, token, dir string, conns int, d time.Duration) (clientRun, error) {
	secs := max(int(d.Seconds()), 1)
	cpu, wall, out, err := runChild(ctx, pin, d+60*time.Second, dir, bin, "-t1", "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(secs)+"s", "-H", "Authorization: Bearer "+token, base+"/v1/replays")
	if err != nil {
		return clientRun{}, fmt.Errorf("wrk: %w: %s", err, lastLine(out))
	}
	m := wrkReqs.FindSubmatch(out)
	if m == nil {
		return clientRun{}, fmt.Errorf("wrk: no request count in %q", lastLine(out))
	}
	ops, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return clientRun{Ops: ops, CPU: cpu, Wall: wall}, nil
}

// apiScenario is the media-free closed loop telechaos runs for the CPU
// comparison: every patient's full lifecycle (register, book, end, list,
// replay, probe) with no think time, vus at once, for d. Many clinicians,
// so that no clinician's replay list grows long within the run (a long list
// would make telechaos decode far more than the tools' empty lists).
func apiScenario(vus, patients int, d time.Duration) string {
	return fmt.Sprintf(`name: bench-api
description: media-free closed loop for client CPU per operation
seed: 1
media: false
population: {patients: %d, clinicians: 500}
executor: {type: closed, vus: %d}
duration: %s
settle: 2s
behaviour: {switch_to_video: 0, replay: 1, abandon: 0, probe_other: 1, call_min: 10ms, call_max: 10ms, think_min: 0s, think_max: 0s}
`, patients, vus, d)
}

// runTelechaos runs `telechaos run` as a pinned child on the API scenario and
// counts its operations from summary.json.
func runTelechaos(ctx context.Context, pin pinning, argv []string, base, dir string, vus int, d time.Duration) (clientRun, error) {
	sc := filepath.Join(dir, "bench-api.yaml")
	if err := os.WriteFile(sc, []byte(apiScenario(vus, 1_000_000, d)), 0o644); err != nil {
		return clientRun{}, err
	}
	rep := filepath.Join(dir, "telechaos-report")
	os.RemoveAll(rep)
	args := append(append([]string{}, argv...), "run", "--scenario", sc, "--target", base, "--report", rep)
	cpu, wall, out, err := runChild(ctx, pin, d+90*time.Second, dir, args...)
	b, rerr := os.ReadFile(filepath.Join(rep, "summary.json"))
	if rerr != nil {
		if err == nil {
			err = rerr
		}
		return clientRun{}, fmt.Errorf("telechaos run: %w: %s", err, lastLine(out))
	}
	var s struct {
		Verdict string `json:"verdict"`
		Counts  struct {
			Operations int64 `json:"operations"`
			Errors     int64 `json:"operation_errors"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Counts.Operations == 0 {
		return clientRun{}, fmt.Errorf("telechaos run: no operations in summary (%v): %s", err, lastLine(out))
	}
	if !bytes.Contains(b, []byte(`"verdict": "pass"`)) && s.Verdict != "pass" {
		return clientRun{}, fmt.Errorf("telechaos run: verdict %q against the correct clinic: %s", s.Verdict, lastLine(out))
	}
	return clientRun{Ops: s.Counts.Operations, CPU: cpu, Wall: wall}, nil
}
