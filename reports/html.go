package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// WriteHTML writes a self-contained index.html (no scripts, no external
// assets): the verdict first, then plots of the timeline with fault windows
// shaded and violations marked on the time axis, the violations with their
// evidence files and repro commands, thresholds, faults, coverage, latency and
// counts.
func WriteHTML(path string, s *Summary) error {
	b, err := HTML(s)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// HTML renders index.html.
func HTML(s *Summary) ([]byte, error) {
	var b bytes.Buffer
	if err := htmlTmpl.Execute(&b, htmlView(s)); err != nil {
		return nil, fmt.Errorf("render html report: %w", err)
	}
	return b.Bytes(), nil
}

type view struct {
	S          *Summary
	Started    string
	Duration   string
	Pass       bool
	Class      string // the kind of verdict in words
	Headline   string // why
	Traces     []string
	Ops        []latencyRow
	Charts     []template.HTML
	LatCharts  []template.HTML
	Invariants []invRow
	Violations []violRow
	Faults     []faultRow
	MoreFaults int
	CovFaults  []string
	Coverage   []covRow
	Thresholds []thrRow
}

type latencyRow struct {
	Op                      string
	Count                   int
	P50, P90, P95, P99, Max string
}

type invRow struct {
	ID      string
	N       int
	Checked bool
	// Judged says how much was judged ("judged 40 of 40"), and Short that
	// too little was: the row then fails even with no violation.
	Judged string
	Short  bool
	NotRun bool   // the run failed before this check judged anything
	Why    string // the reasons of what was not judged
}

type violRow struct {
	Violation
	N     int
	T     string
	Link  string
	Repro string
	Trace string // minimal trace, relative to the report directory
}

type faultRow struct {
	Fault, Params, Trigger, From, To, Err, Shard string
}

type covRow struct {
	Path   string
	Counts []int64
}

type thrRow struct {
	Name, Value, Limit, Note string
	Pass                     bool
	NotRun                   bool
}

// rel is t in seconds since the run's start.
func rel(s *Summary, t time.Time) float64 {
	if t.IsZero() || s.StartedAt.IsZero() {
		return 0
	}
	return t.Sub(s.StartedAt).Seconds()
}

func htmlView(s *Summary) view {
	v := view{S: s, Started: s.StartedAt.UTC().Format(time.RFC3339), Duration: secs(s.DurationSeconds),
		Pass: s.Verdict == VerdictPass}
	v.Class, v.Headline = verdictClass(s), VerdictReason(s)
	v.Traces = traceLinks(s)
	for _, op := range slices.Sorted(maps.Keys(s.Latency)) {
		l := s.Latency[op]
		v.Ops = append(v.Ops, latencyRow{op, l.Count, dur(l.P50), dur(l.P90), dur(l.P95), dur(l.P99), dur(l.Max)})
	}
	for _, inv := range AllInvariants {
		checked := len(s.Invariants) == 0 || slices.Contains(s.Invariants, inv)
		row := invRow{ID: inv, N: s.ViolationsByInvariant[inv], Checked: checked}
		row.NotRun = checked && row.N == 0 && !invariantRan(s, inv)
		if j, ok := s.Judgement[inv]; ok && checked {
			switch {
			case j.Status == JudgementNotExercised:
				row.Judged = "not exercised"
			case j.Status == JudgementShort:
				row.Short = true
				row.Judged = fmt.Sprintf("NOT JUDGED: %d of %d (%.0f%%, %.0f%% required)", j.Judged, j.Judged+j.NotJudged, 100*j.Share, 100*j.Required)
			default:
				row.Judged = fmt.Sprintf("judged %d of %d", j.Judged, j.Judged+j.NotJudged)
			}
			row.Why = strings.TrimSpace(strings.ReplaceAll(judgementText(j), "\n", "; "))
		}
		v.Invariants = append(v.Invariants, row)
	}
	for i, vi := range s.Violations {
		r := violRow{Violation: vi, N: i + 1, T: "-", Link: vi.Evidence, Repro: vi.Repro}
		if !vi.At.IsZero() {
			r.T = secs(rel(s, vi.At))
		}
		if vi.Shard != "" && vi.Evidence != "" {
			r.Link = vi.Shard + "/" + vi.Evidence
		}
		if r.Repro == "" {
			r.Repro = s.Repro
		}
		if tl := TraceLink(vi); linkable(tl) {
			r.Trace = tl
		}
		v.Violations = append(v.Violations, r)
	}
	for _, t := range s.Thresholds {
		v.Thresholds = append(v.Thresholds, thrRow{thresholdName(t), thresholdValue(t), t.Limit, t.Note, t.Pass, !thresholdRan(s, t)})
	}
	var bands []band
	for _, w := range s.FaultWindows {
		from, to := rel(s, w.Start), s.DurationSeconds
		end := "open at the end"
		if !w.End.IsZero() {
			to, end = rel(s, w.End), secs(rel(s, w.End))
		}
		label := w.Fault
		if len(w.Params) > 0 {
			label += " " + params(w.Params)
		}
		if w.Err != "" {
			label += " (error: " + w.Err + ")"
		}
		bands = append(bands, band{fault: w.Fault, from: from, to: to, label: label, failed: w.Err != ""})
		if len(v.Faults) < maxFaultRows {
			v.Faults = append(v.Faults, faultRow{w.Fault, params(w.Params), w.Trigger, secs(from), end, w.Err, w.Shard})
		}
	}
	v.MoreFaults = len(s.FaultWindows) - len(v.Faults)
	v.CovFaults, v.Coverage = coverageTable(s.Coverage)
	var marks []float64
	for _, vi := range s.Violations {
		if !vi.At.IsZero() {
			marks = append(marks, rel(s, vi.At))
		}
	}
	shade, always := faultShading(bands, s.DurationSeconds)
	v.Charts, v.LatCharts = timelinePlots(s, shade, marks)
	if len(bands) > 0 {
		maxX := s.DurationSeconds
		if n := len(s.Timeline); n > 0 {
			maxX = max(maxX, s.Timeline[n-1].T)
		}
		lanes := faultLanes(bands)
		title := "Fault windows, one lane per fault (red: injection or heal failed)"
		if len(always) > 0 {
			title += "; not shaded in the other plots, active nearly all run: " + strings.Join(always, ", ")
		}
		v.Charts = append(v.Charts, lanesPlot("plot-faults", title, maxX, lanes, marks))
	}
	return v
}

// maxFaultRows bounds the fault table; summary.json keeps every window.
const maxFaultRows = 100

// faultShading turns fault windows into the shading of the time plots: the
// union of the windows, so overlapping faults do not stack into one dark
// smear. Faults active for nearly the whole run (client faults drawn with a
// probability) would paint every plot: they are left to the lanes plot.
func faultShading(bands []band, duration float64) (shade []band, always []string) {
	cover := map[string]float64{}
	byFault := map[string][]band{}
	for _, b := range bands {
		byFault[b.fault] = append(byFault[b.fault], b)
	}
	var kept []band
	for _, f := range slices.Sorted(maps.Keys(byFault)) {
		for _, u := range union(byFault[f]) {
			cover[f] += u.to - u.from
		}
		if duration > 0 && cover[f] >= 0.9*duration {
			always = append(always, f)
			continue
		}
		kept = append(kept, byFault[f]...)
	}
	return union(kept), always
}

// union merges overlapping bands; a merged band names its faults and is
// failed when any of its windows failed.
func union(bands []band) []band {
	bs := slices.Clone(bands)
	slices.SortFunc(bs, func(a, b band) int { return cmpFloat(a.from, b.from) })
	var out []band
	for _, b := range bs {
		if n := len(out); n > 0 && b.from <= out[n-1].to {
			u := &out[n-1]
			u.to = max(u.to, b.to)
			u.failed = u.failed || b.failed
			if !slices.Contains(strings.Split(u.fault, ", "), b.fault) {
				u.fault += ", " + b.fault
			}
			u.label = "faults: " + u.fault
			continue
		}
		b.label = "fault: " + b.label
		out = append(out, b)
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// faultLanes groups windows by fault, in order of first appearance.
func faultLanes(bands []band) []lane {
	var lanes []lane
	idx := map[string]int{}
	for _, b := range bands {
		i, ok := idx[b.fault]
		if !ok {
			i = len(lanes)
			idx[b.fault] = i
			lanes = append(lanes, lane{name: b.fault})
		}
		lanes[i].bars = append(lanes[i].bars, b)
	}
	return lanes
}

func params(p map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		parts = append(parts, k+"="+p[k])
	}
	return strings.Join(parts, " ")
}

// coverageTable lays out path -> fault -> count with "none" first.
func coverageTable(c map[string]map[string]int64) ([]string, []covRow) {
	if len(c) == 0 {
		return nil, nil
	}
	set := map[string]bool{}
	for _, m := range c {
		for f := range m {
			set[f] = true
		}
	}
	faults := slices.Sorted(maps.Keys(set))
	sort.SliceStable(faults, func(i, j int) bool { return faults[i] == "none" && faults[j] != "none" })
	var rows []covRow
	for _, p := range slices.Sorted(maps.Keys(c)) {
		r := covRow{Path: p}
		for _, f := range faults {
			r.Counts = append(r.Counts, c[p][f])
		}
		rows = append(rows, r)
	}
	return faults, rows
}

// timelinePlots draws the run's timeline: throughput, active users and calls,
// media frames, violations, and one latency plot per timed op.
func timelinePlots(s *Summary, bands []band, marks []float64) (main, lat []template.HTML) {
	tl := s.Timeline
	if len(tl) < 2 {
		return nil, nil
	}
	maxX := max(s.DurationSeconds, tl[len(tl)-1].T)
	mk := func(id, title, unit string, ss ...series) plot {
		return plot{id: id, title: title, unit: unit, maxX: maxX, series: ss, bands: bands, marks: marks}
	}
	rate := func(name, color string, f func(Sample) int64) series {
		sr := series{name: name, color: color}
		for i := 1; i < len(tl); i++ {
			// The final sample comes moments after the last tick: a rate over
			// a sliver of a second is noise, so reach back at least half a
			// second.
			j := i - 1
			for j > 0 && tl[i].T-tl[j].T < 0.5 {
				j--
			}
			if dt := tl[i].T - tl[j].T; dt > 0 {
				sr.pts = append(sr.pts, [2]float64{tl[i].T, float64(f(tl[i])-f(tl[j])) / dt})
			}
		}
		return sr
	}
	level := func(name, color string, f func(Sample) int64) series {
		sr := series{name: name, color: color}
		for _, p := range tl {
			sr.pts = append(sr.pts, [2]float64{p.T, float64(f(p))})
		}
		return sr
	}
	main = append(main,
		mk("plot-ops", "Operations per second (requests to the target)", "req/s",
			rate("requests/s", palette[0], func(p Sample) int64 { return p.Ops }),
			rate("errors/s", "#d62728", func(p Sample) int64 { return p.OpErrors })).render(),
		mk("plot-active", "Active users and calls", "count",
			level("users active", palette[0], func(p Sample) int64 { return p.UsersActive }),
			level("calls active", palette[1], func(p Sample) int64 { return p.CallsActive })).render(),
		mk("plot-frames", "Media frames per second", "frames/s",
			rate("sent/s", palette[0], func(p Sample) int64 { return p.FramesSent }),
			rate("received live/s", palette[1], func(p Sample) int64 { return p.FramesReceived }),
			rate("checked by the oracle/s", palette[2], func(p Sample) int64 { return p.FramesChecked })).render(),
		mk("plot-violations", "Violations over time (cumulative; markers on the axis: first detection of each)", "violations",
			level("violations", "#d62728", func(p Sample) int64 { return p.Violations })).render(),
	)
	ops := map[string]bool{}
	for _, p := range tl {
		for op := range p.Latency {
			ops[op] = true
		}
	}
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		var p50, p95, p99 series
		p50 = series{name: "p50", color: palette[0]}
		p95 = series{name: "p95", color: palette[3]}
		p99 = series{name: "p99", color: "#d62728", dash: true}
		for _, p := range tl {
			l, ok := p.Latency[op]
			if !ok || l.N == 0 {
				continue
			}
			p50.pts = append(p50.pts, [2]float64{p.T, l.P50 * 1000})
			p95.pts = append(p95.pts, [2]float64{p.T, l.P95 * 1000})
			p99.pts = append(p99.pts, [2]float64{p.T, l.P99 * 1000})
		}
		pl := mk("plot-latency-"+op, "Latency of "+op+" over time (ops completed in each step)", "ms", p50, p95, p99)
		pl.w, pl.h = 880, 180
		lat = append(lat, pl.render())
	}
	return main, lat
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>telechaos {{.S.Verdict}}: {{.S.Scenario}} {{.S.RunID}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:940px;padding:0 1em;color:#222}
h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.92em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}
th{background:#f6f6f6}.num{text-align:right}
table.wide{table-layout:fixed;width:100%}table.wide td{overflow-wrap:anywhere}.ids{font-size:.85em;color:#444}
.pass{color:#1b6e1b}.fail{color:#b00020}code{background:#f4f4f4;padding:.1em .3em;word-break:break-all}
.verdict{padding:.8em 1em;border-radius:6px;margin:0 0 1em}.verdict h1{margin:0;font-size:1.6em}
.verdict.ok{background:#e6f4e6;border:1px solid #9c9}.verdict.bad{background:#fbe9eb;border:1px solid #e99}
figure{margin:.8em 0}figcaption{font-weight:600;font-size:.95em;margin-bottom:.2em}
.meta td:first-child{color:#555}
</style></head><body>
<div class="verdict {{if .Pass}}ok{{else}}bad{{end}}" id="verdict">
<h1>{{if .Pass}}PASS{{else}}{{.S.Verdict}}{{end}} <small>(exit {{.S.ExitCode}})</small></h1>
<div id="reason"><b>{{.Class}}</b>: {{.Headline}}</div>
{{range .S.Also}}<div>also: {{.}}</div>{{end}}
{{if .Traces}}<div id="traces">minimal trace{{if gt (len .Traces) 1}}s{{end}}: {{range $i, $t := .Traces}}{{if $i}}, {{end}}<a href="{{$t}}">{{$t}}</a>{{end}} <small>(<code>telechaos repro REPORT_DIR/FILE</code> replays one)</small></div>{{end}}
</div>
<table class="meta">
<tr><td>scenario</td><td><b>{{.S.Scenario}}</b></td></tr>
<tr><td>seed</td><td>{{if .S.Seeds}}{{range $i, $s := .S.Seeds}}{{if $i}}, {{end}}{{$s}}{{end}} (one per shard){{else}}{{.S.Seed}}{{end}}</td></tr>
<tr><td>target</td><td>{{.S.Target}}{{if .S.Bugs}}, bugs {{range .S.Bugs}}<code>{{.}}</code> {{end}}{{end}}</td></tr>
<tr><td>run</td><td>{{.S.RunID}}, started {{.Started}}, {{.Duration}}{{if not .S.Media}}, media off{{end}}</td></tr>
{{if .S.Shards}}<tr><td>merged shards</td><td>{{range .S.Shards}}<code>{{.}}</code> {{end}}</td></tr>{{end}}
<tr><td>repro</td><td><code>{{.S.Repro}}</code></td></tr>
{{if and .S.Expect (ne .S.Expect "pass")}}<tr><td>expect</td><td>{{.S.Expect}}: {{if .S.ExpectMet}}<span class="pass">met</span>{{else}}<span class="fail">not met</span>{{end}}</td></tr>{{end}}
</table>
{{if .S.Error}}<p class="fail">{{.S.Error}}</p>{{end}}
<h2>Checks</h2>
<table id="checks"><tr><th>invariant</th><th>distinct violations</th><th>judged</th><th>not judged, why</th></tr>
{{range .Invariants}}<tr><td>{{.ID}}</td><td class="{{if or .N .Short}}fail{{else if .NotRun}}{{else}}pass{{end}}">{{if not .Checked}}not checked{{else if .NotRun}}not run{{else}}{{.N}}{{end}}</td><td>{{.Judged}}</td><td>{{.Why}}</td></tr>{{end}}
</table>
{{if .Thresholds}}<table id="thresholds"><tr><th>threshold</th><th>value</th><th>limit</th><th>result</th><th>note</th></tr>
{{range .Thresholds}}<tr><td>{{.Name}}</td><td class="num">{{.Value}}</td><td>{{.Limit}}</td><td class="{{if not .Pass}}fail{{else if not .NotRun}}pass{{end}}">{{if not .Pass}}failed{{else if .NotRun}}not run{{else}}ok{{end}}</td><td>{{.Note}}</td></tr>{{end}}
</table>{{end}}
{{if .Violations}}<h2>Violations</h2>
<table id="violations" class="wide"><colgroup><col style="width:2.5em"><col style="width:11em"><col style="width:4.5em"><col style="width:15em"><col><col style="width:8em"></colgroup>
<tr><th>#</th><th>invariant</th><th>at</th><th>who</th><th>detail and repro</th><th>evidence</th></tr>
{{range .Violations}}<tr><td>{{.N}}</td><td>{{.Invariant}}</td><td>{{.T}}</td><td class="ids">{{if .Viewer}}viewer {{.Viewer}}<br>{{end}}{{if .Owner}}owner {{.Owner}}<br>{{end}}{{if .Recording}}recording {{.Recording}}<br>{{end}}{{if .Consultation}}consultation {{.Consultation}}{{end}}</td><td>{{.Detail}}<br><code>{{.Repro}}</code></td><td>{{if .Link}}<a href="{{.Link}}">{{.Link}}</a>{{end}}{{if .Trace}}<br>trace <a href="{{.Trace}}">{{.Trace}}</a>{{end}}</td></tr>{{end}}
</table>{{end}}
<h2>Plots</h2>
{{if .Charts}}<p>x axis: seconds since the start{{if .Faults}}; shaded: fault windows (hover for the fault){{end}}{{if .Violations}}; red markers: violations{{end}}.</p>{{end}}
{{range .Charts}}{{.}}{{else}}<p>no timeline</p>{{end}}
{{if .LatCharts}}<h2>Latency over time</h2>
<p>Percentiles of the operations completed in each step (about a second), from fixed log buckets (within 9%); in steps with few operations p95 and p99 are the step's slowest.</p>
{{range .LatCharts}}{{.}}{{end}}{{end}}
{{if .Faults}}<h2>Fault windows</h2>
<table id="faults"><tr><th>fault</th><th>params</th><th>trigger</th><th>from</th><th>to</th><th>error</th>{{if .S.Shards}}<th>shard</th>{{end}}</tr>
{{range .Faults}}<tr><td>{{.Fault}}</td><td>{{.Params}}</td><td>{{.Trigger}}</td><td>{{.From}}</td><td>{{.To}}</td><td class="{{if .Err}}fail{{end}}">{{.Err}}</td>{{if $.S.Shards}}<td>{{.Shard}}</td>{{end}}</tr>{{end}}
</table>{{if .MoreFaults}}<p>… {{.MoreFaults}} more windows in summary.json.</p>{{end}}{{end}}
{{if .Coverage}}<h2>Coverage</h2>
<p>How often each risky path ran under each fault ("none": no fault active).</p>
<table id="coverage"><tr><th>path</th>{{range .CovFaults}}<th>{{.}}</th>{{end}}</tr>
{{range .Coverage}}<tr><td>{{.Path}}</td>{{range .Counts}}<td class="num">{{.}}</td>{{end}}</tr>{{end}}
</table>
{{range .S.CoverageShortfalls}}<p class="fail">{{.}}</p>{{end}}{{end}}
<h2>Latency</h2>
<table id="latency"><tr><th>op</th><th>count</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>
{{range .Ops}}<tr><td>{{.Op}}</td><td class="num">{{.Count}}</td><td class="num">{{.P50}}</td><td class="num">{{.P90}}</td><td class="num">{{.P95}}</td><td class="num">{{.P99}}</td><td class="num">{{.Max}}</td></tr>{{end}}
</table>
<h2>Counts</h2>
<table id="counts">
<tr><td>patients / clinicians</td><td>{{.S.Counts.Patients}} / {{.S.Counts.Clinicians}}</td></tr>
<tr><td>arrivals dropped</td><td>{{.S.Counts.ArrivalsDropped}}</td></tr>
<tr><td>calls connected / ended / abandoned / failed</td><td>{{.S.Counts.CallsConnected}} / {{.S.Counts.CallsEnded}} / {{.S.Counts.CallsAbandoned}} / {{.S.Counts.CallsFailed}}</td></tr>
<tr><td>switches</td><td>{{.S.Counts.Switches}}</td></tr>
<tr><td>replays listed / fetched, tracks fetched</td><td>{{.S.Counts.ReplaysListed}} / {{.S.Counts.ReplaysFetched}}, {{.S.Counts.TracksFetched}}</td></tr>
<tr><td>frames sent / acknowledged / received live</td><td>{{.S.Counts.FramesSent}} / {{.S.Counts.FramesAcked}} / {{.S.Counts.FramesReceivedLive}}</td></tr>
<tr><td>frames checked (replay / live), untagged</td><td>{{.S.Counts.FramesChecked}} / {{.S.Counts.LiveFramesChecked}}, {{.S.Counts.UntaggedFrames}}</td></tr>
<tr><td>probes (skipped)</td><td>{{.S.Counts.Probes}} ({{.S.Counts.ProbesSkipped}})</td></tr>
<tr><td>durability checks</td><td>{{.S.Counts.DurabilityChecked}}</td></tr>
<tr><td>requests (non-2xx; of them, probes rightly denied)</td><td>{{.S.Counts.Operations}} ({{.S.Counts.OperationErrors}}; {{.S.Counts.ProbesDenied}})</td></tr>
</table>
<p><small>telechaos report: summary.json is the source; <code>telechaos report DIR</code> redraws this page.</small></p>
</body></html>
`))
