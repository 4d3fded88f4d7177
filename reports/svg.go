package reports

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// Plots are inline SVG generated from the summary's numbers: no scripts, no
// fonts, no network, so index.html opens anywhere (a CI artifact, an air-gapped
// laptop) and stays diffable.

type series struct {
	name, color string
	dash        bool
	pts         [][2]float64
}

// band is a shaded x-range (a fault window, or the union of several).
type band struct {
	fault    string
	from, to float64
	label    string
	failed   bool
}

// lane is one fault's windows in the lanes plot.
type lane struct {
	name string
	bars []band
}

// lanesPlot draws fault windows as a Gantt chart on the run's time axis: one
// lane per fault, a bar per window, violations marked on the axis.
func lanesPlot(id, title string, maxX float64, lanes []lane, marks []float64) template.HTML {
	// The same x geometry as plot.render, so bars line up with the shading
	// above; lane names sit inside their lanes.
	const w, left, right, top, bottom, row = 880.0, 52.0, 14.0, 8.0, 30.0, 18.0
	h := top + bottom + row*float64(len(lanes))
	if !(maxX > 0) {
		maxX = 1
	}
	x := func(v float64) float64 { return left + math.Min(math.Max(v, 0), maxX)/maxX*(w-left-right) }
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="plot lanes" id="%s"><figcaption>%s</figcaption>`, html.EscapeString(id), html.EscapeString(title))
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="%s">`,
		w, h, w, h, html.EscapeString(title))
	var labels []string // drawn last, over the bars
	for i, l := range lanes {
		y := top + row*float64(i)
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="#f7f7f7"/>`, left, y, w-left-right, row)
		}
		name := l.name
		if len(name) > 24 {
			name = name[:23] + "…"
		}
		color := palette[i%len(palette)]
		labels = append(labels, fmt.Sprintf(`<text x="%g" y="%g" font-size="10" fill="#222" stroke="#fff" stroke-width="3" paint-order="stroke">%s</text>`,
			left+3, y+row-5, html.EscapeString(name)))
		for _, bar := range l.bars {
			x0, x1 := x(bar.from), x(bar.to)
			if x1-x0 < 2 {
				x1 = x0 + 2
			}
			fill := color
			if bar.failed {
				fill = "#d62728"
			}
			fmt.Fprintf(&b, `<rect class="window" x="%.1f" y="%g" width="%.1f" height="%g" fill="%s" fill-opacity="0.75"><title>%s %.1fs–%.1fs</title></rect>`,
				x0, y+3, x1-x0, row-6, fill, html.EscapeString(bar.label), bar.from, bar.to)
		}
	}
	base := h - bottom
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#888"/>`, left, base, w-right, base)
	for _, v := range niceTicks(maxX, 8) {
		if v > maxX*1.0001 {
			break
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#999"/>`, x(v), base, x(v), base+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" font-size="11" text-anchor="middle" fill="#555">%ss</text>`, x(v), base+16, fmtTick(v))
	}
	for _, m := range marks {
		fmt.Fprintf(&b, `<path class="violation" d="M%.1f %g l-4 7 h8 z" fill="#d62728"><title>violation at %.1fs</title></path>`, x(m), base, m)
	}
	b.WriteString(strings.Join(labels, ""))
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String()) // numbers and escaped names only
}

// plot is one chart.
type plot struct {
	id, title, unit string
	w, h            float64
	maxX            float64 // x axis length in seconds (the run's duration)
	series          []series
	bands           []band
	marks           []float64 // x of violations: red ticks on the time axis
}

var palette = []string{"#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"}

// niceTicks returns about n round tick values from 0 to at least hi.
func niceTicks(hi float64, n int) []float64 {
	if !(hi > 0) || math.IsInf(hi, 0) {
		hi = 1
	}
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := 0.0; v < hi+step*0.999; v += step {
		out = append(out, v)
	}
	return out
}

func fmtTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// maxPlotPoints bounds a series' points: a long run (2000 samples) would
// otherwise make index.html megabytes of SVG for no visible gain.
const maxPlotPoints = 600

// decimate keeps at most about maxPlotPoints points: in each group of
// consecutive points it keeps the lowest and the highest, in time order, so
// spikes (a latency jump, an error burst) survive.
func decimate(pts [][2]float64) [][2]float64 {
	if len(pts) <= maxPlotPoints {
		return pts
	}
	group := (len(pts) + maxPlotPoints/2 - 1) / (maxPlotPoints / 2)
	out := make([][2]float64, 0, maxPlotPoints+2)
	for i := 0; i < len(pts); i += group {
		g := pts[i:min(i+group, len(pts))]
		lo, hi := 0, 0
		for j, p := range g {
			if p[1] < g[lo][1] {
				lo = j
			}
			if p[1] > g[hi][1] {
				hi = j
			}
		}
		a, b := min(lo, hi), max(lo, hi)
		out = append(out, g[a])
		if b != a {
			out = append(out, g[b])
		}
	}
	return out
}

// render draws the plot. Every series is a polyline with class "series" and
// a data-points count, so tests (and curious readers) can check the data.
func (p plot) render() template.HTML {
	w, h := p.w, p.h
	if w == 0 {
		w, h = 880, 220
	}
	const left, right, top, bottom = 52.0, 14.0, 28.0, 30.0
	maxX := p.maxX
	maxY := 0.0
	for _, s := range p.series {
		for _, pt := range s.pts {
			maxX, maxY = math.Max(maxX, pt[0]), math.Max(maxY, pt[1])
		}
	}
	if !(maxX > 0) {
		maxX = 1
	}
	yt := niceTicks(maxY, 4)
	maxY = yt[len(yt)-1]
	xt := niceTicks(maxX, 8)
	x := func(v float64) float64 { return left + math.Min(math.Max(v, 0), maxX)/maxX*(w-left-right) }
	y := func(v float64) float64 { return h - bottom - v/maxY*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="plot" id="%s"><figcaption>%s</figcaption>`, html.EscapeString(p.id), html.EscapeString(p.title))
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="%s">`,
		w, h, w, h, html.EscapeString(p.title))
	for _, bd := range p.bands {
		x0, x1 := x(bd.from), x(bd.to)
		if x1-x0 < 2 {
			x1 = x0 + 2 // a short fault stays visible
		}
		fill := "#ff9900"
		if bd.failed {
			fill = "#999999"
		}
		fmt.Fprintf(&b, `<rect class="fault" x="%.1f" y="%g" width="%.1f" height="%g" fill="%s" fill-opacity="0.18"><title>%s</title></rect>`,
			x0, top, x1-x0, h-top-bottom, fill, html.EscapeString(bd.label))
	}
	for _, v := range yt {
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#e4e4e4"/>`, left, y(v), w-right, y(v))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" font-size="11" text-anchor="end" fill="#555">%s</text>`, left-5, y(v)+4, fmtTick(v))
	}
	for _, v := range xt {
		if v > maxX*1.0001 {
			break
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#999"/>`, x(v), h-bottom, x(v), h-bottom+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" font-size="11" text-anchor="middle" fill="#555">%ss</text>`, x(v), h-bottom+16, fmtTick(v))
	}
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#888"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#888"/>`, left, top, left, h-bottom)
	if p.unit != "" {
		fmt.Fprintf(&b, `<text x="4" y="%g" font-size="11" fill="#555">%s</text>`, top-14, html.EscapeString(p.unit))
	}
	lx := left + 8
	for _, s := range p.series {
		s.pts = decimate(s.pts)
		var pts strings.Builder
		for _, pt := range s.pts {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(pt[0]), y(pt[1]))
		}
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="4 3"`
		}
		fmt.Fprintf(&b, `<polyline class="series" data-series="%s" data-points="%d" fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>`,
			html.EscapeString(s.name), len(s.pts), s.color, dash, strings.TrimSpace(pts.String()))
		if len(s.pts) == 1 { // a lone point draws no line
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, x(s.pts[0][0]), y(s.pts[0][1]), s.color)
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%g" width="14" height="3" fill="%s"/><text x="%.1f" y="%g" font-size="11" fill="#333">%s</text>`,
			lx, top-17, s.color, lx+18, top-13, html.EscapeString(s.name))
		lx += 30 + 6.5*float64(len(s.name))
	}
	if len(p.bands) > 0 {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%g" width="14" height="8" fill="#ff9900" fill-opacity="0.35"/><text x="%.1f" y="%g" font-size="11" fill="#333">fault</text>`,
			lx, top-20, lx+18, top-13)
		lx += 60
		for _, bd := range p.bands {
			if bd.failed {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%g" width="14" height="8" fill="#999999" fill-opacity="0.35"/><text x="%.1f" y="%g" font-size="11" fill="#333">fault with errors</text>`,
					lx, top-20, lx+18, top-13)
				lx += 120
				break
			}
		}
	}
	for _, m := range p.marks {
		fmt.Fprintf(&b, `<path class="violation" d="M%.1f %g l-4 7 h8 z" fill="#d62728"><title>violation at %.1fs</title></path>`, x(m), h-bottom, m)
	}
	if len(p.marks) > 0 {
		fmt.Fprintf(&b, `<path d="M%.1f %g l-4 7 h8 z" fill="#d62728"/><text x="%.1f" y="%g" font-size="11" fill="#333">violation</text>`,
			lx+4, top-20, lx+12, top-13)
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String()) // numbers and escaped names only
}
