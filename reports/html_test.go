package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func find(n *html.Node, pred func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && pred(c) {
			out = append(out, c)
		}
	})
	return out
}

func hasClass(n *html.Node, c string) bool {
	return strings.Contains(" "+attr(n, "class")+" ", " "+c+" ")
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// TestHTMLStructure parses index.html and checks the page an SRE reads:
// verdict first, every plot present with its data, fault bands and violation
// markers on every time plot, violations linked to evidence with repro
// commands, and nothing that needs the network.
func TestHTMLStructure(t *testing.T) {
	s := richSample()
	b, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("index.html does not parse: %v", err)
	}
	body := find(doc, func(n *html.Node) bool { return n.Data == "body" })[0]
	firstEl := body.FirstChild
	for firstEl != nil && firstEl.Type != html.ElementNode {
		firstEl = firstEl.NextSibling
	}
	if firstEl == nil || attr(firstEl, "id") != "verdict" || !strings.Contains(text(firstEl), "violation") {
		t.Errorf("the page does not start with the verdict")
	}
	meta := text(find(doc, func(n *html.Node) bool { return hasClass(n, "meta") })[0])
	for _, want := range []string{"launch-video-switch", "seed", "7", "repro"} {
		if !strings.Contains(meta, want) {
			t.Errorf("run table lacks %q", want)
		}
	}

	figs := map[string]*html.Node{}
	for _, f := range find(doc, func(n *html.Node) bool { return n.Data == "figure" && hasClass(n, "plot") }) {
		figs[attr(f, "id")] = f
	}
	wantPlots := []string{"plot-ops", "plot-active", "plot-frames", "plot-violations", "plot-latency-book", "plot-latency-switch"}
	for _, id := range wantPlots {
		f := figs[id]
		if f == nil {
			t.Errorf("plot %s missing", id)
			continue
		}
		lines := find(f, func(n *html.Node) bool { return n.Data == "polyline" && hasClass(n, "series") })
		if len(lines) == 0 {
			t.Errorf("%s: no series", id)
		}
		for _, l := range lines {
			n, _ := strconv.Atoi(attr(l, "data-points"))
			pts := strings.Fields(attr(l, "points"))
			if n < 10 || len(pts) != n {
				t.Errorf("%s/%s: data-points %d, points %d; want the timeline's samples", id, attr(l, "data-series"), n, len(pts))
			}
			ys := map[string]bool{}
			for _, p := range pts {
				_, y, ok := strings.Cut(p, ",")
				if !ok {
					t.Fatalf("%s: bad point %q", id, p)
				}
				ys[y] = true
			}
			if id != "plot-violations" && len(ys) < 2 {
				t.Errorf("%s/%s: a flat line (%v): the data did not reach the plot", id, attr(l, "data-series"), ys)
			}
		}
		if n := len(find(f, func(n *html.Node) bool { return n.Data == "rect" && hasClass(n, "fault") })); n != len(s.FaultWindows) {
			t.Errorf("%s: %d fault bands, want %d", id, n, len(s.FaultWindows))
		}
		if n := len(find(f, func(n *html.Node) bool { return hasClass(n, "violation") })); n != len(s.Violations) {
			t.Errorf("%s: %d violation markers, want %d", id, n, len(s.Violations))
		}
	}
	if f := figs["plot-faults"]; f == nil {
		t.Error("no fault lanes plot")
	} else {
		if n := len(find(f, func(n *html.Node) bool { return n.Data == "rect" && hasClass(n, "window") })); n != len(s.FaultWindows) {
			t.Errorf("fault lanes: %d windows drawn, want %d", n, len(s.FaultWindows))
		}
		if n := len(find(f, func(n *html.Node) bool { return hasClass(n, "violation") })); n != len(s.Violations) {
			t.Errorf("fault lanes: %d violation markers, want %d", n, len(s.Violations))
		}
	}
	if len(figs) != len(wantPlots)+1 {
		t.Errorf("plots %d, want %d", len(figs), len(wantPlots)+1)
	}

	vt := find(doc, func(n *html.Node) bool { return attr(n, "id") == "violations" })
	if len(vt) != 1 {
		t.Fatal("no violations table")
	}
	links := find(vt[0], func(n *html.Node) bool { return n.Data == "a" })
	if len(links) != 2 || attr(links[0], "href") != "evidence-1.json" || attr(links[1], "href") != "evidence-2.json" {
		t.Errorf("evidence links: %d", len(links))
	}
	if !strings.Contains(text(vt[0]), s.Repro) {
		t.Error("violations table lacks the repro command")
	}
	if !strings.Contains(text(vt[0]), `offered <r_1> & "more"`) {
		t.Error("violation detail lost")
	}
	if bytes.Contains(b, []byte("<r_1>")) {
		t.Error("violation detail not escaped")
	}
	for _, id := range []string{"faults", "coverage", "thresholds", "latency", "counts", "checks"} {
		if len(find(doc, func(n *html.Node) bool { return attr(n, "id") == id })) != 1 {
			t.Errorf("table %s missing", id)
		}
	}
	// Self-contained: no scripts, no remote anything.
	if len(find(doc, func(n *html.Node) bool { return n.Data == "script" || n.Data == "link" || n.Data == "img" })) > 0 {
		t.Error("the page loads scripts, styles or images")
	}
	walk(doc, func(n *html.Node) {
		for _, a := range n.Attr {
			if (a.Key == "href" || a.Key == "src") && strings.Contains(a.Val, "://") {
				t.Errorf("remote reference %s=%q", a.Key, a.Val)
			}
		}
	})
	t.Logf("index.html: %d bytes", len(b))
}

func TestHTMLWithoutTimelineOrFaults(t *testing.T) {
	s := sample()
	b, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("no timeline")) || bytes.Contains(b, []byte(`id="faults"`)) {
		t.Error("an empty run should say so and show no fault table")
	}
	s.Verdict = VerdictPass
	s.Violations = nil
	b, _ = HTML(s)
	if !bytes.Contains(b, []byte("PASS")) {
		t.Error("pass not shown")
	}
}

func TestRenderWritesEveryFile(t *testing.T) {
	dir := t.TempDir()
	if err := Render(dir, richSample()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{HTMLFile, JUnitFile, MarkdownFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestMarkdownIsShort(t *testing.T) {
	s := richSample()
	for range 30 {
		s.Violations = append(s.Violations, s.Violations[0])
	}
	md := Markdown(s)
	// Bounded whatever the number of violations: the check table, the
	// latency table (two ops here) and ten violation lines.
	if n := strings.Count(md, "\n"); n > 50 {
		t.Errorf("summary.md has %d lines:\n%s", n, md)
	}
	for _, want := range []string{"violation", "launch-video-switch", "seed 7", "replay-list-ownership | ❌ 1", "more in index.html", "repro:", "faults: 3 windows (1 with errors)"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(outsideCode(md), "<r_1>") {
		t.Error("raw HTML in markdown")
	}
}

// outsideCode drops the inline code spans and fenced blocks of md (what
// Markdown shows literally), leaving what it would interpret.
func outsideCode(md string) string {
	var out strings.Builder
	for i := 0; i < len(md); {
		if md[i] != '`' {
			out.WriteByte(md[i])
			i++
			continue
		}
		n := 0
		for i+n < len(md) && md[i+n] == '`' {
			n++
		}
		fence := strings.Repeat("`", n)
		end := strings.Index(md[i+n:], fence)
		if end < 0 {
			out.WriteString(md[i:])
			break
		}
		i += n + end + n
	}
	return out.String()
}

// TestMarkdownQuotesWhatTheTargetControls: ids, details and errors come from
// the target; summary.md must not let them become links, images or HTML in
// a CI page, nor break the check table.
func TestMarkdownQuotesWhatTheTargetControls(t *testing.T) {
	s := richSample()
	evil := "[click me](https://evil.example/x) ![img](https://evil.example/i.png) <img src=x> https://evil.example | `tick` ``two``\n# heading"
	s.Target = "http://127.0.0.1:1/" + evil
	s.Error = evil
	s.Reason = "target or infrastructure failure: " + evil
	s.Also = []string{evil}
	s.Violations[0].Detail = evil
	s.Violations[0].Evidence = evil
	s.Thresholds[0].Limit = evil
	md := Markdown(s)
	rest := outsideCode(md)
	for _, bad := range []string{"](", "<img", "evil.example", "# heading"} {
		if strings.Contains(rest, bad) {
			t.Errorf("%q outside a code span:\n%s", bad, md)
		}
	}
	// Every row of a table has its header's cells.
	header := -1
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			header = -1
			continue
		}
		n := strings.Count(outsideCode(strings.ReplaceAll(line, `\|`, "")), "|")
		if header < 0 {
			header = n
		}
		if n != header || n < 3 {
			t.Errorf("a table row broken by a pipe (%d cells, header %d): %q", n, header, line)
		}
	}
}

// TestLongRunStaysSmall: a run at the timeline's cap (2000 samples) renders
// a page of bounded size that still shows its one spike.
func TestLongRunStaysSmall(t *testing.T) {
	s := richSample()
	base := s.Timeline[len(s.Timeline)-1]
	s.Timeline = s.Timeline[:0]
	for i := range 2000 {
		p := base
		p.T = float64(i)
		p.Ops = int64(i * 100)
		if i == 1234 {
			p.Ops += 5000 // one burst
		}
		p.Latency = map[string]WindowLatency{"book": {N: 5, P50: 0.01, P95: 0.02, P99: 0.03}}
		s.Timeline = append(s.Timeline, p)
	}
	s.DurationSeconds = 2000
	b, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 400_000 {
		t.Errorf("index.html is %d bytes for 2000 samples", len(b))
	}
	doc, _ := html.Parse(bytes.NewReader(b))
	ops := find(doc, func(n *html.Node) bool { return attr(n, "id") == "plot-ops" })[0]
	line := find(ops, func(n *html.Node) bool { return attr(n, "data-series") == "requests/s" })[0]
	pts := strings.Fields(attr(line, "points"))
	if len(pts) > 2*maxPlotPoints || len(pts) < maxPlotPoints/3 {
		t.Errorf("%d points drawn", len(pts))
	}
	// The burst is the top of the plot: its y is the smallest.
	minY := 1e9
	for _, p := range pts {
		_, y, _ := strings.Cut(p, ",")
		v, _ := strconv.ParseFloat(y, 64)
		minY = min(minY, v)
	}
	if minY > 60 {
		t.Errorf("the burst was decimated away (highest point at y=%g)", minY)
	}
	t.Logf("index.html for 2000 samples: %d bytes", len(b))
}

// TestFaultShading: overlapping windows shade once, and a fault active all
// run (a client fault drawn by probability) is left to the lanes plot rather
// than painting every plot.
func TestFaultShading(t *testing.T) {
	s := richSample()
	s.FaultWindows = append(s.FaultWindows,
		FaultWindow{Fault: "media-jitter", Start: t0.Add(20 * time.Second), End: t0.Add(30 * time.Second)}, // overlaps http-latency
		FaultWindow{Fault: "client-retry", Start: t0, End: t0.Add(60 * time.Second)})
	b, err := HTML(s)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := html.Parse(bytes.NewReader(b))
	ops := find(doc, func(n *html.Node) bool { return attr(n, "id") == "plot-ops" })[0]
	bands := find(ops, func(n *html.Node) bool { return n.Data == "rect" && hasClass(n, "fault") })
	// http-latency 15-25 + media-jitter 20-30 merge; clinic-restart 38-41; media-loss 50-end.
	if len(bands) != 3 {
		t.Errorf("%d shaded bands, want 3", len(bands))
	}
	if len(bands) > 0 && !strings.Contains(text(bands[0]), "http-latency, media-jitter") {
		t.Errorf("merged band title %q", text(bands[0]))
	}
	lanes := find(doc, func(n *html.Node) bool { return attr(n, "id") == "plot-faults" })[0]
	if !strings.Contains(text(lanes), "client-retry") {
		t.Error("the always-on fault is missing from the lanes")
	}
	if n := len(find(lanes, func(n *html.Node) bool { return hasClass(n, "window") })); n != len(s.FaultWindows) {
		t.Errorf("lanes draw %d windows, want %d", n, len(s.FaultWindows))
	}
}
