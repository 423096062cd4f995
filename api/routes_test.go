package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Every route is registered in routes.go: no other file of the package calls a router method
// with a path, so a newcomer finds any behaviour from that one file.
func TestRoutesAreListedInRoutesGo(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{"Get": true, "Post": true, "Put": true, "Patch": true, "Delete": true, "Head": true,
		"Route": true, "Mount": true, "Handle": true, "HandleFunc": true, "Method": true, "MethodFunc": true}
	fset := token.NewFileSet()
	var inRoutes int
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !methods[sel.Sel.Name] {
				return true
			}
			path := call.Args[0]
			if sel.Sel.Name == "Method" || sel.Sel.Name == "MethodFunc" {
				if len(call.Args) < 2 {
					return true
				}
				path = call.Args[1]
			}
			lit, ok := path.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || !strings.HasPrefix(lit.Value, `"/`) {
				return true
			}
			if name == "routes.go" {
				inRoutes++
			} else {
				t.Errorf("%s registers the route %s outside routes.go", fset.Position(call.Pos()), lit.Value)
			}
			return true
		})
	}
	if inRoutes < 75 {
		t.Fatalf("routes.go registers only %d routes", inRoutes)
	}
}
