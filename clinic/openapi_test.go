package clinic

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPICoversRoutes: every route the mux serves is documented in
// openapi.yaml, and the document promises no route the mux lacks.
func TestOpenAPICoversRoutes(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi version %q, want 3.0.x", doc.OpenAPI)
	}
	s := startFake(t, "")
	if len(s.patterns) == 0 {
		t.Fatal("no routes registered")
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete", "head", "options":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	for _, p := range s.patterns {
		if !documented[p] {
			t.Errorf("route %q is not in openapi.yaml", p)
		}
	}
	for op := range documented {
		if !slices.Contains(s.patterns, op) {
			t.Errorf("openapi.yaml documents %q, which the clinic does not serve", op)
		}
	}
}
