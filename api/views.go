package api

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/templates"
)

// views holds one parsed template per page: the layout and partials plus the page file,
// parsed once at start-up so that a broken template stops start-up.
type views struct {
	pages map[string]*template.Template
}

func parseViews() (*views, error) {
	names, err := fs.Glob(templates.FS, "*.html")
	if err != nil {
		return nil, err
	}
	// The layout and the partials (files named _*.html) are shared by every page.
	// The helpers every template may call.
	funcs := template.FuncMap{"size": humanBytes, "plural": plural, "noun": noun,
		"hours": func(seconds int64) float64 { return float64(seconds) / 3600 },
		"pct":   func(share float64) float64 { return 100 * share }}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templates.FS, "layout.html", "_*.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, name := range names {
		if name == "layout.html" || strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templates.FS, name)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		v.pages[strings.TrimSuffix(name, ".html")] = t
	}
	return v, nil
}

// layout is what every page's layout needs; page data structs embed it.
type layout struct {
	Title   string
	Account *catalog.Account
	Flash   string
}

func (l *layout) setAccount(a *catalog.Account) { l.Account = a }

type pageData interface{ setAccount(*catalog.Account) }

// render executes a page into a buffer first, so that a template error becomes a clean 500
// instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, data pageData) {
	t, ok := s.views.pages[page]
	if !ok {
		s.serverError(w, r, fmt.Errorf("no template %q", page))
		return
	}
	data.setAccount(accountFrom(r.Context()))
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.serverError(w, r, fmt.Errorf("render %s: %w", page, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

// renderBytes renders a page for an anonymous visitor, for pages cached whole.
func (s *Server) renderBytes(page string, data pageData) ([]byte, error) {
	t, ok := s.views.pages[page]
	if !ok {
		return nil, fmt.Errorf("no template %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, fmt.Errorf("render %s: %w", page, err)
	}
	return buf.Bytes(), nil
}

type errorPage struct {
	layout
	Heading, Message string
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	s.render(w, r, status, "error", &errorPage{layout: layout{Title: heading}, Heading: heading, Message: msg})
}

// plural writes a count with its noun, "1 download" or "2 downloads", for the templates.
func plural(n any, one, many string) (string, error) {
	word, err := noun(n, one, many)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", n, word), nil
}

// noun is the noun alone, for a count written apart from it.
func noun(n any, one, many string) (string, error) {
	var v int64
	switch n := n.(type) {
	case int:
		v = int64(n)
	case int32:
		v = int64(n)
	case int64:
		v = n
	default:
		return "", fmt.Errorf("plural of %T", n)
	}
	if v == 1 {
		return one, nil
	}
	return many, nil
}
