package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Paths inside the repository that BuildClinicImage uses.
const (
	clinicPackage    = "./cmd/clinic"
	clinicDockerfile = "build/clinic.Dockerfile"
)

// The image build budget. A cold static build of ./cmd/clinic compiles the
// whole dependency graph (pion, the standard library for linux/GOARCH) and
// takes a minute or two on an idle laptop; on a loaded 2-core CI runner or a
// shared machine it has been seen to take more than ten, so the budget is
// generous: it bounds a build that hangs, not a slow one.
const (
	// EnvImageBuildTimeout overrides DefaultImageBuildTimeout with a Go
	// duration ("45m", "90s"); zero, negative or unparsable values are
	// ignored (the default applies).
	EnvImageBuildTimeout = "TELECHAOS_IMAGE_BUILD_TIMEOUT"
	// DefaultImageBuildTimeout bounds each of the two stages of
	// BuildClinicImage: the go build, then the engine's image build.
	DefaultImageBuildTimeout = 30 * time.Minute
)

// ImageBuildTimeout is the budget of each stage of BuildClinicImage:
// $TELECHAOS_IMAGE_BUILD_TIMEOUT when it is a positive Go duration, otherwise
// DefaultImageBuildTimeout. The caller's ctx can still end the build sooner.
func ImageBuildTimeout() time.Duration {
	if d, err := time.ParseDuration(strings.TrimSpace(os.Getenv(EnvImageBuildTimeout))); err == nil && d > 0 {
		return d
	}
	return DefaultImageBuildTimeout
}

// errBuildBudget is the cause of a build stage's context when the image
// build budget, not the caller, ended it.
var errBuildBudget = errors.New("image build budget exceeded")

// budgetErr names the stage and the budget when the budget ended it; other
// errors are returned as they are.
func budgetErr(ctx context.Context, stage string, budget time.Duration, started time.Time, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), errBuildBudget) {
		return err
	}
	took := time.Since(started).Round(time.Millisecond)
	if took > time.Second {
		took = took.Round(time.Second)
	}
	msg := fmt.Sprintf("%s: not done after %v, the image build budget is %v per stage (set %s to raise it)",
		stage, took, budget, EnvImageBuildTimeout)
	if !errors.Is(err, ErrBuild) {
		return fmt.Errorf("%w: %s: %w", ErrBuild, msg, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// BuildClinicImage compiles ./cmd/clinic of the module at repoRoot as a static
// binary (CGO_ENABLED=0, for the engine's architecture) and builds the FROM
// scratch image of build/clinic.Dockerfile through the Docker API, tagged tag
// and labelled org.telechaos.managed=true (and with this process as owner). It returns the image ID, usable as
// Run's image argument. Needs the go command and an engine; pulls nothing.
//
// Each stage (the go build, the engine's build) gets ImageBuildTimeout
// (default 30 minutes, $TELECHAOS_IMAGE_BUILD_TIMEOUT overrides it); a stage
// that runs out fails with ErrBuild naming the stage, the time it took and the
// budget.
func BuildClinicImage(ctx context.Context, repoRoot, tag string) (string, error) {
	return buildImage(ctx, repoRoot, clinicPackage, clinicDockerfile, tag)
}

// buildImage is BuildClinicImage for any main package and Dockerfile that
// follow the same context layout (the binary named clinic, an empty data/).
func buildImage(ctx context.Context, repoRoot, pkg, dockerfile, tag string) (string, error) {
	if err := validTag(tag); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "go.mod")); err != nil {
		return "", fmt.Errorf("%w: repoRoot %q is not a Go module root: %w", ErrInvalidOption, repoRoot, err)
	}
	df, err := os.ReadFile(filepath.Join(repoRoot, dockerfile))
	if err != nil {
		return "", fmt.Errorf("%w: read dockerfile: %w", ErrBuild, err)
	}
	cli, err := newClient(ctx)
	if err != nil {
		return "", err
	}
	defer cli.Close()

	goarch := runtime.GOARCH
	if info, err := cli.Info(ctx, client.InfoOptions{}); err == nil {
		if a := engineGOARCH(info.Info.Architecture); a != "" {
			goarch = a
		}
	}
	tmp, err := os.MkdirTemp("", "telechaos-build-")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "clinic")
	budget := ImageBuildTimeout()
	gctx, gcancel := context.WithTimeoutCause(ctx, budget, errBuildBudget)
	started := time.Now()
	err = goBuild(gctx, repoRoot, pkg, bin, goarch)
	err = budgetErr(gctx, fmt.Sprintf("static go build of %s for linux/%s", pkg, goarch), budget, started, err)
	gcancel()
	if err != nil {
		return "", err
	}

	// The engine's build is not cut short by ctx: a build interrupted
	// half-way leaves its intermediate images behind, untagged. It finishes
	// (FROM scratch takes seconds, more on a loaded engine) within the
	// budget and, if ctx ended meanwhile, the image is removed with its
	// parents.
	bctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), budget, errBuildBudget)
	defer cancel()
	started = time.Now()
	id, err := engineBuild(bctx, cli, df, bin, tag)
	err = budgetErr(bctx, "engine build of image "+tag, budget, started, err)
	if ctx.Err() != nil {
		if id == "" {
			if ins, ierr := cli.ImageInspect(bctx, tag); ierr == nil {
				id = ins.ID
			}
		}
		if id != "" {
			if _, rmErr := removeImage(bctx, cli, id, []string{tag}); rmErr != nil {
				err = errors.Join(err, rmErr)
			}
		}
		return "", fmt.Errorf("%w: image build %s: %w", ErrBuild, tag, errors.Join(ctx.Err(), err))
	}
	return id, err
}

// engineBuild sends the context to the engine and reads the build to its end.
func engineBuild(ctx context.Context, cli *testcontainers.DockerClient, df []byte, bin, tag string) (string, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, df, bin)) }()
	defer pr.Close()

	res, err := cli.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:       []string{tag},
		Dockerfile: "Dockerfile",
		// The owner label lets Sweep(ctx, SweepImages()) take the images of
		// finished runs and leave those of runs still going.
		Labels:      managedLabels(""),
		Remove:      true,
		ForceRemove: true,
		// The classic builder: BuildKit needs a session the API client
		// would have to provide, and FROM scratch needs nothing more.
		Version: build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("%w: image build %s: %w", ErrBuild, tag, err)
	}
	defer res.Body.Close()
	id, err := readBuildStream(res.Body)
	if err != nil {
		return "", fmt.Errorf("%w: image build %s: %w", ErrBuild, tag, err)
	}
	if id == "" {
		// Older engines do not send the aux ID; ask by tag.
		ins, err := cli.ImageInspect(ctx, tag)
		if err != nil {
			return "", fmt.Errorf("%w: inspect built image %s: %w", ErrBuild, tag, err)
		}
		id = ins.ID
	}
	return id, nil
}

// validTag catches the mistakes the engine would report less clearly.
func validTag(tag string) error {
	name := tag
	if i := strings.LastIndexByte(tag, ':'); i > strings.LastIndexByte(tag, '/') {
		name = tag[:i] // a ':' after the last '/' starts the tag, not a registry port
	}
	switch {
	case tag == "":
		return fmt.Errorf("%w: image tag is empty", ErrInvalidOption)
	case name == "" || strings.ContainsAny(tag, " \t\n") || name != strings.ToLower(name):
		return fmt.Errorf("%w: image tag %q: want a lowercase name[:tag] without spaces", ErrInvalidOption, tag)
	}
	return nil
}

// engineGOARCH maps the engine's uname architecture to GOARCH.
func engineGOARCH(arch string) string {
	switch arch {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return ""
}

// goBuild compiles pkg statically for linux/goarch into out.
func goBuild(ctx context.Context, dir, pkg, out, goarch string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: go build %s (after %v): %w\n%s", ErrBuild, pkg, time.Since(start).Round(time.Millisecond), err, strings.TrimSpace(outBuf.String()))
	}
	return nil
}

// writeContext writes the build context as a tar stream: Dockerfile, the
// binary as clinic and an empty data/ directory (the volume's mount point,
// created owned by the image's user).
func writeContext(w io.Writer, dockerfile []byte, bin string) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), ModTime: now}); err != nil {
		return err
	}
	if _, err := tw.Write(dockerfile); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}); err != nil {
		return err
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "clinic", Mode: 0o755, Size: st.Size(), ModTime: now}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return err
	}
	return tw.Close()
}

// buildMessage is one line of the engine's build progress stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// readBuildStream consumes the build output; it returns the image ID from
// the aux message and an error carrying the last lines if the build failed.
func readBuildStream(r io.Reader) (string, error) {
	var (
		id   string
		tail []string
	)
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return id, nil
			}
			return id, fmt.Errorf("read build output: %w", err)
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			tail = append(tail, s)
			if len(tail) > 10 {
				tail = tail[1:]
			}
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return "", fmt.Errorf("%s\n%s", msg, strings.Join(tail, "\n"))
		}
		if len(m.Aux) > 0 {
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
}

// RemoveImage removes an image by ID or tag, untagging every tag of it; an
// image that a container still uses stays and is reported as an error.
func RemoveImage(ctx context.Context, image string) error {
	if image == "" {
		return fmt.Errorf("%w: image is empty", ErrInvalidOption)
	}
	cli, err := newClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	ins, err := cli.ImageInspect(ctx, image)
	if err != nil {
		return fmt.Errorf("deploy: remove image %s: %w", image, err)
	}
	n, err := removeImage(ctx, cli, ins.ID, ins.RepoTags)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("deploy: remove image %s: still used by a container", image)
	}
	return nil
}
