package harness

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/harness/executor"
	"github.com/telechaos/telechaos/harness/metrics"
)

// Sharding splits one run's population over N processes: see
// executor.Shard (docs/design.md section 11).
type Shard = executor.Shard

// Sharding's names, re-exported for the CLI and for Go callers of Run.
var (
	ErrShard     = executor.ErrShard
	ParseShard   = executor.ParseShard
	ShardFromEnv = executor.ShardFromEnv
)

// EnvShardIndex is the variable a Kubernetes Indexed Job sets in each pod.
const EnvShardIndex = executor.EnvShardIndex

// shardPatient runs the shard's k-th patient under its global index.
func (r *run) shardPatient(ctx context.Context, k int) { r.vu.Patient(ctx, r.cfg.Shard.Global(k)) }

// shardIndex is the run's shard for metrics labels and pushes (-1: unsharded).
func shardIndex(s Shard) int {
	if s.Sharded() {
		return s.Index
	}
	return -1
}

// ShardLabels are the constant labels a run's scraped metrics carry: run_id,
// and shard when sharded.
func ShardLabels(runID string, s Shard) prometheus.Labels {
	return metrics.RunLabels(runID, shardIndex(s))
}

// metricsHandler serves the run's registry with ShardLabels on every series.
func (r *run) metricsHandler() http.Handler {
	return metrics.Handler(r.cfg.Registry, ShardLabels(r.cfg.RunID, r.cfg.Shard))
}

// PushShard is metrics.Push for one shard of a run (Push when unsharded).
func PushShard(ctx context.Context, url string, g prometheus.Gatherer, runID, scenario string, s Shard) error {
	return metrics.PushShard(ctx, url, g, runID, scenario, shardIndex(s))
}
