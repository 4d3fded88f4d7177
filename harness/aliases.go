package harness

import "telechaos/harness/metrics"

// Names that moved to package metrics, kept while the files that still use
// them (vu.go, shard.go, the CLI's Prometheus verdict, bench) move over in
// parallel work; remove once no file uses them.
const (
	LatBook   = metrics.LatBook
	LatJoin   = metrics.LatJoin
	LatSwitch = metrics.LatSwitch
	LatEnd    = metrics.LatEnd
	LatList   = metrics.LatList
	LatReplay = metrics.LatReplay
	LatMedia  = metrics.LatMedia
	PushJob   = metrics.PushJob

	OutcomeOK     = metrics.OutcomeOK
	OutcomeDenied = metrics.OutcomeDenied
	OutcomeError  = metrics.OutcomeError
)

var (
	ErrPush    = metrics.ErrPush
	Push       = metrics.Push
	NewMetrics = metrics.NewMetrics
	// LatencyOps lists the timed operations in report order.
	LatencyOps = metrics.LatencyOps
)
