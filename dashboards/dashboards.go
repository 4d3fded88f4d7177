// Package dashboards holds telechaos' Grafana dashboards as JSON, embedded so
// tools (and tests) read the same bytes Grafana imports.
//
// telechaos.json shows a live run: throughput, latency percentiles from the
// histograms, active users and calls, media frames, violations, and fault
// windows as annotations (telechaos_fault_active). Import it in Grafana
// (Dashboards > Import) and pick the Prometheus that scrapes the run's
// --metrics-addr or the Pushgateway.
package dashboards

import (
	_ "embed"
	"encoding/json"
	"strings"
)

// Telechaos is dashboards/telechaos.json.
//
//go:embed telechaos.json
var Telechaos []byte

// PromQL returns every PromQL expression of telechaos.json (panels,
// annotations, template variables) keyed by where it is, with Grafana's
// variables replaced so a Prometheus can evaluate them.
func PromQL() map[string]string {
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
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
	}
	if err := json.Unmarshal(Telechaos, &d); err != nil {
		panic("dashboards: telechaos.json: " + err.Error()) // embedded and tested
	}
	r := strings.NewReplacer("$__rate_interval", "1m", "$job", ".*", "$instance", ".*")
	out := map[string]string{}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out[p.Title+"/"+t.RefID] = r.Replace(t.Expr)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out["annotation "+a.Name] = r.Replace(a.Expr)
		}
	}
	return out
}
