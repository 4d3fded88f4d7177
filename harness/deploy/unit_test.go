package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/internal/dockertest"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Tests that need no Docker engine.

func TestRunRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name  string
		image string
		opts  []Option
		want  string
	}{
		{"empty image", "", nil, "image is empty"},
		{"udp port zero", "x", []Option{WithUDPPort(0)}, "udp port 0"},
		{"udp port too big", "x", []Option{WithUDPPort(70000)}, "udp port 70000"},
		{"bug with space", "x", []Option{WithBugs("list-scope", "bad bug")}, `bug "bad bug"`},
		{"empty bug", "x", []Option{WithBugs("")}, `bug ""`},
		{"volume name", "x", []Option{WithDataVolume("../etc")}, `volume name "../etc"`},
		{"container name", "x", []Option{WithName("-x")}, `container name "-x"`},
		{"env name", "x", []Option{WithEnv(map[string]string{"A=B": "c"})}, `env name "A=B"`},
		{"timeout", "x", []Option{WithStartupTimeout(0)}, "startup timeout 0s"},
		{"every problem reported", "", []Option{WithUDPPort(-1), WithName("")}, `udp port -1: want 1..65535
container name "": want [a-zA-Z0-9][a-zA-Z0-9_.-]*
image is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Run(context.Background(), tt.image, tt.opts...)
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("Run: %v, want ErrInvalidOption", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error %q does not mention %q", err, tt.want)
			}
			if d != nil {
				t.Errorf("Run returned a deployment %+v for bad options", d)
			}
			if err := d.Terminate(context.Background()); err != nil {
				t.Errorf("Terminate on the nil deployment: %v", err)
			}
		})
	}
}

func TestNilDeployment(t *testing.T) {
	var d *Deployment
	if d.URL() != "" || d.UDPPort() != 0 || d.ContainerID() != "" || d.Volume() != "" {
		t.Error("nil deployment reports values")
	}
	ctx := context.Background()
	for name, f := range map[string]func() error{
		"Kill":    func() error { return d.Kill(ctx) },
		"Stop":    func() error { return d.Stop(ctx, time.Second) },
		"Start":   func() error { return d.Start(ctx) },
		"Pause":   func() error { return d.Pause(ctx) },
		"Unpause": func() error { return d.Unpause(ctx) },
		"Connect": func() error { return d.Connect(ctx) },
	} {
		if err := f(); !errors.Is(err, ErrTerminated) {
			t.Errorf("%s on nil deployment: %v, want ErrTerminated", name, err)
		}
	}
}

func TestValidTag(t *testing.T) {
	for tag, ok := range map[string]bool{
		"telechaos/clinic:dev":                  true,
		"github.com/telechaos/telechaos/clinic": true,
		"localhost:5000/clinic:v1":              true,
		"localhost:5000/clinic":                 true,
		"telechaos/clinic:Dev":                  true, // tags may hold capitals
		"":                                      false,
		"Telechaos/clinic:dev":                  false,
		"telechaos/clinic:dev with space":       false,
		":dev":                                  false,
	} {
		err := validTag(tag)
		if (err == nil) != ok {
			t.Errorf("validTag(%q) = %v, want ok=%v", tag, err, ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidOption) {
			t.Errorf("validTag(%q) = %v, want ErrInvalidOption", tag, err)
		}
	}
}

func TestBuildClinicImageRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := BuildClinicImage(ctx, t.TempDir(), "telechaos/clinic:x"); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "not a Go module root") {
		t.Errorf("BuildClinicImage in a non-module dir: %v", err)
	}
	if _, err := BuildClinicImage(ctx, "../..", "Bad Tag"); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("BuildClinicImage with a bad tag: %v", err)
	}
	if err := RemoveImage(ctx, ""); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("RemoveImage(\"\"): %v", err)
	}
}

func TestReadBuildStream(t *testing.T) {
	ok := `{"stream":"Step 1/7 : FROM scratch\n"}
{"stream":"Successfully built 2cbd0bcd5b50\n"}
{"aux":{"ID":"sha256:2cbd0bcd5b50"}}
{"stream":"Successfully tagged telechaos/clinic:dev\n"}
`
	id, err := readBuildStream(strings.NewReader(ok))
	if err != nil || id != "sha256:2cbd0bcd5b50" {
		t.Errorf("readBuildStream(ok) = %q, %v", id, err)
	}
	failed := `{"stream":"Step 2/7 : COPY clinic /clinic\n"}
{"errorDetail":{"message":"COPY failed: file not found"},"error":"COPY failed: file not found"}
`
	_, err = readBuildStream(strings.NewReader(failed))
	if err == nil || !strings.Contains(err.Error(), "COPY failed") || !strings.Contains(err.Error(), "Step 2/7") {
		t.Errorf("readBuildStream(failed) = %v, want the error and the last steps", err)
	}
	if _, err := readBuildStream(strings.NewReader(`{"stream":`)); err == nil {
		t.Error("readBuildStream accepted truncated JSON")
	}
}

func TestOwnerAlive(t *testing.T) {
	host, _ := os.Hostname()
	me := ownerID()
	if !ownerAlive(me) {
		t.Errorf("ownerAlive(%q) = false for this very process", me)
	}
	for _, owner := range []string{
		fmt.Sprintf("%s/0/", host),           // impossible pid
		fmt.Sprintf("%s/2147483646/1", host), // no such process
	} {
		if ownerAlive(owner) {
			t.Errorf("ownerAlive(%q) = true", owner)
		}
	}
	if procStart(os.Getpid()) != "" {
		// Same pid, another start time: pid reuse, the owner is gone.
		if stale := fmt.Sprintf("%s/%d/1", host, os.Getpid()); ownerAlive(stale) {
			t.Errorf("ownerAlive(%q) = true despite another start time", stale)
		}
	}
	// We cannot tell for these, so Sweep leaves them unless SweepAll.
	for _, owner := range []string{"some-other-host/1/1", "", "written-by-someone-else"} {
		if !ownerAlive(owner) {
			t.Errorf("ownerAlive(%q) = false, want true (unknown owners are left alone)", owner)
		}
	}
}

func TestFreeUDPPort(t *testing.T) {
	lo, _ := ephemeralRange()
	for range 20 {
		p, err := freeUDPPort()
		if err != nil || p <= 0 || p > 65535 {
			t.Fatalf("freeUDPPort() = %d, %v", p, err)
		}
		// Below the ephemeral range: no outgoing socket is given it.
		if lo > 20001 && (p < 20000 || p >= lo) {
			t.Errorf("freeUDPPort() = %d, want it in [20000, %d)", p, lo)
		}
	}
}

// TestSweepRemovesOnlyStale creates volumes and networks the way a crashed
// run and a live run would leave them; Sweep must take the first only.
func TestSweepRemovesOnlyStale(t *testing.T) {
	if testing.Short() {
		t.Skip("Docker: slow; make test runs it")
	}
	dockertest.Require(t, DockerAvailable)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := newClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	host, _ := os.Hostname()
	id := randomID()
	dead := managedLabels("sweep-" + id)
	dead[LabelOwner] = fmt.Sprintf("%s/2147483646/1", host)
	live := managedLabels("sweep-" + id)
	deadVol, liveVol := "telechaos-sweep-dead-"+id, "telechaos-sweep-live-"+id
	deadNet := "telechaos-sweep-dead-" + id
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = cli.VolumeRemove(ctx, deadVol, client.VolumeRemoveOptions{Force: true})
		_, _ = cli.VolumeRemove(ctx, liveVol, client.VolumeRemoveOptions{Force: true})
		_, _ = cli.NetworkRemove(ctx, deadNet, client.NetworkRemoveOptions{})
	})
	for name, labels := range map[string]map[string]string{deadVol: dead, liveVol: live} {
		if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels}); err != nil {
			t.Fatalf("create volume: %v", err)
		}
	}
	if _, err := cli.NetworkCreate(ctx, deadNet, client.NetworkCreateOptions{Driver: "bridge", Labels: dead}); err != nil {
		t.Fatalf("create network: %v", err)
	}

	deadImg := buildLabelOnlyImage(ctx, t, cli, "telechaos/sweep-dead:"+id, dead)
	liveImg := buildLabelOnlyImage(ctx, t, cli, "telechaos/sweep-live:"+id, live)
	t.Cleanup(func() {
		for _, img := range []string{deadImg, liveImg} {
			_, _ = cli.ImageRemove(context.Background(), img, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
	})

	removed, err := Sweep(ctx, SweepImages())
	if err != nil {
		t.Errorf("sweep: %v", err)
	}
	// Not asserted on removed: test packages run in parallel and another
	// package's start-up Sweep may take the dead resources first. What
	// matters is the state below: dead gone, live kept.
	t.Logf("sweep removed %d resources", removed)
	if _, err := cli.VolumeInspect(ctx, deadVol, client.VolumeInspectOptions{}); err == nil {
		t.Error("sweep left the volume of a dead owner")
	}
	if _, err := cli.NetworkInspect(ctx, deadNet, client.NetworkInspectOptions{}); err == nil {
		t.Error("sweep left the network of a dead owner")
	}
	if _, err := cli.VolumeInspect(ctx, liveVol, client.VolumeInspectOptions{}); err != nil {
		t.Errorf("sweep removed the volume of a live owner: %v", err)
	}
	if _, err := cli.ImageInspect(ctx, deadImg); err == nil {
		t.Error("sweep left the image of a dead owner")
	}
	if _, err := cli.ImageInspect(ctx, liveImg); err != nil {
		t.Errorf("sweep removed the image of a live owner: %v", err)
	}
}

// buildLabelOnlyImage builds a layerless FROM scratch image carrying labels.
func buildLabelOnlyImage(ctx context.Context, t *testing.T, cli *testcontainers.DockerClient, tag string, labels map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	df := []byte("FROM scratch\n")
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(df)
	_ = tw.Close()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{tag}, Labels: labels, Remove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	defer res.Body.Close()
	if _, err := readBuildStream(res.Body); err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	return tag
}
