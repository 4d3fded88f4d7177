package netnstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v2"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// requireRoot skips without root, the ip tool or Linux, unless CI=true,
// where they are part of the machine and their absence fails the test.
func requireRoot(t *testing.T) {
	t.Helper()
	why := ""
	switch {
	case runtime.GOOS != "linux":
		why = "network namespaces need Linux"
	case os.Geteuid() != 0:
		why = "network namespaces need root"
	default:
		for _, tool := range []string{"ip", "nft"} {
			if _, err := exec.LookPath(tool); err != nil {
				why = tool + " not found: " + err.Error()
			}
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (required when CI=true)", why)
	}
	t.Skipf("skipping: %s (set CI=true to make this a failure)", why)
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// link is a network namespace holding the clinic, joined to the host by a
// veth pair with addresses the test assigns: host side .1 (the harness)
// and .3 (the TURN relay), namespace side .2 (the clinic).
type link struct {
	ns, vethHost  string
	host, clinic  string
	relay, prefix string
}

// newLink makes the namespace and the veth pair in a /24 that no route of
// the machine uses yet; t.Cleanup deletes both (deleting the namespace
// deletes its end of the pair, and with it the host end).
func newLink(t *testing.T) *link {
	t.Helper()
	id := os.Getpid() % 10000
	l := &link{ns: fmt.Sprintf("tcns%d", id), vethHost: fmt.Sprintf("tcv%dh", id)}
	for n := 10 + id%200; ; n++ {
		if n > 250 {
			t.Fatal("no free 10.231.N.0/24 for the test link")
		}
		l.prefix = fmt.Sprintf("10.231.%d", n)
		out, _ := exec.Command("ip", "-4", "route", "show", l.prefix+".0/24").CombinedOutput()
		addrs, _ := exec.Command("ip", "-4", "addr", "show").CombinedOutput()
		if strings.TrimSpace(string(out)) == "" && !strings.Contains(string(addrs), l.prefix+".") {
			break
		}
	}
	l.host, l.clinic, l.relay = l.prefix+".1", l.prefix+".2", l.prefix+".3"
	vethNS := fmt.Sprintf("tcv%dn", id)
	exec.Command("ip", "netns", "del", l.ns).Run() // a killed earlier run's
	sh(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.ns).Run() })
	sh(t, "ip", "link", "add", l.vethHost, "type", "veth", "peer", "name", vethNS)
	t.Cleanup(func() { exec.Command("ip", "link", "del", l.vethHost).Run() })
	sh(t, "ip", "link", "set", vethNS, "netns", l.ns)
	sh(t, "ip", "addr", "add", l.host+"/24", "dev", l.vethHost)
	sh(t, "ip", "addr", "add", l.relay+"/24", "dev", l.vethHost)
	sh(t, "ip", "link", "set", l.vethHost, "up")
	sh(t, "ip", "netns", "exec", l.ns, "ip", "addr", "add", l.clinic+"/24", "dev", vethNS)
	sh(t, "ip", "netns", "exec", l.ns, "ip", "link", "set", vethNS, "up")
	sh(t, "ip", "netns", "exec", l.ns, "ip", "link", "set", "lo", "up")
	return l
}

// blockDirectUDP drops, inside the namespace, every UDP datagram from the
// harness' own address: media then reaches the clinic only from the relay.
func (l *link) blockDirectUDP(t *testing.T) {
	t.Helper()
	rules := fmt.Sprintf("table inet telechaos_test {\n chain in {\n  type filter hook input priority 0; policy accept;\n  ip saddr %s meta l4proto udp counter drop\n }\n}\n", l.host)
	cmd := exec.Command("ip", "netns", "exec", l.ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s", l.ns, err, out)
	}
}

// droppedUDP is the drop rule's packet counter.
func (l *link) droppedUDP(t *testing.T) string {
	return sh(t, "ip", "netns", "exec", l.ns, "nft", "list", "table", "inet", "telechaos_test")
}

// buildClinic builds the clinic binary (static, as the container image
// has it) into the test's directory; Go's build cache makes the second
// build cheap.
func buildClinic(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "clinic")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/telechaos/telechaos/cmd/clinic")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build clinic: %v\n%s", err, out)
	}
	return bin
}

// startClinic runs the clinic binary inside the namespace, its API and its
// media on the namespace's address; it stops with the test.
func (l *link) startClinic(t *testing.T, port int, bugs ...string) string {
	t.Helper()
	bin := buildClinic(t)
	args := []string{"netns", "exec", l.ns, bin, "--addr", fmt.Sprintf("%s:%d", l.clinic, port), "--data", t.TempDir(),
		"--udp-port", fmt.Sprint(port + 1000), "--listen-ip", l.clinic, "--advertised-ip", l.clinic, "--log-level", "warn"}
	for _, b := range bugs {
		args = append(args, "--bug", b)
	}
	cmd := exec.Command("ip", args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("clinic log:\n%s", logs.String())
		}
	})
	url := fmt.Sprintf("http://%s:%d", l.clinic, port)
	c := &http.Client{Timeout: 2 * time.Second}
	for i := 0; ; i++ {
		select {
		case err := <-exited:
			t.Fatalf("clinic exited: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := c.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if i == 600 { // bounded: a minute of 100 ms polls
			t.Fatalf("clinic in %s not healthy\n%s", l.ns, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startTURN runs a pion/turn relay on the host side of the link (its own
// address, .3), relaying from that address.
func (l *link) startTURN(t *testing.T) (url, user, pass string) {
	t.Helper()
	user, pass = "telechaos", "s3cret"
	pc, err := net.ListenPacket("udp4", l.relay+":3478")
	if err != nil {
		t.Fatal(err)
	}
	key := turn.GenerateAuthKey(user, "telechaos.test", pass)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: "telechaos.test",
		AuthHandler: func(u, realm string, src net.Addr) ([]byte, bool) {
			return key, u == user
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.ParseIP(l.relay), Address: l.relay},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "turn:" + l.relay + ":3478?transport=udp", user, pass
}

const scenarioYAML = `name: netns
description: calls, switches and replays across a veth link to a clinic in its own network namespace
target: %s
seed: 7
media: true
population: {patients: 12, clinicians: 3}
executor: {type: constant-arrival-rate, rate: 3, max_in_flight: 12}
duration: 4s
settle: 5s
behaviour:
  switch_to_video: 1
  replay: 1
  probe_other: 0.3
  call_min: 2s
  call_max: 3s
  switch_min: 0.3
  switch_max: 0.5
%s
expect: pass
`

func runAgainst(t *testing.T, url, network string) *harness.Result {
	t.Helper()
	sc, err := scenarios.Parse("netns.yaml", []byte(fmt.Sprintf(scenarioYAML, url, network)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := harness.Run(ctx, harness.RunConfig{Scenario: sc, ReportDir: t.TempDir(), ReproBudget: -1})
	if err != nil && res == nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Logf("run: %v", err)
	}
	s := res.Summary
	t.Logf("verdict %s (%s): calls %d, switches %d, replays %d; ice %+v", s.Verdict, s.Reason, s.Counts.CallsConnected, s.Counts.Switches, s.Counts.ReplaysFetched, s.ICE)
	return res
}

// requireAllJudged: a pass counts only with every invariant judged.
func requireAllJudged(t *testing.T, s *reports.Summary) {
	t.Helper()
	for _, inv := range s.Invariants {
		j, ok := s.Judgement[inv]
		if !ok || j.Status != reports.JudgementJudged || j.Judged == 0 {
			t.Errorf("invariant %s: %+v, want judged", inv, j)
		}
	}
}

// TestAcrossAVethLink: the clinic in its own network namespace, the
// harness outside; calls, switches and replays cross the veth pair (no
// loopback media: the harness gathers on the address that routes to the
// clinic), every invariant is judged and the run passes; the same clinic
// with switch-reuse is caught there.
func TestAcrossAVethLink(t *testing.T) {
	requireRoot(t)
	l := newLink(t)
	url := l.startClinic(t, 18088)
	res := runAgainst(t, url, "")
	s := res.Summary
	if res.ExitCode != harness.ExitPass {
		t.Fatalf("exit %d (%s), want a pass", res.ExitCode, s.Reason)
	}
	requireAllJudged(t, s)
	if s.ICE == nil || s.ICE.Connected == 0 || s.ICE.Relayed != 0 {
		t.Errorf("ice %+v, want direct connections only", s.ICE)
	}
	if s.ICE != nil && (len(s.ICE.Gather) != 1 || s.ICE.Gather[0] != l.host) {
		t.Errorf("gathered on %v, want the address routing to the clinic, %s", s.ICE.Gather, l.host)
	}
	if s.Counts.Switches == 0 || s.Counts.ReplaysFetched == 0 || s.Counts.FramesChecked == 0 {
		t.Errorf("counts %+v: want switches, replays and frames checked", s.Counts)
	}

	t.Run("switch-reuse caught", func(t *testing.T) {
		url := l.startClinic(t, 18089, "switch-reuse:1")
		res := runAgainst(t, url, "")
		if res.ExitCode != harness.ExitViolation {
			t.Fatalf("exit %d (%s), want a violation", res.ExitCode, res.Summary.Reason)
		}
		t.Logf("violations by invariant: %v", res.Summary.ViolationsByInvariant)
	})
}

// TestThroughTURNOnly: direct UDP from the harness to the clinic's
// namespace is dropped (an nftables rule inside the namespace the test
// made), the harness runs relay-only through a pion/turn relay on the host
// side of the link: every call's media goes through it, every invariant is
// judged, and the relayed share is 100%.
func TestThroughTURNOnly(t *testing.T) {
	requireRoot(t)
	l := newLink(t)
	url := l.startClinic(t, 18088)
	l.blockDirectUDP(t)
	turnURL, user, pass := l.startTURN(t)
	network := fmt.Sprintf("network:\n  relay_only: true\n  ice_servers:\n    - urls: [%q]\n      username: %s\n      credential: %s\n", turnURL, user, pass)
	res := runAgainst(t, url, network)
	s := res.Summary
	if res.ExitCode != harness.ExitPass {
		t.Fatalf("exit %d (%s), want a pass", res.ExitCode, s.Reason)
	}
	requireAllJudged(t, s)
	if s.ICE == nil || s.ICE.Connected == 0 || s.ICE.Relayed != s.ICE.Connected || s.ICE.RelayedShare != 1 {
		t.Errorf("ice %+v, want every connection relayed", s.ICE)
	}
	// The rule is live: a datagram from the harness' own address to the
	// clinic's media port is counted as dropped.
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(l.host)}, &net.UDPAddr{IP: net.ParseIP(l.clinic), Port: 19088})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		c.Write([]byte("direct"))
	}
	rules := l.droppedUDP(t)
	t.Logf("namespace rule:\n%s", rules)
	if strings.Contains(rules, "counter packets 0 ") {
		t.Errorf("direct UDP from %s was not dropped inside %s", l.host, l.ns)
	}
}
