package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telechaos/telechaos/internal/dockertest"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// The image the package's Docker tests share: built once, on first use, and
// removed by TestMain at the end.
var (
	imageOnce sync.Once
	imageID   string
	imageErr  error
	imageTag  = "telechaos/clinic:test-" + randomID()
)

func TestMain(m *testing.M) {
	// Before any testcontainers call (init already did; this states it).
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	// Take what crashed earlier runs of these tests left (their owners are
	// gone); live runs in parallel are left alone.
	if DockerAvailable(context.Background()) == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if n, err := Sweep(ctx, SweepImages()); err != nil || n > 0 {
			fmt.Fprintf(os.Stderr, "deploy tests: swept %d leftovers (%v)\n", n, err)
		}
		cancel()
	}
	code := m.Run()
	if imageID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := RemoveImage(ctx, imageID); err != nil {
			fmt.Fprintf(os.Stderr, "deploy tests: remove test image: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		cancel()
	}
	os.Exit(code)
}

// testImage builds the clinic image once for the whole package.
func testImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("Docker image and containers: slow; make test runs it")
	}
	dockertest.Require(t, DockerAvailable)
	imageOnce.Do(func() {
		// BuildClinicImage bounds each stage by ImageBuildTimeout; a
		// cold build on a loaded machine can take many minutes.
		ctx := context.Background()
		start := time.Now()
		imageID, imageErr = BuildClinicImage(ctx, repoRoot(t), imageTag)
		t.Logf("BuildClinicImage %s: %v (%s)", imageTag, time.Since(start).Round(time.Millisecond), imageID)
	})
	if imageErr != nil {
		t.Fatalf("build clinic image: %v", imageErr)
	}
	return imageID
}

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// runClinic starts a deployment and registers its cleanup at once, before
// looking at the error, so a failed start is cleaned up too.
func runClinic(t *testing.T, opts ...Option) *Deployment {
	t.Helper()
	img := testImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	d, err := Run(ctx, img, opts...)
	t.Cleanup(func() {
		if err := d.Terminate(context.Background()); err != nil {
			t.Errorf("terminate: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("Run until healthy: %v (url %s, udp %d)", time.Since(start).Round(time.Millisecond), d.URL(), d.UDPPort())
	return d
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func getHealth(d *Deployment, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL()+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: status %d", resp.StatusCode)
	}
	return nil
}

// waitHealth polls healthz: the proxy may need a moment after a reconnect.
func waitHealth(d *Deployment, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := getHealth(d, 2*time.Second)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type user struct {
	ID, Role, Name, Token string
}

func registerUser(t *testing.T, d *Deployment, role string) user {
	t.Helper()
	body := fmt.Sprintf(`{"role":%q,"name":"deploy-test"}`, role)
	resp, err := httpClient.Post(d.URL()+"/v1/users", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /v1/users: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/users: status %d, want 201", resp.StatusCode)
	}
	var u user
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		t.Fatalf("POST /v1/users: decode: %v", err)
	}
	if u.ID == "" || u.Token == "" || u.Role != role {
		t.Fatalf("POST /v1/users: got %+v", u)
	}
	return u
}

// listReplays returns the status of GET /v1/replays with the user's token:
// 200 means the clinic still knows the user.
func listReplays(t *testing.T, d *Deployment, u user) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, d.URL()+"/v1/replays", nil)
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/replays: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func wantState(t *testing.T, d *Deployment, want string) {
	t.Helper()
	got, err := d.State(context.Background())
	if err != nil {
		t.Errorf("state: %v", err)
		return
	}
	if got != want {
		t.Errorf("container state %q, want %q", got, want)
	}
}

// TestLifecycle runs the clinic image and walks every chaos primitive, then
// checks Terminate left nothing behind.
func TestLifecycle(t *testing.T) {
	d := runClinic(t, WithSeed(7), WithBugs("list-scope:0.5"), WithEnv(map[string]string{"TZ": "UTC"}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	if !strings.HasPrefix(d.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q is not on 127.0.0.1", d.URL())
	}
	if err := getHealth(d, 10*time.Second); err != nil {
		t.Fatalf("healthz after Run: %v", err)
	}
	u := registerUser(t, d, "patient")
	wantState(t, d, "running")
	checkPublished(t, d)
	if c, err := d.container(); err == nil {
		if ins, err := c.Inspect(ctx); err == nil {
			cmd := strings.Join(ins.Config.Cmd, " ")
			for _, want := range []string{"--seed 7", "--bug list-scope:0.5", "--advertised-ip 127.0.0.1", fmt.Sprintf("--udp-port %d", d.UDPPort())} {
				if !strings.Contains(cmd, want) {
					t.Errorf("clinic command %q lacks %q", cmd, want)
				}
			}
			if !slices.Contains(ins.Config.Env, "TZ=UTC") {
				t.Errorf("container env %v lacks TZ=UTC", ins.Config.Env)
			}
		}
	}

	// SIGKILL, then start again on the same data.
	if err := d.Kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	wantState(t, d, "exited")
	start := time.Now()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start after kill: %v", err)
	}
	t.Logf("Start after Kill until healthy: %v (url %s)", time.Since(start).Round(time.Millisecond), d.URL())
	if err := getHealth(d, 10*time.Second); err != nil {
		t.Errorf("healthz after kill+start: %v", err)
	}
	checkPublished(t, d)
	if got := listReplays(t, d, u); got != http.StatusOK {
		t.Errorf("GET /v1/replays with a token from before the kill: status %d, want 200 (data volume not kept?)", got)
	}

	// Pause: the proxy still accepts, but nobody answers.
	if err := d.Pause(ctx); err != nil {
		t.Fatalf("pause: %v", err)
	}
	wantState(t, d, "paused")
	if err := getHealth(d, time.Second); err == nil {
		t.Error("healthz answered while the container was paused")
	}
	if err := d.Unpause(ctx); err != nil {
		t.Fatalf("unpause: %v", err)
	}
	if err := getHealth(d, 10*time.Second); err != nil {
		t.Errorf("healthz after unpause: %v", err)
	}

	// Partition: the ports go away while the clinic keeps running.
	if err := d.Disconnect(ctx); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	if err := getHealth(d, 2*time.Second); err == nil {
		t.Error("healthz answered while the container was disconnected")
	}
	wantState(t, d, "running")
	if err := d.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	checkPublished(t, d)
	if err := waitHealth(d, 20*time.Second); err != nil {
		t.Errorf("healthz after connect: %v", err)
	}

	// Graceful stop and start.
	if err := d.Stop(ctx, 5*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	wantState(t, d, "exited")
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start after stop: %v", err)
	}
	if err := getHealth(d, 10*time.Second); err != nil {
		t.Errorf("healthz after stop+start: %v", err)
	}
	registerUser(t, d, "clinician")

	if err := d.Terminate(ctx); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	if err := d.Terminate(ctx); err != nil {
		t.Errorf("second terminate: %v", err)
	}
	if err := d.Kill(ctx); !errors.Is(err, ErrTerminated) {
		t.Errorf("kill after terminate: %v, want ErrTerminated", err)
	}
	if d.URL() != "" {
		t.Errorf("URL after terminate = %q, want empty", d.URL())
	}
	assertGone(t, d.id)
}

// checkPublished asserts the port bindings the media path depends on.
func checkPublished(t *testing.T, d *Deployment) {
	t.Helper()
	c, err := d.container()
	if err != nil {
		t.Error(err)
		return
	}
	ins, err := c.Inspect(context.Background())
	if err != nil {
		t.Errorf("inspect: %v", err)
		return
	}
	for port, bindings := range ins.NetworkSettings.Ports {
		for _, b := range bindings {
			if b.HostIP.String() != "127.0.0.1" {
				t.Errorf("port %s published on %s, want 127.0.0.1 only", port, b.HostIP)
			}
		}
	}
	udp := fmt.Sprintf("%d/udp", d.UDPPort())
	if host, ok := loopbackBinding(ins.NetworkSettings.Ports, mustPort(t, udp)); !ok || host != fmt.Sprint(d.UDPPort()) {
		t.Errorf("udp %s published as %q, want pinned %d", udp, host, d.UDPPort())
	}
	if ins.Config.Labels[LabelManaged] != "true" {
		t.Errorf("container labels %v lack %s=true", ins.Config.Labels, LabelManaged)
	}
}

// assertGone checks no container, volume or network of deployment id remains.
func assertGone(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := newClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	f := client.Filters{}.Add("label", LabelDeployment+"="+id)
	ctrs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil || len(ctrs.Items) > 0 {
		t.Errorf("containers left for deployment %s: %d (%v)", id, len(ctrs.Items), err)
	}
	vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil || len(vols.Items) > 0 {
		t.Errorf("volumes left for deployment %s: %d (%v)", id, len(vols.Items), err)
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil || len(nets.Items) > 0 {
		t.Errorf("networks left for deployment %s: %d (%v)", id, len(nets.Items), err)
	}
}

// TestRunReportsCrash: a clinic that exits at once (a bad flag) is an
// ErrStart that carries its logs, and Terminate still cleans up.
func TestRunReportsCrash(t *testing.T) {
	img := testImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	d, err := Run(ctx, img, WithArgs("--no-such-flag"), WithStartupTimeout(20*time.Second))
	t.Cleanup(func() { _ = d.Terminate(context.Background()) })
	t.Logf("Run of a crashing clinic returned after %v", time.Since(start).Round(time.Millisecond))
	if !errors.Is(err, ErrStart) {
		t.Fatalf("run: %v, want ErrStart", err)
	}
	if !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("error does not carry the container's logs: %v", err)
	}
	if d == nil {
		t.Fatal("Run returned no partial deployment to clean up")
	}
	id := d.id
	if err := d.Terminate(ctx); err != nil {
		t.Errorf("terminate: %v", err)
	}
	assertGone(t, id)
}

func mustPort(t *testing.T, s string) network.Port {
	t.Helper()
	p, err := network.ParsePort(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPinnedPortTaken: a UDP port the caller pins but someone holds is an
// ErrStart naming the port, and the partial deployment still cleans up.
func TestPinnedPortTaken(t *testing.T) {
	img := testImage(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := Run(ctx, img, WithUDPPort(port), WithStartupTimeout(20*time.Second))
	t.Cleanup(func() { _ = d.Terminate(context.Background()) })
	if !errors.Is(err, ErrStart) {
		t.Fatalf("run on a taken port: %v, want ErrStart", err)
	}
	t.Logf("engine says: %v", err)
	if !portTaken(err) || !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Errorf("error does not say port %d is taken: %v", port, err)
	}
	id := d.id
	if err := d.Terminate(ctx); err != nil {
		t.Errorf("terminate: %v", err)
	}
	assertGone(t, id)
}

// TestDataVolumeOutlivesDeployment: a caller-named volume stays after
// Terminate and a new deployment on it sees the old data.
func TestDataVolumeOutlivesDeployment(t *testing.T) {
	img := testImage(t)
	vol := "telechaos-test-data-" + randomID()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := newClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	t.Cleanup(func() {
		if _, err := cli.VolumeRemove(context.Background(), vol, client.VolumeRemoveOptions{Force: true}); err != nil {
			t.Errorf("remove test volume: %v", err)
		}
	})

	first, err := Run(ctx, img, WithDataVolume(vol))
	t.Cleanup(func() { _ = first.Terminate(context.Background()) })
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	u := registerUser(t, first, "clinician")
	if err := first.Terminate(ctx); err != nil {
		t.Fatalf("terminate first: %v", err)
	}
	if _, err := cli.VolumeInspect(ctx, vol, client.VolumeInspectOptions{}); err != nil {
		t.Fatalf("the caller's volume did not survive Terminate: %v", err)
	}

	second := runClinic(t, WithDataVolume(vol))
	if got := listReplays(t, second, u); got != http.StatusOK {
		t.Errorf("GET /v1/replays on the second deployment with a token from the first: %d, want 200", got)
	}
}
