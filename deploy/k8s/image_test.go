package k8s

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/telechaos/telechaos/harness/deploy"
	"github.com/telechaos/telechaos/internal/dockertest"
)

// The harness image works as shipped against an https target: it carries
// the CA bundle the host's ca-certificates installs, at the path Go's
// crypto/x509 reads on Linux, and its binary runs.
func TestHarnessImageCarriesCABundle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the harness image: make test runs it")
	}
	dockertest.Require(t, deploy.DockerAvailable)
	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	want, err := os.ReadFile(bundle)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CA bundle (make test-deps installs ca-certificates): %v", err)
		}
		t.Skipf("skipping: no CA bundle on this machine: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("telechaos/telechaos:catest-%d", os.Getpid())
	out := t.TempDir()
	// make image-harness stages its context in build/out/tc; removed after.
	cmd := exec.Command("make", "-s", "-C", root, "image-harness", "HARNESS_IMAGE="+tag)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	t.Cleanup(func() {
		exec.Command("docker", "rmi", "-f", tag).Run()
		os.RemoveAll(filepath.Join(root, "build", "out", "tc"))
	})
	if err != nil {
		t.Fatalf("make image-harness: %v\n%s", err, b)
	}
	ctr := fmt.Sprintf("telechaos-catest-%d", os.Getpid())
	if b, err := exec.Command("docker", "create", "--name", ctr, tag).CombinedOutput(); err != nil {
		t.Fatalf("docker create: %v\n%s", err, b)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", ctr).Run() })
	dst := filepath.Join(out, "bundle.crt")
	if b, err := exec.Command("docker", "cp", ctr+":"+bundle, dst).CombinedOutput(); err != nil {
		t.Fatalf("docker cp %s from the image: %v\n%s", bundle, err, b)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the image's %s (%d bytes) is not the host's bundle (%d bytes)", bundle, len(got), len(want))
	}
	// The static binary runs in the image (no libc, no shell).
	if b, err := exec.Command("docker", "run", "--rm", "--network", "none", tag, "help").CombinedOutput(); err != nil && !bytes.Contains(b, []byte("usage")) && !bytes.Contains(b, []byte("Usage")) {
		t.Errorf("telechaos help in the image: %v\n%s", err, b)
	}
}
