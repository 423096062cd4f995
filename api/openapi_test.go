package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestOpenAPIMatchesRouter walks the JSON API's real router: every route is in the OpenAPI
// document, and every documented route is a route.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	var routes []string
	err := chi.Walk((&Server{}).apiV1(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(openAPIDocument("http://fanseed.test"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if len(routes) < 7 {
		t.Fatalf("walked only %v", routes)
	}
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("documented %s is not a route", d)
		}
	}
	// Every $ref points at a schema the document defines.
	var whole map[string]any
	json.Unmarshal(b, &whole)
	schemas := whole["components"].(map[string]any)["schemas"].(map[string]any)
	for _, ref := range refs(whole) {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if _, defined := schemas[name]; !ok || !defined {
			t.Errorf("$ref %s is not defined", ref)
		}
	}
}

func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, refs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	}
	return out
}
