package main

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/net/html"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// The GET routes of api/routes.go, by who reaches them by clicking. Each role's list is what a
// crawl from its dashboard must reach; unlinked lists the routes no page links to, and why.
var (
	// fanRoutes are the public pages of a show, which the home page lists.
	fanRoutes = []string{"/s/{slug}", "/s/{slug}/e/{episodeID}", "/s/{slug}/torrents.rss", "/s/{slug}/podcast.rss",
		"/s/{slug}/donate", "/s/{slug}/manage", "/s/{slug}/live", "/t/{file}", "/seed/{infohash}/{name}"}
	accountRoutes = append(slices.Clone(fanRoutes), "/", "/dashboard", "/account", "/account/tokens", "/connect",
		"/statements", "/statements/{party}", "/api/v1/openapi.json", "/backer")
	creatorRoutes = append(slices.Clone(accountRoutes),
		"/shows/new", "/shows/{showID}", "/shows/{showID}/edit", "/shows/{showID}/plan", "/shows/{showID}/dashboard",
		"/shows/{showID}/dashboard/{table}.csv", "/shows/{showID}/episodes/{episodeID}", "/shows/{showID}/sponsorships",
		"/shows/{showID}/campaigns",
		"/shows/{showID}/live",
		"/s/{slug}/embed", "/s/{slug}/e/{episodeID}/embed")
	adminRoutes = append(slices.Clone(creatorRoutes),
		"/admin", "/admin/fleet", "/admin/outbox", "/admin/outbox/{messageID}", "/admin/payouts", "/admin/events", "/admin/refunds")
	partnerRoutes   = accountRoutes
	anonymousRoutes = append(slices.Clone(fanRoutes), "/", "/signup", "/login", "/password/forgot")
	unlinked        = map[string]string{
		"/healthz":                     "a probe for the operator's load balancer",
		"/readyz":                      "a probe for the operator's load balancer",
		"/metrics":                     "scraped by Prometheus",
		"/static/*":                    "stylesheets, scripts and the icon the pages load",
		"/favicon.ico":                 "asked for by browsers; the pages link the icon in /static",
		"/announce":                    "the tracker, for BitTorrent clients",
		"/scrape":                      "the tracker, for BitTorrent clients",
		"/s/{slug}/artwork":            "an image shown in pages",
		"/verify":                      "opened from the confirmation email",
		"/password/reset":              "opened from the password reset email",
		"/invitations/accept":          "opened from the invitation email",
		"/donations/manage":            "opened from the donation receipt email",
		"/s/{slug}/donate/thanks":      "where Stripe Checkout returns",
		"/s/{slug}/donate/cancelled":   "where Stripe Checkout returns",
		"/checkout/test/{session}":     "where the donate form redirects in test mode",
		"/sponsor/{token}":             "the payment link a creator sends a sponsor",
		"/sponsor/{token}/thanks":      "where Stripe Checkout returns a sponsor",
		"/shows/{showID}/plan/preview": "fetched by the share plan's script",
		"/shows/{showID}/episodes/{episodeID}/status":        "polled by the upload script",
		"/campaigns/{campaignID}":                            "a campaign's page, linked from its show's fan page while it is live (the crawl's show has none)",
		"/campaigns/{campaignID}/embed":                      "the campaign widget other sites frame; its dashboard gives the code",
		"/campaigns/{campaignID}/updates.rss":                "a campaign's updates feed, linked from its page",
		"/shows/{showID}/campaigns/{campaignID}":             "a campaign's dashboard, linked from the show's campaigns (the crawl's show has none)",
		"/pledges/{token}":                                   "a backer's pledge: where Checkout returns, linked from /backer",
		"/pledges/{token}/pay":                               "opened from the email of a pledge that needs the backer",
		"/pledges/{token}/early/{episode}":                   "a backer's private .torrent, linked from their pledge",
		"/early/{passkey}/announce":                          "the private tracker, for BitTorrent clients",
		"/early/{passkey}/{infohash}/{expires}/{sig}/{name}": "the private torrents' signed web seed, for BitTorrent clients",
		"/api/v1/shows":                                      "the JSON API, for scripts with a token",
		"/api/v1/shows/{showID}":                             "the JSON API, for scripts with a token",
		"/api/v1/shows/{showID}/episodes":                    "the JSON API, for scripts with a token",
		"/api/v1/shows/{showID}/episodes/{episodeID}":        "the JSON API, for scripts with a token",
		"/api/v1/shows/{showID}/plan":                        "the JSON API, for scripts with a token",
		"/api/v1/donations":                                  "the JSON API, for scripts with a token",
		"/api/v1/statements":                                 "the JSON API, for scripts with a token",
		"/api/v1/statements/{partyID}":                       "the JSON API, for scripts with a token",
		"/shows/{showID}/live/stats":                         "polled by the live page's script",
		"/live/{streamID}/{file}":                            "a live stream's HLS files, fetched by the live player",
		"/overlay/{token}":                                   "the overlay's secret address, shown once on the live page for OBS",
		"/overlay/{token}/events":                            "the overlay's event stream, read by its script",
	}
)

// getRoutes parses api/routes.go and lists the pattern of every GET route it registers,
// following r.Route prefixes and the router r.Mount attaches.
func getRoutes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("..", "..", "api", "routes.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]*ast.FuncDecl{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			funcs[fd.Name.Name] = fd
		}
	}
	str := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	join := func(prefix, p string) string {
		full := strings.TrimSuffix(prefix+p, "/")
		if full == "" {
			return "/"
		}
		return full
	}
	var out []string
	var walk func(n ast.Node, prefix string)
	walk = func(n ast.Node, prefix string) {
		ast.Inspect(n, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			switch sel.Sel.Name {
			case "Get", "Handle":
				if p, ok := str(call.Args[0]); ok {
					out = append(out, join(prefix, p))
				}
			case "Method":
				if m, ok := call.Args[0].(*ast.SelectorExpr); ok && m.Sel.Name == "MethodGet" && len(call.Args) > 1 {
					if p, ok := str(call.Args[1]); ok {
						out = append(out, join(prefix, p))
					}
				}
			case "Route":
				if p, ok := str(call.Args[0]); ok && len(call.Args) > 1 {
					walk(call.Args[1], prefix+p)
					return false
				}
			case "Mount":
				if p, ok := str(call.Args[0]); ok && len(call.Args) > 1 {
					if c, ok := call.Args[1].(*ast.CallExpr); ok {
						if fs, ok := c.Fun.(*ast.SelectorExpr); ok && funcs[fs.Sel.Name] != nil {
							walk(funcs[fs.Sel.Name].Body, prefix+p)
						}
					}
				}
			}
			return true
		})
	}
	walk(funcs["routes"].Body, "")
	slices.Sort(out)
	return slices.Compact(out)
}

// TestNavigationListsEveryGETRoute: every GET route of api/routes.go is in a role's list of
// routes reached by clicking, or in the list of routes no page links to, with a reason.
func TestNavigationListsEveryGETRoute(t *testing.T) {
	routes := getRoutes(t)
	if len(routes) < 40 {
		t.Fatalf("found only %d GET routes in api/routes.go: %v", len(routes), routes)
	}
	listed := map[string]bool{}
	for _, l := range [][]string{anonymousRoutes, partnerRoutes, creatorRoutes, adminRoutes} {
		for _, p := range l {
			listed[p] = true
		}
	}
	for p := range unlinked {
		if listed[p] {
			t.Errorf("%s is both linked and unlinked", p)
		}
		listed[p] = true
	}
	for _, p := range routes {
		if !listed[p] {
			t.Errorf("GET %s is in api/routes.go but in no role's navigation list nor the unlinked list", p)
		}
		delete(listed, p)
	}
	for p := range listed {
		t.Errorf("%s is listed but api/routes.go has no such GET route", p)
	}
}

// patternRegexp matches the paths of a chi route pattern.
func patternRegexp(p string) *regexp.Regexp {
	re := regexp.QuoteMeta(p)
	re = regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(re, `[^/]+`)
	re = strings.ReplaceAll(re, `\*`, `.*`)
	return regexp.MustCompile("^" + re + "$")
}

// crawl follows the links of the site breadth-first from start, staying on base, a few pages per
// route pattern, and returns the patterns reached. A link that answers 4xx or 5xx fails the test.
func crawl(t *testing.T, c *http.Client, base, start string, patterns []string) map[string]bool {
	t.Helper()
	res := map[string]*regexp.Regexp{}
	for _, p := range patterns {
		res[p] = patternRegexp(p)
	}
	match := func(path string) string {
		best := ""
		for p, re := range res {
			if re.MatchString(path) && (best == "" || strings.Count(p, "{") < strings.Count(best, "{")) {
				best = p
			}
		}
		return best
	}
	reached, perPattern, seen := map[string]bool{}, map[string]int{}, map[string]bool{start: true}
	type link struct{ url, from string }
	queue := []link{{start, "(start)"}}
	for fetched := 0; len(queue) > 0 && fetched < 400; fetched++ {
		l := queue[0]
		queue = queue[1:]
		u, _ := url.Parse(l.url)
		p := match(u.Path)
		if p == "" {
			t.Errorf("link %s on %s matches no GET route", l.url, l.from)
			continue
		}
		reached[p] = true
		if perPattern[p]++; perPattern[p] > 3 {
			continue
		}
		page, _ := url.Parse(base + l.url)
		resp, err := c.Get(page.String())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			t.Errorf("link %s on %s: status %d", l.url, l.from, resp.StatusCode)
			continue
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			continue
		}
		doc, err := html.Parse(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		for n := range doc.Descendants() {
			if n.Type != html.ElementNode || n.Data != "a" {
				continue
			}
			for _, a := range n.Attr {
				if a.Key != "href" {
					continue
				}
				next, err := page.Parse(a.Val)
				if err != nil || next.Scheme != "http" || next.Host != page.Host {
					continue
				}
				ref := next.RequestURI()
				if !seen[ref] {
					seen[ref] = true
					queue = append(queue, link{ref, l.url})
				}
			}
		}
	}
	return reached
}

// TestBrowserNavigationReachesEveryPage logs in as a creator, an admin and a partner (made with
// `fanseed admin create-user`, as an operator would) and as nobody, crawls the links from the
// dashboard (from the home page for nobody), and fails on a page of the role no link reaches.
func TestBrowserNavigationReachesEveryPage(t *testing.T) {
	dbURL := dbtest.NewURL(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL})
	ctx := context.Background()
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("a long enough password\n"), 0o600)
	env := map[string]string{"DATABASE_URL": dbURL, "DATA_DIR": t.TempDir()}
	login := func(email, role string) *http.Client {
		t.Helper()
		if err := run(ctx, []string{"fanseed", "admin", "create-user", "-email", email, "-name", role + " person",
			"-role", role, "-password-file", pwFile}, func(k string) string { return env[k] }, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		c := newClient()
		resp, err := c.PostForm(base+"/login", url.Values{"email": {email}, "password": {"a long enough password"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Request.URL.Path != "/dashboard" {
			t.Fatalf("log in as %s: ended on %s", role, resp.Request.URL)
		}
		return c
	}
	creator, admin, partner := login("maker@example.com", "creator"), login("root@example.com", "admin"), login("pat@example.com", "partner")

	// The creator's show, with a published episode whose file is on disk, and a statement
	// party each for the creator and the partner; a password reset puts a message in the outbox.
	resp, err := creator.PostForm(base+"/shows", url.Values{"title": {"Night Signals"}, "slug": {"night-signals"}, "currency": {"USD"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	media := filepath.Join(t.TempDir(), "pilot.mp3")
	os.WriteFile(media, []byte("ID3\x03 a short episode"), 0o644)
	if _, err := db.Exec(ctx, `
		WITH e AS (INSERT INTO episodes (show_id, title, description, status, published_at)
		           SELECT id, 'Pilot', 'Episode notes.', 'published', now() FROM shows WHERE slug = 'night-signals' RETURNING id)
		INSERT INTO torrents (episode_id, infohash, name, length, piece_length, sha256, content_type, content_path, metainfo, status, published_at)
		SELECT id, substring(sha256('pilot'::bytea) from 1 for 20), 'pilot.mp3', 20, 16384, sha256('pilot'::bytea), 'audio/mpeg', $1,
		       'd4:infod6:lengthi20e4:name9:pilot.mp3ee'::bytea, 'published', now() FROM e`, media); err != nil {
		t.Fatal(err)
	}
	var makerID int64
	if err := db.QueryRow(ctx, `SELECT id FROM accounts WHERE email = 'maker@example.com'`).Scan(&makerID); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.EnsureParty(ctx, db, billing.PartyCreator, "Maker", "maker@example.com", &makerID); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.EnsureParty(ctx, db, billing.PartyCollaborator, "Pat Partner", "pat@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if resp, err = http.PostForm(base+"/password/forgot", url.Values{"email": {"maker@example.com"}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	routes := getRoutes(t)
	for _, tt := range []struct {
		role   string
		client *http.Client
		start  string
		want   []string
	}{
		{"creator", creator, "/dashboard", creatorRoutes},
		{"admin", admin, "/dashboard", adminRoutes},
		{"partner", partner, "/dashboard", partnerRoutes},
		{"anonymous", &http.Client{}, "/", anonymousRoutes},
	} {
		t.Run(tt.role, func(t *testing.T) {
			reached := crawl(t, tt.client, base, tt.start, routes)
			for _, p := range tt.want {
				if !reached[p] {
					t.Errorf("%s cannot reach GET %s by clicking from %s", tt.role, p, tt.start)
				}
			}
			if t.Failed() {
				var got []string
				for p := range reached {
					got = append(got, p)
				}
				slices.Sort(got)
				t.Logf("reached: %s", strings.Join(got, " "))
			}
		})
	}
}
