package dashboards

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/metrics"
)

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Type    string `json:"type"`
		GridPos *struct {
			X, Y, W, H int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// Exprs returns every PromQL expression of the dashboard (panels, annotations,
// template variables) with where it is.
func exprs(t *testing.T) map[string]string {
	var d dashboard
	if err := json.Unmarshal(Telechaos, &d); err != nil {
		t.Fatalf("telechaos.json: %v", err)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title+"/"+tg.RefID] = tg.Expr
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out["annotation "+a.Name] = a.Expr
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			out["variable "+v.Name], _ = q["query"].(string)
		}
	}
	return out
}

// registered gathers every metric a run registers: the harness's, and the
// chaos recorder's and coverage's (on the run's registry once chaos runs).
func registered(t *testing.T) map[string]dto.MetricType {
	reg := prometheus.NewRegistry()
	metrics.NewMetrics(reg)
	rec, err := chaos.NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	cov, err := chaos.NewCoverage(reg)
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Begin("http-latency", nil, "clock") // vectors appear once used
	rec.End(id, errTest)
	cov.Hit(chaos.PathSwitch, "")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dto.MetricType{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetType()
	}
	return out
}

var errTest = &timeoutErr{}

type timeoutErr struct{}

func (*timeoutErr) Error() string { return "heal timed out" }

var metricName = regexp.MustCompile(`\b(telechaos|clinic)_[a-zA-Z0-9_]+`)

func TestEveryExprUsesARegisteredMetric(t *testing.T) {
	reg := registered(t)
	used := map[string]bool{}
	for where, e := range exprs(t) {
		names := metricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("%s: %q names no telechaos metric", where, e)
		}
		for _, n := range names {
			base := n
			typ, ok := reg[n]
			if !ok {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b := strings.TrimSuffix(n, suf); b != n {
						if tp, ok2 := reg[b]; ok2 && tp == dto.MetricType_HISTOGRAM {
							base, typ, ok = b, tp, true
						}
					}
				}
			}
			if !ok {
				t.Errorf("%s: %s is not registered by the harness", where, n)
				continue
			}
			used[base] = true
			if typ == dto.MetricType_COUNTER && !strings.Contains(e, "rate(") && !strings.Contains(e, "increase(") &&
				!strings.HasPrefix(where, "variable") && !strings.Contains(where, "total") {
				t.Errorf("%s: counter %s used without rate/increase: %q", where, n, e)
			}
			if typ == dto.MetricType_HISTOGRAM && !strings.Contains(e, "histogram_quantile") {
				t.Errorf("%s: histogram %s used without histogram_quantile", where, n)
			}
		}
	}
	// The panels: throughput, latency, active, frames, violations, faults.
	for _, want := range []string{"telechaos_operations_total", "telechaos_operation_duration_seconds", "telechaos_users_active",
		"telechaos_calls_active", "telechaos_media_frames_sent_total", "telechaos_violations_total", "telechaos_fault_active"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

func TestDashboardShape(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(Telechaos, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) < 6 {
		t.Errorf("uid %q title %q panels %d", d.UID, d.Title, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeated", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %q lacks a position or queries", p.Title)
		}
	}
	fault := false
	for _, a := range d.Annotations.List {
		fault = fault || strings.Contains(a.Expr, "telechaos_fault_active")
	}
	if !fault {
		t.Error("no fault-window annotation from telechaos_fault_active")
	}
}

// PromQL returns the dashboard's expressions with Grafana's variables
// replaced, ready for a real Prometheus (cmd/telechaos's end-to-end test
// sends them to one to check they parse).
func TestPromQLSubstitution(t *testing.T) {
	for where, e := range PromQL() {
		if strings.Contains(e, "$") {
			t.Errorf("%s: unreplaced variable in %q", where, e)
		}
	}
}
