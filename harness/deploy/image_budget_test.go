package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/internal/dockertest"
)

func TestImageBuildTimeoutFromEnv(t *testing.T) {
	for _, c := range []struct {
		env  string
		want time.Duration
	}{
		{"", DefaultImageBuildTimeout},
		{"45m", 45 * time.Minute},
		{" 90s ", 90 * time.Second},
		{"0", DefaultImageBuildTimeout},
		{"-5m", DefaultImageBuildTimeout},
		{"soon", DefaultImageBuildTimeout},
	} {
		t.Setenv(EnvImageBuildTimeout, c.env)
		if got := ImageBuildTimeout(); got != c.want {
			t.Errorf("%s=%q: budget %v, want %v", EnvImageBuildTimeout, c.env, got, c.want)
		}
	}
	if DefaultImageBuildTimeout < 20*time.Minute {
		t.Errorf("default budget %v: a cold static build on a loaded machine has taken more than 10 minutes", DefaultImageBuildTimeout)
	}
}

func TestBudgetErrNamesStageAndBudget(t *testing.T) {
	ctx, cancel := context.WithTimeoutCause(context.Background(), time.Nanosecond, errBuildBudget)
	defer cancel()
	<-ctx.Done()
	err := budgetErr(ctx, "static go build of ./cmd/clinic for linux/amd64", 7*time.Minute, time.Now(), errors.New("signal: killed"))
	if !errors.Is(err, ErrBuild) {
		t.Errorf("not ErrBuild: %v", err)
	}
	for _, want := range []string{"static go build of ./cmd/clinic", "budget is 7m0s", EnvImageBuildTimeout, "signal: killed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// A caller's own cancellation is not reported as the budget.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	orig := context.Canceled
	if got := budgetErr(cctx, "x", time.Minute, time.Now(), orig); got != orig {
		t.Errorf("caller cancellation rewritten: %v", got)
	}
	if got := budgetErr(ctx, "x", time.Minute, time.Now(), nil); got != nil {
		t.Errorf("nil error rewritten: %v", got)
	}
}

// With a budget too short for any build, BuildClinicImage fails at the go
// build and says so, with the budget and how to raise it.
func TestBuildClinicImageBudgetExceeded(t *testing.T) {
	dockertest.Require(t, DockerAvailable)
	t.Setenv(EnvImageBuildTimeout, "1ms")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := BuildClinicImage(ctx, repoRoot(t), "telechaos/clinic:budget-test")
	if err == nil {
		_ = RemoveImage(ctx, id)
		t.Fatal("built an image within 1ms")
	}
	t.Log(err)
	if !errors.Is(err, ErrBuild) {
		t.Errorf("not ErrBuild: %v", err)
	}
	for _, want := range []string{"static go build of ./cmd/clinic", "budget is 1ms", EnvImageBuildTimeout} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
