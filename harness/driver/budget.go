package driver

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// defaultBudget is the budget of a target whose options name none.
const defaultBudget = 256 << 20

// Budget bounds the memory the answers being read take at once, across all
// the concurrent requests of the targets that share it: a request reserves
// what it will buffer before buffering it, and gives it back when the
// caller is done with the bytes. Without it, a hostile target answering
// hundreds of users with MaxBody each could take MaxBody times as many.
//
// A body of known length waits for its whole reservation (bounded by the
// request's context and timeout), holding nothing meanwhile. A body of
// unknown length (chunked, or to the close) waits only for its first step
// and then grows without waiting, failing with ErrTooLarge when the budget
// has no room: waiting while holding part of the budget could deadlock
// requests that each hold part and wait for more.
type Budget struct {
	sem   *semaphore.Weighted
	size  int64
	inUse atomic.Int64
	peak  atomic.Int64 // the most ever in use, for tests
}

// NewBudget returns a budget of bytes (<= 0: 256 MiB).
func NewBudget(bytes int64) *Budget {
	if bytes <= 0 {
		bytes = defaultBudget
	}
	return &Budget{sem: semaphore.NewWeighted(bytes), size: bytes}
}

// Size returns the budget's bytes.
func (b *Budget) Size() int64 { return b.size }

// InUse returns the bytes reserved now.
func (b *Budget) InUse() int64 { return b.inUse.Load() }

func (b *Budget) took(n int64) {
	v := b.inUse.Add(n)
	for p := b.peak.Load(); v > p && !b.peak.CompareAndSwap(p, v); p = b.peak.Load() {
	}
}

// reservation is what one answer holds of a Budget. The zero value, and a
// nil one, reserve nothing.
type reservation struct {
	budget *Budget
	n      int64
	ctx    context.Context // the caller's
	// deadline, if set, bounds a wait beyond ctx: the request's timeout.
	deadline time.Time
}

// reserve makes the reservation total bytes, waiting if it holds nothing
// yet, else only if there is room now.
func (r *reservation) reserve(total int64) error {
	if r == nil || r.budget == nil || total <= r.n {
		return nil
	}
	b := r.budget
	if total > b.size {
		return &tooLargeError{size: total, atLeast: r.n > 0, limit: b.size, budget: true}
	}
	more := total - r.n
	if !b.sem.TryAcquire(more) {
		if r.n > 0 {
			return &tooLargeError{size: total, atLeast: true, limit: b.size, budget: true, busy: true}
		}
		ctx := r.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		if !r.deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, r.deadline)
			defer cancel()
		}
		if err := b.sem.Acquire(ctx, more); err != nil {
			if r.ctx != nil && r.ctx.Err() != nil {
				return r.ctx.Err() // the caller's, not the budget's
			}
			// The request's time ran out waiting: the budget's doing.
			return &tooLargeError{size: total, limit: b.size, budget: true, busy: true}
		}
	}
	r.n = total
	b.took(more)
	return nil
}

// release gives the reservation back.
func (r *reservation) release() {
	if r == nil || r.n == 0 {
		return
	}
	r.budget.inUse.Add(-r.n)
	r.budget.sem.Release(r.n)
	r.n = 0
}
