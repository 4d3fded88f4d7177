package reports

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"
)

// WriteHTML writes a self-contained report.html (no scripts, no external
// assets): verdict, counts, thresholds, latency percentiles, violations with
// their evidence files, and SVG plots of the timeline.
func WriteHTML(path string, s *Summary) error {
	var b bytes.Buffer
	if err := htmlTmpl.Execute(&b, htmlView(s)); err != nil {
		return fmt.Errorf("render html report: %w", err)
	}
	return writeFileAtomic(path, b.Bytes())
}

type series struct {
	name, color string
	pts         [][2]float64
}

type view struct {
	S          *Summary
	Started    string
	Ops        []latencyRow
	Charts     []template.HTML
	Invariants []invRow
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
}

func htmlView(s *Summary) view {
	v := view{S: s, Started: s.StartedAt.UTC().Format(time.RFC3339)}
	ops := make([]string, 0, len(s.Latency))
	for op := range s.Latency {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	secs := func(x float64) string {
		return time.Duration(x * float64(time.Second)).Round(100 * time.Microsecond).String()
	}
	for _, op := range ops {
		l := s.Latency[op]
		v.Ops = append(v.Ops, latencyRow{op, l.Count, secs(l.P50), secs(l.P90), secs(l.P95), secs(l.P99), secs(l.Max)})
	}
	for _, inv := range AllInvariants {
		checked := len(s.Invariants) == 0
		for _, c := range s.Invariants {
			checked = checked || c == inv
		}
		v.Invariants = append(v.Invariants, invRow{inv, s.ViolationsByInvariant[inv], checked})
	}
	tl := s.Timeline
	if len(tl) >= 2 {
		var users, calls, ops, errs, viol series
		users = series{name: "users active", color: "#1f77b4"}
		calls = series{name: "calls active", color: "#2ca02c"}
		ops = series{name: "requests/s", color: "#9467bd"}
		errs = series{name: "errors/s", color: "#d62728"}
		viol = series{name: "violations (cumulative)", color: "#d62728"}
		for i, p := range tl {
			users.pts = append(users.pts, [2]float64{p.T, float64(p.UsersActive)})
			calls.pts = append(calls.pts, [2]float64{p.T, float64(p.CallsActive)})
			viol.pts = append(viol.pts, [2]float64{p.T, float64(p.Violations)})
			if i > 0 {
				dt := p.T - tl[i-1].T
				if dt > 0 {
					ops.pts = append(ops.pts, [2]float64{p.T, float64(p.Ops-tl[i-1].Ops) / dt})
					errs.pts = append(errs.pts, [2]float64{p.T, float64(p.OpErrors-tl[i-1].OpErrors) / dt})
				}
			}
		}
		v.Charts = append(v.Charts,
			chart("Active users and calls", users, calls),
			chart("Throughput (requests to the target)", ops, errs),
			chart("Violations over time", viol))
	}
	return v
}

// chart renders line series as an inline SVG (x: seconds since start).
func chart(title string, ss ...series) template.HTML {
	const w, h, pad = 720.0, 200.0, 40.0
	var maxX, maxY float64
	for _, s := range ss {
		for _, p := range s.pts {
			maxX, maxY = math.Max(maxX, p[0]), math.Max(maxY, p[1])
		}
	}
	if maxX <= 0 {
		maxX = 1
	}
	if maxY <= 0 {
		maxY = 1
	}
	x := func(v float64) float64 { return pad + v/maxX*(w-2*pad) }
	y := func(v float64) float64 { return h - pad + -v/maxY*(h-2*pad) }
	var b strings.Builder
	fmt.Fprintf(&b, `<figure><figcaption>%s</figcaption><svg viewBox="0 0 %g %g" width="%g" height="%g" role="img">`,
		html.EscapeString(title), w, h, w, h)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#999"/>`, pad, h-pad, w-pad, h-pad)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#999"/>`, pad, pad, pad, h-pad)
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%.4g</text>`, pad-4, pad+4, maxY)
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">0</text>`, pad-4, h-pad+4)
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%.0fs</text>`, w-pad, h-pad+16, maxX)
	for i, s := range ss {
		var pts strings.Builder
		for _, p := range s.pts {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p[0]), y(p[1]))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.color, strings.TrimSpace(pts.String()))
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" fill="%s">%s</text>`, pad+8+float64(i)*180, pad-12, s.color, html.EscapeString(s.name))
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String()) // built from numbers and escaped names only
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>telechaos {{.S.Scenario}} {{.S.RunID}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
.pass{color:#2a7a2a}.fail{color:#b00020}code{background:#f4f4f4;padding:.1em .3em}figure{margin:1em 0}
</style></head><body>
<h1>telechaos: <span class="{{if eq .S.Verdict "pass"}}pass{{else}}fail{{end}}">{{.S.Verdict}}</span> (exit {{.S.ExitCode}})</h1>
<p>scenario <b>{{.S.Scenario}}</b>, seed {{.S.Seed}}, target {{.S.Target}}{{if .S.Bugs}}, bugs {{range .S.Bugs}}<code>{{.}}</code> {{end}}{{end}};
run {{.S.RunID}} started {{.Started}}, {{printf "%.1f" .S.DurationSeconds}} s.</p>
{{if .S.Error}}<p class="fail">{{.S.Error}}</p>{{end}}
<p>repro: <code>{{.S.Repro}}</code></p>
{{if and .S.Expect (ne .S.Expect "pass")}}<p>expect {{.S.Expect}}: {{if .S.ExpectMet}}<span class="pass">met</span>{{else}}<span class="fail">not met</span>{{end}}</p>{{end}}
<h2>Invariants</h2>
<table><tr><th>invariant</th><th>distinct violations</th></tr>
{{range .Invariants}}<tr><td>{{.ID}}</td><td class="{{if .N}}fail{{else}}pass{{end}}">{{if .Checked}}{{.N}}{{else}}not checked{{end}}</td></tr>{{end}}
</table>
{{if .S.Violations}}<h2>Violations</h2>
<table><tr><th>invariant</th><th>viewer</th><th>owner</th><th>recording</th><th>detail</th><th>evidence</th></tr>
{{range .S.Violations}}<tr><td>{{.Invariant}}</td><td>{{.Viewer}}</td><td>{{.Owner}}</td><td>{{.Recording}}</td><td>{{.Detail}}</td><td>{{if .Evidence}}<a href="{{.Evidence}}">{{.Evidence}}</a>{{end}}</td></tr>{{end}}
</table>{{end}}
{{if .S.Thresholds}}<h2>Thresholds</h2>
<table><tr><th>metric</th><th>stat</th><th>value</th><th>limit</th><th>result</th></tr>
{{range .S.Thresholds}}<tr><td>{{.Metric}}</td><td>{{.Stat}}</td><td>{{printf "%.4g" .Value}}</td><td>{{.Limit}}</td><td class="{{if .Pass}}pass{{else}}fail{{end}}">{{if .Pass}}ok{{else}}failed{{end}}</td></tr>{{end}}
</table>{{end}}
<h2>Plots</h2>
{{range .Charts}}{{.}}{{else}}<p>no timeline</p>{{end}}
<h2>Latency</h2>
<table><tr><th>op</th><th>count</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>
{{range .Ops}}<tr><td>{{.Op}}</td><td>{{.Count}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.P95}}</td><td>{{.P99}}</td><td>{{.Max}}</td></tr>{{end}}
</table>
<h2>Counts</h2>
<table>
<tr><td>patients / clinicians</td><td>{{.S.Counts.Patients}} / {{.S.Counts.Clinicians}}</td></tr>
<tr><td>arrivals dropped</td><td>{{.S.Counts.ArrivalsDropped}}</td></tr>
<tr><td>calls connected / ended / abandoned / failed</td><td>{{.S.Counts.CallsConnected}} / {{.S.Counts.CallsEnded}} / {{.S.Counts.CallsAbandoned}} / {{.S.Counts.CallsFailed}}</td></tr>
<tr><td>switches</td><td>{{.S.Counts.Switches}}</td></tr>
<tr><td>replays listed / fetched, tracks fetched</td><td>{{.S.Counts.ReplaysListed}} / {{.S.Counts.ReplaysFetched}}, {{.S.Counts.TracksFetched}}</td></tr>
<tr><td>frames sent / acknowledged / received live</td><td>{{.S.Counts.FramesSent}} / {{.S.Counts.FramesAcked}} / {{.S.Counts.FramesReceivedLive}}</td></tr>
<tr><td>frames checked (replay / live), untagged</td><td>{{.S.Counts.FramesChecked}} / {{.S.Counts.LiveFramesChecked}}, {{.S.Counts.UntaggedFrames}}</td></tr>
<tr><td>probes (skipped)</td><td>{{.S.Counts.Probes}} ({{.S.Counts.ProbesSkipped}})</td></tr>
<tr><td>durability checks</td><td>{{.S.Counts.DurabilityChecked}}</td></tr>
<tr><td>requests (errors)</td><td>{{.S.Counts.Operations}} ({{.S.Counts.OperationErrors}})</td></tr>
</table>
</body></html>
`))
