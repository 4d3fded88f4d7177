package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeProm answers instant queries by the metric they name: series maps a
// metric to its samples (label set and value).
func fakeProm(t *testing.T, series map[string][]map[string]any) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		var result []map[string]any
		for metric, ss := range series {
			if strings.Contains(q, metric+"{") {
				for _, s := range ss {
					labels := map[string]string{}
					var v string
					for k, x := range s {
						if k == "value" {
							v = x.(string)
						} else {
							labels[k] = x.(string)
						}
					}
					result = append(result, map[string]any{"metric": labels, "value": []any{1.0, v}})
				}
			}
		}
		if result == nil {
			result = []map[string]any{}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// report verdict --from-prometheus decides with models.Decide, as the run
// does: too little judged is not a pass (exit 3), and a violation outranks it
// with the not-judged line kept as Also.
func TestPromVerdictDecidesLikeTheRun(t *testing.T) {
	base := map[string][]map[string]any{
		"telechaos_operations_total": {{"shard": "0", "outcome": "ok", "value": "100"}},
		"telechaos_judged_total": {
			{"invariant": "replay-list-ownership", "value": "40"},
			{"invariant": "recording-durability", "value": "1"},
		},
		"telechaos_not_judged_total": {{"invariant": "recording-durability", "value": "39"}},
	}
	args := []string{"report", "verdict", "--from-prometheus", fakeProm(t, base), "--run-id", "r1", "--scenario", "smoke"}
	code, stdout, stderr := runCLI(t, args...)
	if code != 3 || !strings.Contains(stdout, "NOT-JUDGED") || !strings.Contains(stdout, "reason: not judged: recording-durability judged 1 of 40") ||
		!strings.Contains(stdout, "NOT JUDGED 1/40") || !strings.Contains(stdout, "judged 40/40") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}

	base["telechaos_violations_total"] = []map[string]any{{"invariant": "replay-list-ownership", "shard": "0", "value": "2"}}
	args[3] = fakeProm(t, base)
	code, stdout, stderr = runCLI(t, args...)
	if code != 1 || !strings.Contains(stdout, "reason: 2 distinct invariant violations") || !strings.Contains(stdout, "also: not judged: recording-durability") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}
