package harness

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/load"
	"github.com/telechaos/telechaos/harness/metrics"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// What the checks cost per request: the run's whole observer (metrics,
// latency, the repro op log and, through it, the oracle's evidence), serially
// and from every core at once. Each user makes 8 requests and is then
// replaced by a new one, as in a run, so per-user set-up is in the figure.
// The bench suite's oracle_overhead_pct times the same observer in a run
// against a clinic.
func BenchmarkRunObserve(b *testing.B) {
	users := make([]string, 1<<18)
	ledger := models.NewLedger()
	for i := range users {
		users[i] = fmt.Sprintf("u-%d", i)
		ledger.AddUser(users[i], models.Patient)
	}
	now := time.Now()
	obs := func(i int) driver.Observation {
		return driver.Observation{Op: driver.OpList, User: users[(i/8)%len(users)], Status: 200, Start: now, End: now.Add(time.Millisecond)}
	}
	for _, par := range []bool{false, true} {
		name := "serial"
		if par {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			r := &run{ledger: ledger, met: metrics.NewMetrics(prometheus.NewRegistry()), cnt: new(load.Counters)}
			r.or = oracle.New(r.ledger, oracle.Options{RecentOps: recentOps,
				History: func(user string) []oracle.OpNote { return r.oplog.Notes(user, recentOps) }})
			b.ReportAllocs()
			if !par {
				i := 0
				for b.Loop() {
					r.observe(obs(i))
					i++
				}
				return
			}
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r.observe(obs(int(next.Add(1))))
				}
			})
		})
	}
}
