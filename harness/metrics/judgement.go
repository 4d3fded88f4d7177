package metrics

import (
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"

	"github.com/prometheus/client_golang/prometheus"
)

// judgementCollector exports the oracle's judged and not-judged counts per
// invariant (telechaos_judged_total, telechaos_not_judged_total), read at
// scrape time, so a dashboard or `report verdict --from-prometheus` sees what
// could not be judged as it happens.
type judgementCollector struct {
	stats             func() oracle.Stats
	judged, notJudged *prometheus.Desc
}

// NewJudgementCollector exports the judged and not-judged counts that stats
// returns (the run's oracle), read at scrape time.
func NewJudgementCollector(stats func() oracle.Stats) prometheus.Collector {
	return &judgementCollector{stats: stats,
		judged: prometheus.NewDesc("telechaos_judged_total", "Observations the oracle judged, per invariant.",
			[]string{"invariant"}, nil),
		notJudged: prometheus.NewDesc("telechaos_not_judged_total", "Observations that should have been judged and could not be (unreadable answers, failed fetches), per invariant.",
			[]string{"invariant"}, nil),
	}
}

func (c *judgementCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.judged; ch <- c.notJudged }

func (c *judgementCollector) Collect(ch chan<- prometheus.Metric) {
	js := c.stats().Judgement
	for _, inv := range models.InvariantIDs() {
		j := js[inv]
		ch <- prometheus.MustNewConstMetric(c.judged, prometheus.CounterValue, float64(j.Judged), inv)
		ch <- prometheus.MustNewConstMetric(c.notJudged, prometheus.CounterValue, float64(j.NotJudged), inv)
	}
}
