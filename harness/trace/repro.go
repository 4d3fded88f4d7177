package trace

import (
	"context"
	"fmt"
)

// ReproOptions configure Repro.
type ReproOptions struct {
	Options
	Times int // executions; default 1
}

// Repro replays the trace in file opts.Times times (each against a fresh
// embedded clinic, the --target URL with new users, or whatever target a
// registered scheme opens: see RunOnce) and counts the executions that
// showed the trace's expected violation. A bad trace is a *ParseError
// naming the line; a target reference no scheme opens wraps
// target.ErrBadRef; a trace with target ops (crash_target, restart_target)
// and a --target that cannot be stopped (a URL) wraps ErrNeedsEmbedded; an
// unreachable target wraps ErrTarget, with the executions done so far
// counted.
func Repro(ctx context.Context, file string, opts ReproOptions) (reproduced, total int, err error) {
	tr, err := ParseFileContext(ctx, file)
	if err != nil {
		return 0, 0, err
	}
	if err := CheckTarget(tr, opts.Target); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", file, err)
	}
	times := max(opts.Times, 1)
	for range times {
		if err := ctx.Err(); err != nil {
			return reproduced, total, fmt.Errorf("repro: %w", err)
		}
		out, m, err := runOnce(ctx, tr, opts.Options)
		if opts.Media == nil {
			opts.Media = m // the executions share the first one's factory
		}
		if err != nil {
			return reproduced, total, fmt.Errorf("repro run %d: %w", total+1, err)
		}
		total++
		if out.Reproduced {
			reproduced++
		}
	}
	return reproduced, total, nil
}
