package architecture

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/fanseed/fanseed/"

// allowed lists, for each package of the module, the packages of the module it may import
// (tests may import more). A package missing here fails the test until it is given its place.
// Lower layers come first: a package imports only packages above it in this list.
var allowed = map[string][]string{
	"money":      nil,
	"periodic":   nil,
	"mail":       nil,
	"templates":  nil,
	"migrations": nil,
	"catalog":    {"money"},
	"billing":    {"money", "periodic"},
	"seeding":    {"money", "periodic"},
	"publishing": {"catalog", "seeding", "money", "periodic"},
	"notify":     {"billing", "catalog", "mail", "money"},
	"live":       {"billing", "catalog", "money", "publishing"},
	"api":        {"billing", "catalog", "live", "mail", "money", "notify", "publishing", "seeding", "templates"},
	"cmd/fanseed": {"api", "billing", "catalog", "live", "mail", "migrations", "money", "notify", "periodic", "publishing",
		"seeding", "templates"},

	// Helpers for tests and benchmarks.
	"migrations/dbtest":   {"migrations"},
	"mail/mailtest":       {"mail"},
	"billing/stripetest":  {"billing", "money"},
	"internal/testkit":    nil,
	"seeding/seedingtest": {"seeding"},
}

// free lists the prefixes of packages that may import anything of the module but cmd: the
// benchmarks, which drive the whole product from outside.
var free = []string{"bench/"}

// onlyAPI is what only api may import: it is the one package that speaks HTTP routing.
const onlyAPI = "github.com/go-chi/chi"

type pkg struct {
	ImportPath string
	Imports    []string
}

func ourPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps -json ./...: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("reading go list's output: %v", err)
		}
		if strings.HasPrefix(p.ImportPath, module) {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < len(allowed) {
		t.Fatalf("go list found %d packages of the module, fewer than the %d the table names", len(pkgs), len(allowed))
	}
	return pkgs
}

// check returns the forbidden imports of one package, as "from imports to" lines.
func check(p pkg) []string {
	from := strings.TrimPrefix(p.ImportPath, module)
	if from == "architecture" {
		return nil
	}
	var bad []string
	isFree := slices.ContainsFunc(free, func(prefix string) bool { return strings.HasPrefix(from, prefix) })
	may, known := allowed[from]
	if !known && !isFree {
		return []string{from + " is not in the table of allowed imports in architecture/architecture_test.go: give it its place there and in README's Architecture section"}
	}
	for _, imp := range p.Imports {
		if (imp == onlyAPI || strings.HasPrefix(imp, onlyAPI+"/")) && from != "api" {
			bad = append(bad, from+" imports "+imp+": only api imports chi")
		}
		to, ours := strings.CutPrefix(imp, module)
		if !ours {
			continue
		}
		switch {
		case isFree && !strings.HasPrefix(to, "cmd/"):
		case slices.Contains(may, to):
		default:
			bad = append(bad, from+" imports "+to+": "+from+" may import only "+list(may))
		}
	}
	return bad
}

func list(pkgs []string) string {
	if len(pkgs) == 0 {
		return "no package of Fanseed"
	}
	return strings.Join(pkgs, ", ")
}

// Every package imports only what its layer allows: catalog, billing and seeding do not import
// one another, publishing sits above catalog and seeding, and only api and cmd see everything.
func TestImports(t *testing.T) {
	var bad []string
	for _, p := range ourPackages(t) {
		bad = append(bad, check(p)...)
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// The check itself: each kind of forbidden edge is reported, naming both ends.
func TestCheckNamesForbiddenEdges(t *testing.T) {
	for _, tc := range []struct {
		p    pkg
		want string
	}{
		{pkg{ImportPath: module + "catalog", Imports: []string{module + "seeding"}}, "catalog imports seeding: catalog may import only money"},
		{pkg{ImportPath: module + "seeding", Imports: []string{module + "billing"}}, "seeding imports billing"},
		{pkg{ImportPath: module + "money", Imports: []string{module + "billing"}}, "money may import only no package of Fanseed"},
		{pkg{ImportPath: module + "catalog", Imports: []string{onlyAPI + "/v5"}}, "catalog imports github.com/go-chi/chi/v5: only api imports chi"},
		{pkg{ImportPath: module + "bench/pages", Imports: []string{module + "cmd/fanseed"}}, "bench/pages imports cmd/fanseed"},
		{pkg{ImportPath: module + "jobs"}, "jobs is not in the table"},
	} {
		got := check(tc.p)
		if len(got) != 1 || !strings.Contains(got[0], tc.want) {
			t.Errorf("check(%s imports %v) = %q, want one line with %q", tc.p.ImportPath, tc.p.Imports, got, tc.want)
		}
	}
	ok := pkg{ImportPath: module + "publishing", Imports: []string{module + "catalog", module + "seeding", "github.com/jackc/pgx/v5"}}
	if got := check(ok); len(got) != 0 {
		t.Errorf("publishing importing catalog and seeding: %q, want nothing", got)
	}
}
