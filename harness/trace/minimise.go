package trace

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Subset returns the trace restricted to the users for which keepUser is true
// and the ops for which keepOp is true (nil keeps all), closed under the
// dependencies: dropping a user drops its ops and every op naming it (a book
// with them, so every op on that consultation); dropping a book drops the ops
// on its consultation. An op that waited for a dropped op waits for what that
// op waited for, so the ordering that is left still holds. Groups left with one
// op become plain ops.
func (tr *Trace) Subset(keepUser func(string) bool, keepOp func(int) bool) *Trace {
	out := &Trace{Header: tr.Header}
	out.Bugs = slices.Clone(tr.Bugs)
	users := map[string]bool{}
	for _, u := range tr.Users {
		if keepUser == nil || keepUser(u.Name) {
			users[u.Name] = true
			out.Users = append(out.Users, u)
		}
	}
	kept := make([]bool, len(tr.Ops))
	consults := map[string]bool{}
	for i, op := range tr.Ops {
		// A target op names no user: only keepOp drops it.
		ok := (op.Op.Target() || users[op.User]) && (op.With == "" || users[op.With])
		if ok && op.Op != OpRegister && keepOp != nil && !keepOp(i) {
			ok = false
		}
		if ok && op.Op.needsConsult() {
			if op.Op == OpBook {
				consults[op.Consult] = true
			} else {
				ok = consults[op.Consult]
			}
		}
		kept[i] = ok
	}
	// after lists, with dropped ops replaced by their own (transitive) afters.
	afters := make([][]int, len(tr.Ops))
	newIndex := make([]int, len(tr.Ops))
	n := 0
	for i, op := range tr.Ops {
		var a []int
		for _, d := range op.After {
			if kept[d] {
				a = append(a, d)
			} else {
				a = append(a, afters[d]...)
			}
		}
		slices.Sort(a)
		afters[i] = slices.Compact(a)
		if kept[i] {
			newIndex[i] = n
			n++
		} else {
			newIndex[i] = -1
		}
	}
	groupSize := map[int]int{}
	for i, op := range tr.Ops {
		if kept[i] && op.Group != nil {
			groupSize[*op.Group]++
		}
	}
	for i, op := range tr.Ops {
		if !kept[i] {
			continue
		}
		op.After = nil
		for _, d := range afters[i] {
			op.After = append(op.After, newIndex[d])
		}
		if op.Group != nil {
			if groupSize[*op.Group] < 2 {
				op.Group = nil
			} else {
				g := *op.Group
				op.Group = &g
			}
		}
		out.Ops = append(out.Ops, op)
	}
	return out
}

// MinOptions bound Minimise.
type MinOptions struct {
	Options
	// Budget bounds the whole minimisation (default 2 minutes); the best
	// trace so far is returned when it runs out.
	Budget time.Duration
	// MaxCandidates bounds the executions (default 200).
	MaxCandidates int
	// Tries: a candidate counts as failing if any of Tries executions shows
	// the violation (default 1; raise it for races).
	Tries int
	// Fails replaces the check of a candidate (default: RunOnce shows
	// tr.Expect). Tests and other executors plug in here.
	Fails func(ctx context.Context, tr *Trace) (bool, error)
}

// MinStats describe a minimisation.
type MinStats struct {
	Candidates              int // executions of candidates
	UsersBefore, UsersAfter int
	OpsBefore, OpsAfter     int
	Duration                time.Duration
	Exhausted               bool // the budget or candidate count ran out first
}

// errBudget stops ddmin when the budget is spent.
var errBudget = errors.New("minimisation budget spent")

// Minimise shrinks tr by delta debugging (ddmin), first over its users, then
// over its ops, keeping every candidate that still shows tr.Expect. The
// result is 1-minimal in users and ops unless the budget ran out (then it is
// the smallest failing trace found). tr itself is not checked; a non-failing
// tr comes back unchanged.
func Minimise(ctx context.Context, tr *Trace, opts MinOptions) (*Trace, MinStats, error) {
	start := time.Now()
	if opts.Budget <= 0 {
		opts.Budget = 2 * time.Minute
	}
	if opts.MaxCandidates <= 0 {
		opts.MaxCandidates = 200
	}
	opts.Tries = max(opts.Tries, 1)
	if opts.Fails == nil {
		o := opts.Options
		opts.Fails = func(ctx context.Context, c *Trace) (bool, error) {
			out, m, err := runOnce(ctx, c, o)
			if o.Media == nil {
				o.Media = m // the candidates share the first one's factory
			}
			return out.Reproduced, err
		}
	}
	deadline := start.Add(opts.Budget)
	st := MinStats{UsersBefore: len(tr.Users), OpsBefore: len(tr.Ops)}
	test := func(c *Trace) (bool, error) {
		if st.Candidates >= opts.MaxCandidates || time.Now().After(deadline) {
			return false, errBudget
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if c.Validate() != nil {
			return false, nil
		}
		for range opts.Tries {
			st.Candidates++
			ok, err := opts.Fails(ctx, c)
			if err != nil {
				return false, err
			}
			if ok {
				return true, nil
			}
		}
		return false, nil
	}

	best := tr.Clone()
	byUsers := func(t *Trace, keep []string) *Trace {
		return t.Subset(func(u string) bool { return slices.Contains(keep, u) }, nil)
	}
	// byOps keeps the ops of the kept units and every op no unit covers.
	byOps := func(units [][]int) func(t *Trace, keep [][]int) *Trace {
		covered := map[int]bool{}
		for _, u := range units {
			for _, i := range u {
				covered[i] = true
			}
		}
		return func(t *Trace, keep [][]int) *Trace {
			kept := map[int]bool{}
			for _, u := range keep {
				for _, i := range u {
					kept[i] = true
				}
			}
			return t.Subset(nil, func(i int) bool { return kept[i] || !covered[i] })
		}
	}
	var err error
	// Users first: dropping one drops a whole slice of the schedule.
	best, err = ddmin(best, userUnits(best), byUsers, test)
	if err == nil {
		// Then ops, a join or switch together with the sends that follow
		// it (a send without them only fails, slowly).
		units := opUnits(best, true)
		best, err = ddmin(best, units, byOps(units), test)
	}
	if err == nil {
		// Dropping ops can leave users without a part: one more pass.
		best, err = ddmin(best, userUnits(best), byUsers, test)
	}
	if err == nil {
		// Finally the sends on their own: some violations need no frames.
		units := opUnits(best, false)
		best, err = ddmin(best, units, byOps(units), test)
	}
	st.UsersAfter, st.OpsAfter = len(best.Users), len(best.Ops)
	st.Duration = time.Since(start)
	if errors.Is(err, errBudget) {
		st.Exhausted = true
		err = nil
	}
	return best, st, err
}

func userUnits(tr *Trace) []string {
	out := make([]string, len(tr.Users))
	for i, u := range tr.Users {
		out[i] = u.Name
	}
	return out
}

// opUnits are the ops ddmin may drop, as units dropped together
// (registrations go with their users). withJoins: every op, each send with the
// closest earlier join or switch of the same user and consultation (a send
// without them only fails, slowly); otherwise the send ops alone, one unit
// each.
func opUnits(tr *Trace, withJoins bool) [][]int {
	var out [][]int
	owner := map[[2]string]int{} // user, consult -> unit of its last join/switch
	for i, op := range tr.Ops {
		if op.Op == OpRegister || (!withJoins && !op.Op.needsN()) {
			continue
		}
		k := [2]string{op.User, op.Consult}
		if withJoins && op.Op.needsN() {
			if u, ok := owner[k]; ok {
				out[u] = append(out[u], i)
				continue
			}
		}
		if op.Op == OpJoin || op.Op == OpSwitch {
			owner[k] = len(out)
		}
		out = append(out, []int{i})
	}
	return out
}

// ddmin is Zeller's delta debugging over units of base: apply(base, subset)
// builds a candidate, test says whether it still fails. It returns the
// smallest failing candidate found (base if none), and errBudget or ctx's
// error when it had to stop early.
func ddmin[U any](base *Trace, units []U, apply func(*Trace, []U) *Trace, test func(*Trace) (bool, error)) (*Trace, error) {
	best := base
	cur := units
	n := 2
	for len(cur) >= 2 {
		chunks := split(cur, n)
		reduced := false
		for _, c := range chunks {
			cand := apply(base, c)
			ok, err := test(cand)
			if err != nil {
				return best, err
			}
			if ok {
				cur, best, n, reduced = c, cand, 2, true
				break
			}
		}
		if !reduced && n > 2 {
			for i := range chunks {
				comp := complement(chunks, i)
				cand := apply(base, comp)
				ok, err := test(cand)
				if err != nil {
					return best, err
				}
				if ok {
					cur, best, n, reduced = comp, cand, max(n-1, 2), true
					break
				}
			}
		}
		if !reduced {
			if n >= len(cur) {
				break
			}
			n = min(2*n, len(cur))
		}
	}
	if len(cur) == 1 {
		// A single unit left: maybe none is needed at all.
		cand := apply(base, nil)
		if ok, err := test(cand); err != nil {
			return best, err
		} else if ok {
			best = cand
		}
	}
	return best, nil
}

func split[U any](s []U, n int) [][]U {
	out := make([][]U, 0, n)
	for i := range n {
		lo, hi := i*len(s)/n, (i+1)*len(s)/n
		if lo < hi {
			out = append(out, s[lo:hi])
		}
	}
	return out
}

func complement[U any](chunks [][]U, skip int) []U {
	var out []U
	for i, c := range chunks {
		if i != skip {
			out = append(out, c...)
		}
	}
	return out
}
