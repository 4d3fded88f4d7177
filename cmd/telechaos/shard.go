package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/metrics"
)

// parseShard reads --shard I/N or --shards N (index from JOB_COMPLETION_INDEX).
// A sharded run needs --run-id: every shard must label its metrics and name
// its report directory with the same id.
func (f *runFlags) parseShard() (harness.Shard, error) {
	var sh harness.Shard
	var err error
	switch {
	case f.shard != "" && f.shards != 0:
		return sh, errors.New("--shard and --shards: give one (--shards takes the index from " + harness.EnvShardIndex + ")")
	case f.shard != "":
		sh, err = harness.ParseShard(f.shard)
	case f.given["shards"]:
		if f.shards < 1 {
			return sh, fmt.Errorf("--shards %d: want N >= 1", f.shards)
		}
		sh, err = harness.ShardFromEnv(f.shards)
	}
	if err != nil {
		return sh, err
	}
	if sh.Sharded() && f.runID == "" {
		return sh, fmt.Errorf("shard %s needs --run-id: the shards of one run must share it", sh)
	}
	if sh.Sharded() && f.deploy.image != "" {
		return sh, errors.New("--deploy and sharding: each shard would start its own target; deploy once and give every shard --target")
	}
	return sh, nil
}

// shardReportDir is <report>/<run-id>/shard-I (report defaults to ./telechaos-report).
func shardReportDir(report, runID string, sh harness.Shard) string {
	if report == "" {
		report = "telechaos-report"
	}
	return filepath.Join(report, runID, "shard-"+strconv.Itoa(sh.Index))
}

// pushShardMetrics is pushMetrics grouped by shard too (shards must not
// overwrite one another's group).
func pushShardMetrics(ctx context.Context, url string, res *harness.Result, sh harness.Shard, stderr io.Writer) {
	if res.Metrics == nil || res.Summary == nil {
		return
	}
	err := harness.PushShard(context.WithoutCancel(ctx), url, res.Metrics.Registry, res.Summary.RunID, res.Summary.Scenario, sh)
	if err != nil {
		fmt.Fprintf(stderr, "telechaos run: warning: %v\n", err)
		return
	}
	fmt.Fprintf(stderr, "telechaos: metrics pushed to %s (job %s, run_id %s, shard %d)\n", url, metrics.PushJob, res.Summary.RunID, sh.Index)
}
