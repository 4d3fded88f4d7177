package reports

import (
	"errors"
	"fmt"
	"math"
)

// Latency histograms in summary.json use one fixed layout of log buckets, so
// the histograms of several runs (shards) add up exactly and a merged
// percentile is as exact as each run's own: within one bucket (9%).
//
// Bucket i holds latencies in (HistBound(i-1), HistBound(i)] with HistBound(i)
// = 50µs·2^(i/8); bucket 0 also holds everything below, the last bucket
// everything above (~120 s).
const (
	HistSchema    = "log2-8-50us" // names the layout; merges refuse others
	HistBuckets   = 8*21 + 1      // 50µs .. 50µs·2^21 ≈ 105 s
	histMin       = 50e-6
	histPerOctave = 8
)

// ErrHistSchema: a histogram uses another bucket layout than HistSchema.
var ErrHistSchema = errors.New("unknown histogram schema")

// HistBound is the upper bound in seconds of bucket i.
func HistBound(i int) float64 { return histMin * math.Exp2(float64(i)/histPerOctave) }

// HistIndex is the bucket of a latency in seconds.
func HistIndex(sec float64) int {
	if !(sec > histMin) { // also NaN
		return 0
	}
	i := int(math.Ceil(math.Log2(sec/histMin)*histPerOctave - 1e-9))
	return min(max(i, 0), HistBuckets-1)
}

// Histogram is one op's latencies in the compact form summary.json keeps:
// Counts[k] is bucket Offset+k, trailing and leading empty buckets dropped.
type Histogram struct {
	Schema string  `json:"schema"`
	Count  int64   `json:"count"`
	Sum    float64 `json:"sum"` // seconds
	Max    float64 `json:"max"` // seconds, exact
	Offset int     `json:"offset"`
	Counts []int64 `json:"counts"`
}

// Buckets is the dense form of a histogram for accumulating.
type Buckets struct {
	N      [HistBuckets]int64
	Count  int64
	Sum    float64
	MaxSec float64
}

// Observe adds one latency in seconds.
func (b *Buckets) Observe(sec float64) {
	b.N[HistIndex(sec)]++
	b.Count++
	b.Sum += sec
	b.MaxSec = max(b.MaxSec, sec)
}

// Compact returns the compact Histogram of b (nil when b is empty).
func (b *Buckets) Compact() *Histogram {
	lo, hi := -1, -1
	for i, n := range b.N {
		if n != 0 {
			if lo < 0 {
				lo = i
			}
			hi = i
		}
	}
	if lo < 0 {
		return nil
	}
	h := &Histogram{Schema: HistSchema, Count: b.Count, Sum: b.Sum, Max: b.MaxSec, Offset: lo}
	h.Counts = append([]int64{}, b.N[lo:hi+1]...)
	return h
}

// Dense expands h; it checks the schema and the counts.
func (h *Histogram) Dense() (*Buckets, error) {
	if h.Schema != HistSchema {
		return nil, fmt.Errorf("%w %q (want %q)", ErrHistSchema, h.Schema, HistSchema)
	}
	if h.Offset < 0 || h.Offset+len(h.Counts) > HistBuckets {
		return nil, fmt.Errorf("histogram buckets %d..%d out of range 0..%d", h.Offset, h.Offset+len(h.Counts)-1, HistBuckets-1)
	}
	b := &Buckets{Count: h.Count, Sum: h.Sum, MaxSec: h.Max}
	var total int64
	for k, n := range h.Counts {
		if n < 0 {
			return nil, fmt.Errorf("histogram bucket %d: negative count %d", h.Offset+k, n)
		}
		b.N[h.Offset+k] = n
		total += n
	}
	if total != h.Count {
		return nil, fmt.Errorf("histogram count %d differs from its buckets' sum %d", h.Count, total)
	}
	return b, nil
}

// Add adds o into b.
func (b *Buckets) Add(o *Buckets) {
	for i := range b.N {
		b.N[i] += o.N[i]
	}
	b.Count += o.Count
	b.Sum += o.Sum
	b.MaxSec = max(b.MaxSec, o.MaxSec)
}

// Quantile is the nearest-rank q-quantile in seconds: the upper bound of the
// bucket holding that rank, never above the exact maximum. 0 when empty.
func (b *Buckets) Quantile(q float64) float64 {
	if b.Count == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(b.Count)))
	rank = min(max(rank, 1), b.Count)
	var cum int64
	for i, n := range b.N {
		cum += n
		if cum >= rank {
			return min(HistBound(i), b.MaxSec)
		}
	}
	return b.MaxSec
}

// Latency summarises b as the summary's percentiles.
func (b *Buckets) Latency() Latency {
	return Latency{Count: int(b.Count), P50: b.Quantile(.5), P90: b.Quantile(.9), P95: b.Quantile(.95),
		P99: b.Quantile(.99), Max: b.MaxSec}
}
