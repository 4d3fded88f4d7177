package metrics

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// RunLabels are the constant labels a run's scraped metrics carry: run_id,
// and shard ("I") when the run is sharded (shard >= 0).
func RunLabels(runID string, shard int) prometheus.Labels {
	l := prometheus.Labels{"run_id": runID}
	if shard >= 0 {
		l["shard"] = strconv.Itoa(shard)
	}
	return l
}

// Handler serves reg on /metrics with labels added to every series, and the
// harness process's own health (goroutines, heap, RSS, fds) beside it: a
// load generator that is itself starved skews every latency it reports. The
// labels are added at scrape time, not on the registry: Push groups by
// run_id (and shard), and the Pushgateway refuses metrics that already carry
// a grouping label. The process collectors stay out of reg, so pushes and
// merges carry the run's figures only.
func Handler(reg *prometheus.Registry, labels prometheus.Labels) http.Handler {
	rt := prometheus.NewRegistry()
	rt.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := labelGatherer{g: prometheus.Gatherers{reg, rt}, labels: labels}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// labelGatherer adds constant labels to every metric of g.
type labelGatherer struct {
	g      prometheus.Gatherer
	labels prometheus.Labels
}

func (lg labelGatherer) Gather() ([]*dto.MetricFamily, error) {
	fams, err := lg.g.Gather()
	keys := make([]string, 0, len(lg.labels))
	for k := range lg.labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, f := range fams {
		for _, m := range f.Metric {
			for _, k := range keys {
				if slices.ContainsFunc(m.Label, func(p *dto.LabelPair) bool { return p.GetName() == k }) {
					continue
				}
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(k), Value: proto.String(lg.labels[k])})
			}
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
	}
	return fams, err
}

// PushShard is Push for one shard (shard >= 0): grouped by run_id, scenario
// and shard, so the shards of one run do not overwrite each other's group.
// A negative shard is an unsharded run: Push.
func PushShard(ctx context.Context, url string, g prometheus.Gatherer, runID, scenario string, shard int) error {
	if shard < 0 {
		return Push(ctx, url, g, runID, scenario)
	}
	if url == "" || runID == "" || scenario == "" {
		return fmt.Errorf("%w: URL, run id and scenario are needed", ErrPush)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p := push.New(url, PushJob).Gatherer(g).
		Grouping("run_id", runID).Grouping("scenario", scenario).Grouping("shard", strconv.Itoa(shard)).
		Client(&http.Client{Timeout: 15 * time.Second})
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("%w to %s: %w", ErrPush, url, err)
	}
	return nil
}
