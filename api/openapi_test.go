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
		if strings.HasPrefix(path, "/uploads") {
			continue // the tus endpoint, outside /api/v1 (its own server)
		}
		for method := range ops {
			if method != "servers" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if len(routes) < 14 {
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

// TestOpenAPIScopes checks that each operation but the document itself needs a token scope,
// named under security as the one declared scheme, and that the scheme is a bearer token.
func TestOpenAPIScopes(t *testing.T) {
	t.Parallel()
	b, _ := json.Marshal(openAPIDocument("http://fanseed.test"))
	var doc struct {
		OpenAPI    string
		Paths      map[string]map[string]json.RawMessage
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string }
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Components.SecuritySchemes["token"].Scheme != "bearer" {
		t.Fatalf("openapi %s, schemes %+v", doc.OpenAPI, doc.Components.SecuritySchemes)
	}
	writes := 0
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if method == "servers" {
				continue
			}
			var op struct {
				OperationID string
				Security    []map[string][]string
				Responses   map[string]json.RawMessage
			}
			json.Unmarshal(raw, &op)
			if op.OperationID == "getOpenAPI" {
				if len(op.Security) != 0 {
					t.Errorf("the document itself needs a token")
				}
				continue
			}
			if len(op.Security) != 1 || len(op.Security[0]["token"]) != 1 {
				t.Errorf("%s %s: security %v, want one token scope", method, path, op.Security)
				continue
			}
			scope := op.Security[0]["token"][0]
			if want := map[bool]string{true: "read", false: "write"}[method == "get"]; scope != want {
				t.Errorf("%s %s needs scope %s, want %s", method, path, scope, want)
			}
			if scope == "write" {
				writes++
			}
			for _, st := range []string{"401", "403", "5XX"} {
				if _, ok := op.Responses[st]; !ok {
					t.Errorf("%s %s documents no %s", method, path, st)
				}
			}
		}
	}
	if writes < 9 {
		t.Errorf("%d write operations, want the 5 of /api/v1 and the 4 of the upload endpoint", writes)
	}
}
