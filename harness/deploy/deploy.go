package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Fixed container-side layout of the clinic image.
const (
	httpPort     = "8080/tcp"
	httpAddr     = "0.0.0.0:8080"
	dataDir      = "/data"
	loopback     = "127.0.0.1"
	logTailLines = 40
)

// DefaultStartupTimeout bounds the wait for GET /healthz after a start. It is
// generous because the machines this runs on are shared and loaded.
const DefaultStartupTimeout = 60 * time.Second

// Logger receives testcontainers' progress messages (the same shape as its
// log.Logger and the standard *log.Logger).
type Logger interface {
	Printf(format string, v ...any)
}

// Option configures Run.
type Option func(*options)

type options struct {
	bugs           []string
	seed           *uint64
	udpPort        int
	env            map[string]string
	volume         string
	name           string
	args           []string
	logger         Logger
	startupTimeout time.Duration
	errs           []error
}

func (o *options) fail(format string, a ...any) {
	o.errs = append(o.errs, fmt.Errorf(format, a...))
}

// WithBugs switches on clinic catalogue bugs, each "ID" or "ID:P" (--bug).
func WithBugs(bugs ...string) Option {
	return func(o *options) {
		for _, b := range bugs {
			if b == "" || strings.ContainsAny(b, " \t\n") {
				o.fail("bug %q: want ID or ID:PROBABILITY without spaces", b)
				continue
			}
			o.bugs = append(o.bugs, b)
		}
	}
}

// WithSeed sets the clinic's seed for its bugs' firing decisions (--seed).
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = &seed } }

// WithUDPPort pins the media UDP port (host and container alike). Without it
// Run picks a port that is free on 127.0.0.1.
func WithUDPPort(port int) Option {
	return func(o *options) {
		if port < 1 || port > 65535 {
			o.fail("udp port %d: want 1..65535", port)
			return
		}
		o.udpPort = port
	}
}

// WithEnv adds environment variables to the container.
func WithEnv(env map[string]string) Option {
	return func(o *options) {
		if o.env == nil {
			o.env = map[string]string{}
		}
		for k, v := range env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				o.fail("env name %q is not valid", k)
				continue
			}
			o.env[k] = v
		}
	}
}

// WithDataVolume mounts the named volume as the clinic's data directory, so
// a later deployment can reuse the data. The caller owns that volume:
// Terminate leaves it. Without this option Run creates a labelled volume and
// Terminate removes it.
func WithDataVolume(name string) Option {
	return func(o *options) {
		if !validName.MatchString(name) {
			o.fail("volume name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*", name)
			return
		}
		o.volume = name
	}
}

// WithName names the container (default telechaos-clinic-<random>).
func WithName(name string) Option {
	return func(o *options) {
		if !validName.MatchString(name) {
			o.fail("container name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*", name)
			return
		}
		o.name = name
	}
}

// WithArgs appends raw arguments to the clinic's command line (for example
// "--log-level", "debug").
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

// WithLogger sends testcontainers' progress messages to l (default: none).
func WithLogger(l Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithStartupTimeout bounds each wait for GET /healthz (default
// DefaultStartupTimeout).
func WithStartupTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.fail("startup timeout %v: want > 0", d)
			return
		}
		o.startupTimeout = d
	}
}

// validName is Docker's rule for container and volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Deployment is one running (or stopped, or paused) clinic container with the
// network and volume created for it. Its methods are safe for concurrent use.
type Deployment struct {
	cli     *testcontainers.DockerClient
	id      string // random, also in every name and the deployment label
	image   string
	udpPort int

	network, volume       string
	ownNetwork, ownVolume bool

	mu         sync.Mutex
	ctr        *testcontainers.DockerContainer
	url        string
	terminated bool
}

// Run starts image as a clinic: HTTP published on 127.0.0.1 (random host
// port), the media UDP port pinned host=container on 127.0.0.1, /tmp as
// tmpfs, a data volume on /data, --advertised-ip 127.0.0.1, on a network of
// its own, and waits for GET /healthz. On error it returns the partly built
// Deployment as well, so the caller's Terminate cleans up what was created:
//
//	d, err := deploy.Run(ctx, image)
//	t.Cleanup(func() { _ = d.Terminate(context.Background()) })
//	if err != nil { t.Fatal(err) }
func Run(ctx context.Context, image string, opts ...Option) (*Deployment, error) {
	o := options{startupTimeout: DefaultStartupTimeout, logger: tclog.NewNoopLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	if image == "" {
		o.fail("image is empty")
	}
	if len(o.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(o.errs...))
	}
	cli, err := newClient(ctx)
	if err != nil {
		return nil, err
	}
	// Before anything is created: testcontainers pulls an image it does not
	// find locally, and a release gate must test the image it was given,
	// never one a registry happens to hold under that name.
	if err := checkLocalImage(ctx, cli, image); err != nil {
		_ = cli.Close()
		return nil, err
	}
	d := &Deployment{cli: cli, id: randomID(), image: image}
	if err := d.createNetwork(ctx); err != nil {
		return d, err
	}
	if err := d.createVolume(ctx, o.volume); err != nil {
		return d, err
	}

	// A port we picked may be taken by someone else before the engine binds
	// it; then pick again. A port the caller pinned is not retried.
	for attempt := 1; ; attempt++ {
		d.udpPort = o.udpPort
		if d.udpPort == 0 {
			if d.udpPort, err = freeUDPPort(); err != nil {
				return d, fmt.Errorf("%w: pick a udp port: %w", ErrStart, err)
			}
		}
		err = d.start(ctx, o)
		if err == nil || o.udpPort != 0 || attempt == 3 || !portTaken(err) {
			return d, err
		}
		if rmErr := d.removeContainer(ctx); rmErr != nil {
			return d, errors.Join(err, rmErr)
		}
	}
}

// checkLocalImage returns an error wrapping ErrImageNotFound, naming the
// image and how to build it, unless the local engine has it.
func checkLocalImage(ctx context.Context, cli *testcontainers.DockerClient, image string) error {
	_, err := cli.ImageInspect(ctx, image)
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: %s: build it with `make image` (telechaos run --deploy clinic builds the reference clinic itself); telechaos never pulls an image", ErrImageNotFound, image)
	}
	return fmt.Errorf("%w: inspect image %s: %w", ErrStart, image, err)
}

// start creates and starts the container and fills in d.ctr and d.url.
func (d *Deployment) start(ctx context.Context, o options) error {
	udp := strconv.Itoa(d.udpPort) + "/udp"
	name := o.name
	if name == "" {
		name = "telechaos-clinic-" + d.id
	}
	cmd := []string{
		"--addr", httpAddr, "--data", dataDir,
		"--udp-port", strconv.Itoa(d.udpPort), "--listen-ip", "0.0.0.0", "--advertised-ip", loopback,
	}
	if o.seed != nil {
		cmd = append(cmd, "--seed", strconv.FormatUint(*o.seed, 10))
	}
	for _, b := range o.bugs {
		cmd = append(cmd, "--bug", b)
	}
	cmd = append(cmd, o.args...)

	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: d.image,
			// Never pull: Run checked that the engine has the image
			// (checkLocalImage); testcontainers pulls only when asked to
			// or when the image is missing.
			AlwaysPullImage: false,
			Name:            name,
			Cmd:             cmd,
			Env:             o.env,
			// Every published port must be listed here, or testcontainers
			// drops its binding; unbound ones would go to 0.0.0.0.
			ExposedPorts: []string{httpPort, udp},
			Labels:       managedLabels(d.id),
			// Scratch has no /tmp; SQLite and Go's os.TempDir want one.
			Tmpfs:    map[string]string{"/tmp": "rw,size=64m"},
			Networks: []string{d.network},
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{
					network.MustParsePort(httpPort): {{HostIP: netip.MustParseAddr(loopback), HostPort: "0"}},
					network.MustParsePort(udp):      {{HostIP: netip.MustParseAddr(loopback), HostPort: strconv.Itoa(d.udpPort)}},
				}
				hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: d.volume, Target: dataDir})
			},
			// A port check would exec a shell, which scratch lacks.
			WaitingFor: wait.ForHTTP("/healthz").WithPort(httpPort).
				WithStartupTimeout(o.startupTimeout).WithPollInterval(200 * time.Millisecond),
		},
		Started: true,
		Logger:  o.logger,
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	if dc, ok := c.(*testcontainers.DockerContainer); ok && dc != nil {
		d.mu.Lock()
		d.ctr = dc
		d.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w%s", ErrStart, d.image, err, d.logTail(ctx))
	}
	if err := d.refresh(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	return nil
}

// refresh re-reads the published ports: the HTTP host port changes across a
// stop/start, and the UDP binding must still be the pinned loopback one.
func (d *Deployment) refresh(ctx context.Context) error {
	d.mu.Lock()
	ctr := d.ctr
	d.mu.Unlock()
	ins, err := ctr.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	ports := ins.NetworkSettings.Ports
	httpHost, ok := loopbackBinding(ports, network.MustParsePort(httpPort))
	if !ok {
		return fmt.Errorf("%s is not published on %s (ports %v)", httpPort, loopback, ports)
	}
	udp := network.MustParsePort(strconv.Itoa(d.udpPort) + "/udp")
	if udpHost, ok := loopbackBinding(ports, udp); !ok || udpHost != strconv.Itoa(d.udpPort) {
		return fmt.Errorf("%s is not published pinned on %s:%d (ports %v)", udp, loopback, d.udpPort, ports)
	}
	d.mu.Lock()
	d.url = "http://" + net.JoinHostPort(loopback, httpHost)
	d.mu.Unlock()
	return nil
}

// loopbackBinding returns the host port bound to 127.0.0.1 for port.
func loopbackBinding(ports network.PortMap, port network.Port) (string, bool) {
	for _, b := range ports[port] {
		if b.HostIP.String() == loopback && b.HostPort != "" && b.HostPort != "0" {
			return b.HostPort, true
		}
	}
	return "", false
}

// URL is the clinic's base URL on the host, http://127.0.0.1:<port>. It is
// empty before the first successful start; after Start it may differ.
func (d *Deployment) URL() string {
	if d == nil {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.url
}

// UDPPort is the media UDP port, the same on 127.0.0.1 and in the container.
func (d *Deployment) UDPPort() int {
	if d == nil {
		return 0
	}
	return d.udpPort
}

// ContainerID is the Docker ID of the container ("" if none was created).
func (d *Deployment) ContainerID() string {
	c, err := d.container()
	if err != nil {
		return ""
	}
	return c.GetContainerID()
}

// Volume is the name of the data volume mounted on /data.
func (d *Deployment) Volume() string {
	if d == nil {
		return ""
	}
	return d.volume
}

func (d *Deployment) container() (*testcontainers.DockerContainer, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: nil deployment", ErrTerminated)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.terminated {
		return nil, ErrTerminated
	}
	if d.ctr == nil {
		return nil, fmt.Errorf("%w: no container was created", ErrTerminated)
	}
	return d.ctr, nil
}

// Kill sends SIGKILL: the clinic gets no chance to flush or close anything.
func (d *Deployment) Kill(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	if _, err := d.cli.ContainerKill(ctx, c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("deploy: kill: %w", err)
	}
	return nil
}

// Stop sends SIGTERM and, after timeout (whole seconds: the engine API
// rounds down, so under 1s means SIGKILL at once), SIGKILL.
func (d *Deployment) Stop(ctx context.Context, timeout time.Duration) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	if err := c.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("deploy: stop: %w", err)
	}
	return nil
}

// Start starts a stopped or killed container again on the same data and
// waits for GET /healthz. The HTTP host port may change (read URL again);
// the pinned UDP port stays. Calls in progress cannot survive it.
func (d *Deployment) Start(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("deploy: start: %w%s", err, d.logTail(ctx))
	}
	if err := d.refresh(ctx); err != nil {
		return fmt.Errorf("deploy: start: %w", err)
	}
	return nil
}

// Pause freezes every process of the container (cgroup freezer): sockets
// stay open, packets queue, nothing is answered until Unpause.
func (d *Deployment) Pause(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	if _, err := d.cli.ContainerPause(ctx, c.GetContainerID(), client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("deploy: pause: %w", err)
	}
	return nil
}

// Unpause resumes a paused container.
func (d *Deployment) Unpause(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	if _, err := d.cli.ContainerUnpause(ctx, c.GetContainerID(), client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("deploy: unpause: %w", err)
	}
	return nil
}

// Disconnect detaches the container from its network: its published ports
// go away, so HTTP clients get "connection refused" and media datagrams are
// dropped, while the clinic keeps running (a partition, not a crash).
func (d *Deployment) Disconnect(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	if _, err := d.cli.NetworkDisconnect(ctx, d.network, client.NetworkDisconnectOptions{Container: c.GetContainerID()}); err != nil {
		return fmt.Errorf("deploy: disconnect: %w", err)
	}
	return nil
}

// Connect reattaches the container after Disconnect. The engine publishes
// the ports again: the HTTP host port changes (read URL again), the pinned
// UDP port stays.
func (d *Deployment) Connect(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	if _, err := d.cli.NetworkConnect(ctx, d.network, client.NetworkConnectOptions{Container: c.GetContainerID()}); err != nil {
		return fmt.Errorf("deploy: connect: %w", err)
	}
	if err := d.refresh(ctx); err != nil {
		return fmt.Errorf("deploy: connect: %w", err)
	}
	return nil
}

// State is the engine's view of the container: "running", "paused",
// "exited", ...
func (d *Deployment) State(ctx context.Context) (string, error) {
	c, err := d.container()
	if err != nil {
		return "", err
	}
	st, err := c.State(ctx)
	if err != nil {
		return "", fmt.Errorf("deploy: state: %w", err)
	}
	return string(st.Status), nil
}

// Logs returns the container's stdout and stderr so far (the clinic logs
// JSON lines to stderr).
func (d *Deployment) Logs(ctx context.Context) (string, error) {
	c, err := d.container()
	if err != nil {
		return "", err
	}
	rc, err := c.Logs(ctx)
	if err != nil {
		return "", fmt.Errorf("deploy: logs: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return string(b), fmt.Errorf("deploy: logs: %w", err)
	}
	return string(b), nil
}

// logTail formats the last log lines for an error message ("" if none).
func (d *Deployment) logTail(ctx context.Context) string {
	if _, err := d.container(); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	logs, err := d.Logs(ctx)
	if err != nil || strings.TrimSpace(logs) == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(logs, "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return "\ncontainer logs (tail):\n" + strings.Join(lines, "\n")
}

// Terminate removes the container and the network and volume Run created (a
// volume passed with WithDataVolume stays). It is safe on a nil or partly
// built Deployment and when called twice; later calls are no-ops.
func (d *Deployment) Terminate(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.terminated {
		d.mu.Unlock()
		return nil
	}
	d.terminated = true
	d.mu.Unlock()

	// Cleanup must run even if the caller's context is already cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	errs := []error{d.removeContainer(ctx)}
	if d.ownVolume && d.volume != "" {
		if _, err := d.cli.VolumeRemove(ctx, d.volume, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", d.volume, err))
		}
	}
	if d.ownNetwork && d.network != "" {
		if _, err := d.cli.NetworkRemove(ctx, d.network, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", d.network, err))
		}
	}
	errs = append(errs, d.cli.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deploy: terminate: %w", err)
	}
	return nil
}

// removeContainer force-removes the container, if any, and forgets it.
func (d *Deployment) removeContainer(ctx context.Context) error {
	d.mu.Lock()
	ctr := d.ctr
	d.ctr, d.url = nil, ""
	d.mu.Unlock()
	if ctr == nil {
		return nil
	}
	// Unpause first: stopping a paused container waits for the timeout.
	_, _ = d.cli.ContainerUnpause(ctx, ctr.GetContainerID(), client.ContainerUnpauseOptions{})
	if err := ctr.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container: %w", err)
	}
	return nil
}

func (d *Deployment) createNetwork(ctx context.Context) error {
	name := "telechaos-net-" + d.id
	if _, err := d.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: managedLabels(d.id),
	}); err != nil {
		return fmt.Errorf("%w: create network %s: %w", ErrStart, name, err)
	}
	d.network, d.ownNetwork = name, true
	return nil
}

func (d *Deployment) createVolume(ctx context.Context, name string) error {
	if name != "" {
		d.volume = name // the caller's; the engine creates it on first use
		return nil
	}
	name = "telechaos-data-" + d.id
	if _, err := d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: managedLabels(d.id)}); err != nil {
		return fmt.Errorf("%w: create volume %s: %w", ErrStart, name, err)
	}
	d.volume, d.ownVolume = name, true
	return nil
}

// freeUDPPort picks a UDP port free on 127.0.0.1 below the kernel's
// ephemeral range (ip_local_port_range, default 32768-60999). A port from
// that range can be handed to any process's next outgoing socket (the
// harness' own WebRTC peers open dozens a second) in the moment the
// engine republishes it after a partition heals, which failed a CI run
// with "address already in use"; below it only a listener that asks for
// the port by number can take it. Falls back to a kernel-picked port when
// no port below the range is free after a bounded number of tries.
func freeUDPPort() (int, error) {
	lo, _ := ephemeralRange()
	const floor = 20000
	if lo-1 > floor {
		span := lo - floor
		start := floor + int(randUint32()%uint32(span))
		for i := range 64 {
			port := floor + (start-floor+i*7919)%span
			pc, err := net.ListenPacket("udp4", net.JoinHostPort(loopback, strconv.Itoa(port)))
			if err == nil {
				pc.Close()
				return port, nil
			}
		}
	}
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// ephemeralRange is the kernel's range for automatically assigned ports
// (Linux; the IANA default 49152-65535 elsewhere or when unreadable).
func ephemeralRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l > 1024 && l <= h {
				return l, h
			}
		}
	}
	return 49152, 65535
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// portTaken recognises the engine's "port already in use" start errors.
func portTaken(err error) bool {
	s := err.Error()
	return strings.Contains(s, "address already in use") || strings.Contains(s, "port is already allocated")
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
