package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// pinning assigns the client and the clinic one core each (taskset), when the
// machine has two or more cores and taskset exists.
type pinning struct {
	taskset string // "" = no pinning
}

func newPinning() pinning {
	if runtime.NumCPU() < 2 {
		return pinning{}
	}
	p, err := exec.LookPath("taskset")
	if err != nil {
		return pinning{}
	}
	return pinning{taskset: p}
}

// command builds argv on core (0 client, 1 clinic) when pinning is available.
func (p pinning) command(ctx context.Context, core int, argv ...string) *exec.Cmd {
	if p.taskset != "" {
		argv = append([]string{p.taskset, "-c", strconv.Itoa(core)}, argv...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

func (p pinning) String() string {
	if p.taskset == "" {
		return "none (fewer than 2 cores or no taskset)"
	}
	return "taskset: client on core 0, clinic on core 1"
}

// clinicProc is the reference clinic as its own process.
type clinicProc struct {
	URL    string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

// startClinic runs argv (the clinic command line without --addr/--data) with
// a free loopback port and a fresh data directory, pinned to core 1, and
// waits for /healthz.
func startClinic(ctx context.Context, pin pinning, argv []string, dataDir string) (*clinicProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pick clinic port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	full := append(append([]string{}, argv...), "--addr", addr, "--data", dataDir, "--udp-port", "0", "--log-level", "error")
	c := &clinicProc{URL: "http://" + addr, done: make(chan error, 1)}
	c.cmd = pin.command(context.WithoutCancel(ctx), 1, full...)
	c.cmd.Stderr = &c.stderr
	c.cmd.Cancel = func() error { return c.cmd.Process.Signal(os.Interrupt) }
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start clinic %v: %w", full, err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			return nil, fmt.Errorf("clinic exited at start (%v): %s", err, c.stderr.String())
		default:
		}
		r, err := http.Get(c.URL + "/healthz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return c, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Close()
	return nil, errors.New("clinic not healthy within 30s")
}

// Close stops the clinic (SIGINT, then SIGKILL after 10 s).
func (c *clinicProc) Close() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// cpuOf is a finished process's user+system CPU.
func cpuOf(st *os.ProcessState) time.Duration {
	if st == nil {
		return 0
	}
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return st.UserTime() + st.SystemTime()
}

// selfCPU is this process's user+system CPU so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runChild runs a pinned client process with a time bound and returns its
// CPU, wall time and output.
func runChild(ctx context.Context, pin pinning, bound time.Duration, dir string, argv ...string) (cpu, wall time.Duration, out []byte, err error) {
	cctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	cmd := pin.command(cctx, 0, argv...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	st := time.Now()
	err = cmd.Run()
	wall = time.Since(st)
	cpu = cpuOf(cmd.ProcessState)
	if cctx.Err() != nil && err != nil {
		err = fmt.Errorf("%s: cut at its %v bound: %w", argv[0], bound, err)
	}
	return cpu, wall, buf.Bytes(), err
}
