package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// PushJob is the Pushgateway job telechaos pushes under.
const PushJob = "telechaos"

// ErrPush: the Pushgateway refused the metrics or could not be reached.
var ErrPush = errors.New("push metrics")

// Push sends a run's final metrics to the Pushgateway at url, grouped by
// run_id and scenario under job "telechaos", so a short CI run that ended
// before Prometheus scraped it is still visible. It replaces any metrics of
// the same group (a re-run of one run id overwrites, never doubles).
func Push(ctx context.Context, url string, g prometheus.Gatherer, runID, scenario string) error {
	if url == "" {
		return fmt.Errorf("%w: empty Pushgateway URL", ErrPush)
	}
	if runID == "" || scenario == "" {
		return fmt.Errorf("%w: run id and scenario are needed as grouping labels", ErrPush)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p := push.New(url, PushJob).Gatherer(g).
		Grouping("run_id", runID).Grouping("scenario", scenario).
		Client(&http.Client{Timeout: 15 * time.Second})
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("%w to %s: %w", ErrPush, url, err)
	}
	return nil
}
