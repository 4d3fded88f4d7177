package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"telechaos/harness/driver"
	"telechaos/harness/oracle"
	"telechaos/models"
	"telechaos/reports"
	"telechaos/scenarios"
)

// Judgement coverage: every observation that should have been judged and
// could not be (an unreadable answer, a failed fetch of a granted track, a
// list that never came back readable) is counted per invariant as not
// judged, and a run that judged less than the required share of an invariant
// does not pass (exit 3, verdict not-judged). A run never reports PASS for an
// invariant it could not check.

// reasonOf names why an answer could not be judged, in a small fixed
// vocabulary (the oracle keeps one example per reason).
func reasonOf(err error) string {
	var se *driver.StatusError
	switch {
	case errors.As(err, &se) && se.Code >= 300 && se.Code < 400:
		return "redirected (not followed)"
	case errors.As(err, &se) && se.Code >= 500:
		return "answered 5xx"
	case errors.As(err, &se):
		return fmt.Sprintf("answered %d", se.Code)
	case errors.Is(err, errUnreadableTrack):
		return "unreadable track"
	case errors.Is(err, errNoLiveMedia):
		return "no live frame forwarded"
	case errors.Is(err, errNotConnected):
		return "call never connected"
	case errors.Is(err, driver.ErrGarbage):
		return "unreadable answer"
	case errors.Is(err, driver.ErrUnreachable):
		return "no answer"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	return "failed"
}

// errNoLiveMedia: a participant of a connected call received no judgeable
// live frame.
var errNoLiveMedia = errors.New("no live media")

// errNotConnected: a call's media never connected, so nothing live could be
// judged.
var errNotConnected = errors.New("call media never connected")

// errUnreadableTrack marks a 2xx media answer whose bytes are not the track
// container its metadata names.
var errUnreadableTrack = errors.New("unreadable track")

// stoppedByUs says whether a failure may be the run's own doing (an
// interrupt, the grace period ending): such failures are not counted against
// the target.
func (r *run) stoppedByUs(ctx context.Context) bool { return r.interrupted() || ctx.Err() != nil }

// notJudged counts one observation of inv that could not be judged because of err.
func (r *run) notJudged(ctx context.Context, inv string, err error) {
	if r.stoppedByUs(ctx) {
		return
	}
	r.or.NotJudged(inv, reasonOf(err), err.Error())
}

// lookFailed tells the oracle that viewer's look at cons' recording could not
// finish because of err (durability is then not judged for the pair).
func (r *run) lookFailed(ctx context.Context, viewer string, cons models.Consultation, what string, err error) {
	if r.stoppedByUs(ctx) {
		return
	}
	r.or.LookFailed(viewer, cons.ID, what+": "+reasonOf(err), err.Error())
}

// answerUnreadable counts a request whose 2xx answer the harness could not
// read as a failed request (error_rate): the driver saw a good answer, the
// content was not one.
func (r *run) answerUnreadable() { r.cnt.opErrors.Add(1) }

// judgement builds the per-invariant judgement table of a run and the lines
// that keep it from passing.
func judgement(st oracle.Stats, sc *scenarios.Scenario) (map[string]reports.Judgement, []string) {
	out := map[string]reports.Judgement{}
	var short []string
	for _, inv := range models.InvariantIDs() {
		j := st.Judgement[inv]
		rj := reports.Judgement{Judged: j.Judged, NotJudged: j.NotJudged, Reasons: j.Reasons, Examples: j.Examples,
			Required: sc.MinJudged(inv)}
		if line := rj.Classify(inv, len(sc.Invariants) == 0 || slices.Contains(sc.Invariants, inv)); line != "" {
			short = append(short, line+": "+reasonsLine(j))
		}
		out[inv] = rj
	}
	return out, short
}

// reasonsLine lists the reasons of what was not judged, most frequent first,
// with the first example of the most frequent one.
func reasonsLine(j oracle.Judgement) string {
	type rc struct {
		r string
		n int64
	}
	var rs []rc
	for r, n := range j.Reasons {
		rs = append(rs, rc{r, n})
	}
	sort.Slice(rs, func(a, b int) bool { return rs[a].n > rs[b].n || rs[a].n == rs[b].n && rs[a].r < rs[b].r })
	parts := make([]string, 0, len(rs))
	for i, x := range rs {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("%d more reasons", len(rs)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s", x.n, x.r))
	}
	line := strings.Join(parts, ", ")
	if len(rs) > 0 {
		if ex := j.Examples[rs[0].r]; ex != "" {
			line += " (first: " + ex + ")"
		}
	}
	return line
}

// judgementCollector exports the oracle's judged and not-judged counts per
// invariant (telechaos_judged_total, telechaos_not_judged_total), read at
// scrape time, so a dashboard or `report verdict --from-prometheus` sees what
// could not be judged as it happens.
type judgementCollector struct {
	or                *oracle.Oracle
	judged, notJudged *prometheus.Desc
}

func newJudgementCollector(or *oracle.Oracle) *judgementCollector {
	return &judgementCollector{or: or,
		judged: prometheus.NewDesc("telechaos_judged_total", "Observations the oracle judged, per invariant.",
			[]string{"invariant"}, nil),
		notJudged: prometheus.NewDesc("telechaos_not_judged_total", "Observations that should have been judged and could not be (unreadable answers, failed fetches), per invariant.",
			[]string{"invariant"}, nil),
	}
}

func (c *judgementCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.judged; ch <- c.notJudged }

func (c *judgementCollector) Collect(ch chan<- prometheus.Metric) {
	js := c.or.Stats().Judgement
	for _, inv := range models.InvariantIDs() {
		j := js[inv]
		ch <- prometheus.MustNewConstMetric(c.judged, prometheus.CounterValue, float64(j.Judged), inv)
		ch <- prometheus.MustNewConstMetric(c.notJudged, prometheus.CounterValue, float64(j.NotJudged), inv)
	}
}
