package reports

import (
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telechaos/telechaos/models"
)

// ErrMerge: the summaries cannot be merged (none given, or a histogram layout
// differs).
var ErrMerge = errors.New("cannot merge summaries")

// Merge joins the summaries of shards (or of separate runs) into one verdict.
// dirs[i] names where sums[i] came from; it is kept on every violation and
// fault window, so evidence links resolve from the merged report's parent.
// Counts and coverage add; every violation is kept; latency histograms add, so
// latency thresholds are re-evaluated exactly to the bucket; ratio thresholds
// add their parts; setup_rate adds (shards run side by side). The timeline is
// resampled on wall-clock seconds and summed (latency windows are not).
func Merge(sums []*Summary, dirs []string) (*Summary, error) {
	if len(sums) == 0 {
		return nil, fmt.Errorf("%w: no summaries", ErrMerge)
	}
	if len(dirs) != len(sums) {
		return nil, fmt.Errorf("%w: %d summaries but %d directories", ErrMerge, len(sums), len(dirs))
	}
	for i, s := range sums {
		if err := CheckSchema(path.Join(dirs[i], SummaryFile), s); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMerge, err)
		}
	}
	first := sums[0]
	m := &Summary{
		SchemaVersion: SchemaVersion,
		RunID:         "merged-" + first.RunID, Seed: first.Seed, Target: first.Target, StartedAt: first.StartedAt,
		ViolationsByInvariant: map[string]int{}, Latency: map[string]Latency{}, Violations: []Violation{},
		Expect: first.Expect, Shards: slices.Clone(dirs),
	}
	var names, repros, errs []string
	end := time.Time{}
	hists := map[string]*Buckets{}
	missingHist := map[string][]string{} // op -> shards that timed it without a histogram
	for i, s := range sums {
		if s.StartedAt.Before(m.StartedAt) {
			m.StartedAt = s.StartedAt
		}
		if e := s.StartedAt.Add(time.Duration(s.DurationSeconds * float64(time.Second))); e.After(end) {
			end = e
		}
		if !slices.Contains(m.Seeds, s.Seed) {
			m.Seeds = append(m.Seeds, s.Seed)
		}
		if !slices.Contains(names, s.Scenario) {
			names = append(names, s.Scenario)
		}
		if !slices.Contains(repros, s.Repro) {
			repros = append(repros, s.Repro)
		}
		if s.Error != "" {
			errs = append(errs, dirs[i]+": "+s.Error)
		}
		for _, b := range s.Bugs {
			if !slices.Contains(m.Bugs, b) {
				m.Bugs = append(m.Bugs, b)
			}
		}
		for _, inv := range s.Invariants {
			if !slices.Contains(m.Invariants, inv) {
				m.Invariants = append(m.Invariants, inv)
			}
		}
		m.Media = m.Media || s.Media
		m.Interrupted = m.Interrupted || s.Interrupted
		mergeJudgement(m, s)
		m.IgnoredViolations += s.IgnoredViolations
		addCounts(&m.Counts, s.Counts)
		for inv, n := range s.ViolationsByInvariant {
			m.ViolationsByInvariant[inv] += n
		}
		for _, v := range s.Violations {
			v.Shard = dirs[i]
			if v.Repro == "" {
				v.Repro = s.Repro
			}
			m.Violations = append(m.Violations, v)
		}
		for _, f := range s.TraceFiles {
			if safeRelPath(f) {
				m.TraceFiles = append(m.TraceFiles, dirs[i]+"/"+f)
			}
		}
		if s.Authz != nil {
			m.Authz = mergeAuthz(m.Authz, s.Authz)
		}
		if s.ICE != nil {
			if m.ICE == nil {
				m.ICE = &ICE{RelayOnly: s.ICE.RelayOnly}
			}
			m.ICE.Connected += s.ICE.Connected
			m.ICE.Relayed += s.ICE.Relayed
			m.ICE.RelayOnly = m.ICE.RelayOnly && s.ICE.RelayOnly
			if m.ICE.Connected > 0 {
				m.ICE.RelayedShare = float64(m.ICE.Relayed) / float64(m.ICE.Connected)
			}
		}
		for _, w := range s.FaultWindows {
			w.Shard = dirs[i]
			m.FaultWindows = append(m.FaultWindows, w)
		}
		for p, byFault := range s.Coverage {
			if m.Coverage == nil {
				m.Coverage = map[string]map[string]int64{}
			}
			if m.Coverage[p] == nil {
				m.Coverage[p] = map[string]int64{}
			}
			for f, n := range byFault {
				m.Coverage[p][f] += n
			}
		}
		for _, sf := range s.CoverageShortfalls {
			m.CoverageShortfalls = append(m.CoverageShortfalls, dirs[i]+": "+sf)
		}
		for op, l := range s.Latency {
			h := s.LatencyHistograms[op]
			if h == nil {
				if l.Count > 0 {
					missingHist[op] = append(missingHist[op], dirs[i])
				}
				continue
			}
			b, err := h.Dense()
			if err != nil {
				return nil, fmt.Errorf("%w: %s: latency histogram of %s: %w", ErrMerge, dirs[i], op, err)
			}
			if hists[op] == nil {
				hists[op] = &Buckets{}
			}
			hists[op].Add(b)
		}
	}
	if len(m.Seeds) == 1 {
		m.Seeds = nil
	}
	m.Scenario = strings.Join(names, "+")
	m.Repro = strings.Join(repros, " ; ")
	m.Error = strings.Join(errs, "; ")
	m.DurationSeconds = end.Sub(m.StartedAt).Seconds()
	for _, v := range m.Violations {
		if t := v.At.Sub(m.StartedAt).Seconds(); !v.At.IsZero() && (m.FirstViolationSeconds == nil || t < *m.FirstViolationSeconds) {
			m.FirstViolationSeconds = &t
		}
	}
	slices.SortStableFunc(m.Violations, func(a, b Violation) int { return a.At.Compare(b.At) })
	slices.SortStableFunc(m.FaultWindows, func(a, b FaultWindow) int { return a.Start.Compare(b.Start) })
	if len(hists) > 0 {
		m.LatencyHistograms = map[string]*Histogram{}
	}
	for op, b := range hists {
		m.LatencyHistograms[op] = b.Compact()
		m.Latency[op] = b.Latency()
	}
	for op := range missingHist {
		if _, ok := m.Latency[op]; !ok {
			// No shard can say; keep the worst shard's figures rather than none.
			for _, s := range sums {
				if l, ok := s.Latency[op]; ok {
					w := m.Latency[op]
					m.Latency[op] = Latency{Count: w.Count + l.Count, P50: max(w.P50, l.P50), P90: max(w.P90, l.P90),
						P95: max(w.P95, l.P95), P99: max(w.P99, l.P99), Max: max(w.Max, l.Max)}
				}
			}
		}
	}
	m.Thresholds = mergeThresholds(sums, dirs, hists, missingHist)
	m.Timeline = mergeTimelines(sums, m.StartedAt, m.DurationSeconds)

	o := models.Outcome{Violations: len(m.Violations), Interrupted: m.Interrupted, CoverageShortfalls: m.CoverageShortfalls}
	for _, t := range m.Thresholds {
		if !t.Pass {
			o.ThresholdsFailed = append(o.ThresholdsFailed, fmt.Sprintf("%s = %.4g (limit %s)", thresholdName(t), t.Value, t.Limit))
		}
	}
	for i, s := range sums {
		if s.Verdict == VerdictError && o.Failure == "" {
			o.Failure, o.Usage = dirs[i]+": "+s.Error, s.ExitCode == models.ExitUsage
		}
	}
	o.NotJudged = judgementShortfalls(m.Judgement)
	d := models.Decide(o)
	m.Verdict, m.ExitCode, m.Reason, m.Also = d.Verdict, d.ExitCode, d.Reason, d.Also
	switch m.Expect {
	case "", "pass":
		m.ExpectMet = m.Verdict == VerdictPass
	default:
		m.ExpectMet = m.ViolationsByInvariant[m.Expect] > 0
	}
	return m, nil
}

// mergeJudgement adds s's judged and not-judged counts into m's: the shards
// together judged what each did, and the share is recomputed on the sums
// against the strictest share any shard required.
func mergeJudgement(m, s *Summary) {
	for inv, j := range s.Judgement {
		if m.Judgement == nil {
			m.Judgement = map[string]Judgement{}
		}
		mj, seen := m.Judgement[inv]
		mj.Judged += j.Judged
		mj.NotJudged += j.NotJudged
		mj.Required = max(mj.Required, j.Required)
		if !seen || mj.Status == JudgementNotChecked {
			mj.Status = j.Status
		}
		for r, n := range j.Reasons {
			if mj.Reasons == nil {
				mj.Reasons, mj.Examples = map[string]int64{}, map[string]string{}
			}
			mj.Reasons[r] += n
			if _, ok := mj.Examples[r]; !ok && j.Examples[r] != "" {
				mj.Examples[r] = j.Examples[r]
			}
		}
		m.Judgement[inv] = mj
	}
}

// judgementShortfalls recomputes each merged invariant's share and status
// and returns the lines that keep the merged run from passing.
func judgementShortfalls(js map[string]Judgement) []string {
	var short []string
	for _, inv := range AllInvariants {
		j, ok := js[inv]
		if !ok || j.Status == JudgementNotChecked {
			continue
		}
		if line := j.Classify(inv, true); line != "" {
			short = append(short, line)
		}
		js[inv] = j
	}
	return short
}

// addCounts adds every numeric field of b into a.
func addCounts(a *Counts, b Counts) {
	av, bv := reflect.ValueOf(a).Elem(), reflect.ValueOf(b)
	for i := range av.NumField() {
		if f := av.Field(i); f.CanInt() {
			f.SetInt(f.Int() + bv.Field(i).Int())
		}
	}
}

// noteParts reads the parts of a ratio from a threshold note written by
// summaries that predate Num and Den: "5 of 100 requests", "90 acknowledged
// of 100 sent".
var noteParts = regexp.MustCompile(`^(\d+) (?:\w+ )?of (\d+)`)

func ratioParts(t Threshold) (num, den float64, ok bool) {
	if t.Den > 0 {
		return t.Num, t.Den, true
	}
	sm := noteParts.FindStringSubmatch(t.Note)
	if sm == nil {
		return 0, 0, false
	}
	a, _ := strconv.ParseFloat(sm[1], 64)
	b, _ := strconv.ParseFloat(sm[2], 64)
	if t.Metric == "media_loss" { // the note counts acknowledged frames
		a = b - a
	}
	return a, b, true
}

// mergeThresholds re-evaluates every distinct threshold of the shards.
func mergeThresholds(sums []*Summary, dirs []string, hists map[string]*Buckets, missing map[string][]string) []Threshold {
	type key struct{ metric, stat, limit string }
	var order []key
	bounds := map[key][2]*float64{} // max, min as a shard's run read them
	for _, s := range sums {
		for _, t := range s.Thresholds {
			k := key{t.Metric, t.Stat, t.Limit}
			if !slices.Contains(order, k) {
				order = append(order, k)
			}
			if _, ok := bounds[k]; !ok && (t.Max != nil || t.Min != nil) {
				bounds[k] = [2]*float64{t.Max, t.Min}
			}
		}
	}
	out := make([]Threshold, 0, len(order))
	for _, k := range order {
		t := Threshold{Metric: k.metric, Stat: k.stat, Limit: k.limit, Pass: true}
		err := func() error {
			switch {
			case strings.HasPrefix(k.metric, "latency."):
				op := strings.TrimPrefix(k.metric, "latency.")
				if sh := missing[op]; len(sh) > 0 {
					return fmt.Errorf("no latency histogram in %s: cannot merge percentiles", strings.Join(sh, ", "))
				}
				b := hists[op]
				if b == nil || b.Count == 0 {
					return errors.New("no samples: the operation never completed")
				}
				if k.stat == "max" {
					t.Value = b.MaxSec
				} else {
					q, err := strconv.ParseFloat(strings.TrimPrefix(k.stat, "p"), 64)
					if err != nil || !strings.HasPrefix(k.stat, "p") {
						return fmt.Errorf("unknown stat %q", k.stat)
					}
					t.Value = b.Quantile(q / 100)
				}
				t.Note = fmt.Sprintf("%d samples, merged histograms", b.Count)
			case k.metric == "setup_rate":
				for _, s := range sums {
					for _, st := range s.Thresholds {
						if st.Metric == k.metric && st.Stat == k.stat && st.Limit == k.limit {
							t.Value += st.Value
							break
						}
					}
				}
				t.Note = "sum over shards (they run side by side)"
			default:
				var num, den float64
				for i, s := range sums {
					for _, st := range s.Thresholds {
						if st.Metric != k.metric || st.Stat != k.stat || st.Limit != k.limit {
							continue
						}
						a, b, ok := ratioParts(st)
						if !ok {
							return fmt.Errorf("%s: no counts behind %s = %g: cannot merge", dirs[i], k.metric, st.Value)
						}
						num, den = num+a, den+b
						break
					}
				}
				if den == 0 {
					return errors.New("no samples")
				}
				t.Value, t.Num, t.Den = num/den, num, den
				t.Note = fmt.Sprintf("%g of %g, merged", num, den)
			}
			return nil
		}()
		if err != nil {
			t.Pass, t.Note = false, err.Error()
			out = append(out, t)
			continue
		}
		maxV, minV := bounds[k][0], bounds[k][1]
		if maxV == nil && minV == nil {
			// A summary written before the bounds were recorded.
			var err error
			if maxV, minV, err = parseLimit(k.limit); err != nil {
				t.Pass, t.Note = false, err.Error()
			}
		}
		t.Max, t.Min = maxV, minV
		if maxV != nil && t.Value > *maxV {
			t.Pass = false
		}
		if minV != nil && t.Value < *minV {
			t.Pass = false
		}
		out = append(out, t)
	}
	return out
}

// parseLimit reads "max 750ms", "min 2" or "max 1s, min 0.5" (seconds for
// durations), the form the harness writes in Threshold.Limit.
func parseLimit(s string) (maxV, minV *float64, err error) {
	for part := range strings.SplitSeq(s, ",") {
		kind, val, ok := strings.Cut(strings.TrimSpace(part), " ")
		if !ok {
			return nil, nil, fmt.Errorf("limit %q: want \"max V\" or \"min V\"", s)
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		var v float64
		if d, err := time.ParseDuration(val); err == nil {
			v = d.Seconds()
		} else if v, err = strconv.ParseFloat(val, 64); err != nil {
			return nil, nil, fmt.Errorf("limit %q: %q is neither a number nor a duration", s, val)
		}
		switch kind {
		case "max":
			maxV = &v
		case "min":
			minV = &v
		default:
			return nil, nil, fmt.Errorf("limit %q: unknown bound %q", s, kind)
		}
	}
	if maxV == nil && minV == nil {
		return nil, nil, fmt.Errorf("limit %q: no bound", s)
	}
	return maxV, minV, nil
}

// mergeTimelines sums the shards' timelines on a common clock: at each step,
// each shard contributes its last sample at or before that instant (its
// counters are cumulative, its gauges current).
func mergeTimelines(sums []*Summary, start time.Time, duration float64) []Sample {
	some := false
	for _, s := range sums {
		some = some || len(s.Timeline) > 0
	}
	if !some || !(duration > 0) {
		return nil
	}
	step := math.Max(1, math.Ceil(duration/1000))
	var out []Sample
	idx := make([]int, len(sums))
	for t := 0.0; ; t += step {
		t = math.Min(t, duration)
		at := start.Add(time.Duration(t * float64(time.Second)))
		var m Sample
		m.T = t
		for i, s := range sums {
			off := s.StartedAt.Sub(start).Seconds()
			for idx[i] < len(s.Timeline) && off+s.Timeline[idx[i]].T <= at.Sub(start).Seconds()+1e-9 {
				idx[i]++
			}
			if idx[i] == 0 {
				continue
			}
			p := s.Timeline[idx[i]-1]
			m.UsersActive += p.UsersActive
			m.CallsActive += p.CallsActive
			m.Calls += p.Calls
			m.Ops += p.Ops
			m.OpErrors += p.OpErrors
			m.FramesChecked += p.FramesChecked
			m.Violations += p.Violations
			m.Dropped += p.Dropped
			m.FramesSent += p.FramesSent
			m.FramesReceived += p.FramesReceived
		}
		out = append(out, m)
		if t >= duration {
			return out
		}
	}
}

// mergeAuthz adds b's matrix cells into a's (a new one if nil): the merged
// matrix ran if any shard's did.
func mergeAuthz(a, b *models.AuthzMatrix) *models.AuthzMatrix {
	if a == nil {
		a = &models.AuthzMatrix{Status: b.Status, Reason: b.Reason}
	}
	if b.Status == models.AuthzRun {
		a.Status, a.Reason = models.AuthzRun, ""
	}
	idx := map[[3]string]int{}
	for i, c := range a.Cells {
		idx[[3]string{c.Route, c.Identity, c.Variant}] = i
	}
	for _, c := range b.Cells {
		k := [3]string{c.Route, c.Identity, c.Variant}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(a.Cells)
			a.Cells = append(a.Cells, models.AuthzCell{Route: c.Route, Identity: c.Identity, Variant: c.Variant})
			i = len(a.Cells) - 1
		}
		a.Cells[i].Tried += c.Tried
		a.Cells[i].Denied += c.Denied
		a.Cells[i].Leaked += c.Leaked
		a.Cells[i].NotJudged += c.NotJudged
	}
	a.SortCells()
	return a
}
