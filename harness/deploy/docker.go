package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Labels put on everything this package creates.
const (
	// LabelManaged marks containers, volumes, networks and images made by
	// telechaos; Sweep looks for it.
	LabelManaged = "org.telechaos.managed"
	// LabelOwner names the process that created a resource
	// (host/pid/start-ticks), so Sweep can tell leftovers of a crashed run
	// from the live resources of a run going on in parallel.
	LabelOwner = "org.telechaos.owner"
	// LabelDeployment groups the container, volume and network of one Run.
	LabelDeployment = "org.telechaos.deployment"
)

// pingTimeout bounds DockerAvailable when the caller's context has no deadline.
const pingTimeout = 10 * time.Second

// newClient connects to the engine the way testcontainers does (DOCKER_HOST,
// docker context, ~/.testcontainers.properties) and checks that it answers.
func newClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	ensureEnv()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDocker, err)
	}
	// NewDockerClientWithOpts may fall back to an unchecked client, so ping.
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("%w: ping %s: %w", ErrNoDocker, cli.DaemonHost(), err)
	}
	return cli, nil
}

// DockerAvailable returns nil if a Docker engine answers, or an error
// wrapping ErrNoDocker that says why not.
func DockerAvailable(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pingTimeout)
		defer cancel()
	}
	cli, err := newClient(ctx)
	if err != nil {
		return err
	}
	return cli.Close()
}

// managedLabels are the labels of a resource created by this process.
func managedLabels(deployment string) map[string]string {
	l := map[string]string{LabelManaged: "true", LabelOwner: ownerID()}
	if deployment != "" {
		l[LabelDeployment] = deployment
	}
	return l
}

// ownerID identifies this process across pid reuse: host/pid/start-ticks.
func ownerID() string {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return fmt.Sprintf("%s/%d/%s", host, pid, procStart(pid))
}

// procStart returns the start time of pid in clock ticks since boot (Linux),
// or "" where /proc is not available.
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name may contain spaces and parentheses; fields resume
	// after the last ')'. starttime is field 22, the 20th after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// ownerAlive reports whether the process named by an owner label still runs.
// Resources without an owner this package wrote, or of other hosts, count as
// alive: we cannot tell, so only SweepAll removes them.
func ownerAlive(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		return true
	}
	host, _ := os.Hostname()
	if parts[0] != host {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	if parts[2] != "" {
		if start := procStart(pid); start != "" || procAvailable() {
			return start == parts[2]
		}
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

func procAvailable() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}
