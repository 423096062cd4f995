package api_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/templates"
)

// inlineCode finds what a Content-Security-Policy without 'unsafe-inline' blocks: a script
// element without src, a style element, an event handler or style attribute, a javascript: URL.
func inlineCode(html string) []string {
	var found []string
	for _, tag := range regexp.MustCompile(`(?is)<[a-z][^>]*>`).FindAllString(html, -1) {
		switch {
		case regexp.MustCompile(`(?i)^<script\b`).MatchString(tag) && !regexp.MustCompile(`(?i)\ssrc=`).MatchString(tag),
			regexp.MustCompile(`(?i)^<style\b`).MatchString(tag),
			regexp.MustCompile(`(?i)\s(on[a-z]+|style)\s*=`).MatchString(tag),
			regexp.MustCompile(`(?i)=\s*["']?\s*javascript:`).MatchString(tag):
			found = append(found, tag)
		}
	}
	return found
}

// No template holds code a strict Content-Security-Policy would block.
func TestTemplatesHaveNoInlineCode(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(templates.FS, "*.html")
	if err != nil || len(names) == 0 {
		t.Fatalf("templates: %v %v", names, err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(templates.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range inlineCode(string(b)) {
			t.Errorf("%s: %s would be blocked by the Content-Security-Policy", name, tag)
		}
	}
}

func directives(csp string) map[string]string {
	d := map[string]string{}
	for _, part := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), " ")
		d[name] = value
	}
	return d
}

// Every portal and fan page, as rendered, carries the security headers and no inline code;
// the embeddable donate button alone may be framed, by any site.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	ts, _ := newMoneyServer(t)
	ctx := context.Background()
	show := donationShow(t, ts, "headers-show")
	owner := user{Account: catalog.Account{ID: show.OwnerID}}
	if tok, err := catalog.CreateSession(ctx, ts.db, show.OwnerID); err != nil {
		t.Fatal(err)
	} else {
		owner.token = tok
	}
	admin := ts.newUser(t, "admin@example.com", catalog.RoleAdmin)
	ep, _ := ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))
	party, err := billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "Maker", "headers-show@example.com", &show.OwnerID)
	if err != nil {
		t.Fatal(err)
	}
	resp := ts.do(t, nil, "POST", "/s/headers-show/donate", url.Values{"amount": {"custom"}, "custom": {"12.00"}, "frequency": {"once"}})
	checkout := resp.Header.Get("Location")
	if !strings.HasPrefix(checkout, "/checkout/test/") {
		t.Fatalf("donating: %d to %q", resp.StatusCode, checkout)
	}
	sp := fmt.Sprintf("/shows/%d", show.ID)
	pages := []struct {
		u    *user
		path string
	}{
		{nil, "/"}, {nil, "/login"}, {nil, "/signup"}, {nil, "/no-such-page"},
		{nil, "/s/headers-show"}, {nil, fmt.Sprintf("/s/headers-show/e/%d", ep.ID)},
		{nil, "/s/headers-show/donate"}, {nil, "/s/headers-show/donate/thanks"}, {nil, checkout},
		{nil, "/static/app.css"},
		{&owner, "/dashboard"}, {&owner, sp}, {&owner, sp + "/dashboard"}, {&owner, sp + "/plan"}, {&owner, sp + "/edit"},
		{&owner, sp + "/sponsorships"}, {&owner, "/statements"}, {&owner, fmt.Sprintf("/statements/%d", party.ID)},
		{&owner, "/connect"}, {&owner, "/account/tokens"},
		{&admin, "/admin"}, {&admin, "/admin/fleet"}, {&admin, "/admin/events"}, {&admin, "/admin/payouts"}, {&admin, "/admin/refunds"},
	}
	for _, p := range pages {
		resp := ts.do(t, p.u, "GET", p.path, nil)
		body := readBody(t, resp)
		if resp.StatusCode >= 500 || (resp.StatusCode >= 300 && p.path != "/no-such-page") {
			t.Errorf("GET %s: status %d", p.path, resp.StatusCode)
			continue
		}
		csp := resp.Header.Get("Content-Security-Policy")
		d := directives(csp)
		if d["script-src"] != "'self'" || d["style-src"] != "'self'" || d["frame-ancestors"] != "'none'" ||
			d["object-src"] != "'none'" || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q", p.path, csp)
		}
		for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "strict-origin-when-cross-origin"} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("GET %s: %s %q, want %q", p.path, name, got, want)
			}
		}
		for _, tag := range inlineCode(body) {
			t.Errorf("GET %s: the page holds %s, which the policy blocks", p.path, tag)
		}
	}

	resp = ts.do(t, nil, "GET", "/s/headers-show/embed", nil)
	body := readBody(t, resp)
	d := directives(resp.Header.Get("Content-Security-Policy"))
	if resp.StatusCode != http.StatusOK || d["frame-ancestors"] != "*" || d["script-src"] != "'self'" || d["style-src"] != "'self'" ||
		resp.Header.Get("X-Frame-Options") != "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("embed: status %d, policy %q, X-Frame-Options %q: want any site to frame it", resp.StatusCode,
			resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Frame-Options"))
	}
	if tags := inlineCode(body); len(tags) > 0 {
		t.Errorf("embed holds %v", tags)
	}
}

// /static/ serves its files and lists no directory.
func TestStaticListsNoDirectory(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, path := range []string{"/static/", "/static/.", "/static/./"} {
		resp := ts.do(t, nil, "GET", path, nil)
		if body := readBody(t, resp); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "app.css") {
			t.Errorf("GET %s: status %d, want 404 and no listing:\n%s", path, resp.StatusCode, body)
		}
	}
	resp := ts.do(t, nil, "GET", "/static/app.css", nil)
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") ||
		!strings.Contains(body, "box-sizing") {
		t.Errorf("GET /static/app.css: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// /metrics answers clients in the allowed networks (loopback by default), and others only
// with the metrics token.
func TestMetricsOnlyForAllowedClients(t *testing.T) {
	t.Parallel()
	const token = "metrics-token-0123456789"
	scrape := func(ts *testServer, auth string) int {
		readBody(t, ts.do(t, nil, "GET", "/healthz", nil)) // a request for the metrics to count
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp := ts.send(t, nil, req)
		body := readBody(t, resp)
		if resp.StatusCode == http.StatusOK && !strings.Contains(body, "fanseed_http_requests_total") {
			t.Errorf("/metrics answered 200 without the metrics")
		}
		if resp.StatusCode != http.StatusOK && strings.Contains(body, "fanseed_") {
			t.Errorf("/metrics answered %d with metrics", resp.StatusCode)
		}
		return resp.StatusCode
	}
	byDefault := newTestServer(t)
	if got := scrape(byDefault, ""); got != http.StatusOK {
		t.Errorf("from loopback with the default networks: status %d, want 200", got)
	}
	elsewhere := newTestServerWith(t, func(c *api.Config) {
		c.MetricsAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		c.MetricsToken = token
	}, io.Discard)
	for _, tt := range []struct {
		auth string
		want int
	}{
		{"", http.StatusNotFound},
		{"Bearer wrong-token-0123456789", http.StatusNotFound},
		{"Basic " + token, http.StatusNotFound},
		{"Bearer " + token, http.StatusOK},
		{"bearer " + token, http.StatusOK},
	} {
		if got := scrape(elsewhere, tt.auth); got != tt.want {
			t.Errorf("from loopback, networks 10.0.0.0/8, Authorization %q: status %d, want %d", tt.auth, got, tt.want)
		}
	}
	none := newTestServerWith(t, func(c *api.Config) { c.MetricsAllow = []netip.Prefix{} }, io.Discard)
	if got := scrape(none, ""); got != http.StatusNotFound {
		t.Errorf("no network allowed: status %d, want 404", got)
	}
	if got := scrape(none, "Bearer "+token); got != http.StatusNotFound {
		t.Errorf("no network and no token configured: status %d, want 404", got)
	}
}

// A path holding a secret (a pay link, a pledge, a passkey, a test checkout) is logged as its
// route: whoever reads the log cannot use the link.
func TestSecretsStayOutOfTheLog(t *testing.T) {
	t.Parallel()
	logs := &testkit.LogBuffer{}
	ts := newTestServerWith(t, nil, logs)
	secrets := map[string]string{
		"/sponsor/sp_secretpaylink0000":                 "/sponsor/{token}",
		"/pledges/pl_secretpledge0000":                  "/pledges/{token}",
		"/early/passkeysecret0000/announce":             "/early/{passkey}/announce",
		"/checkout/test/cs_test_secretsession0":         "/checkout/test/{session}",
		"/overlay/ov_secretoverlay00000":                "/overlay/{token}",
		"/early/passkeysecret0001/aa/1/sigsecret0/name": "/early/{passkey}/{infohash}/{expires}/{sig}/{name}",
	}
	for path := range secrets {
		readBody(t, ts.do(t, nil, "GET", path, nil))
	}
	log := logs.String()
	for path, route := range secrets {
		for _, part := range strings.Split(path, "/") {
			if strings.Contains(part, "secret") && strings.Contains(log, part) {
				t.Errorf("the log holds the secret %q of %s", part, path)
			}
		}
		if !strings.Contains(log, `"path":"`+route+`"`) {
			t.Errorf("no request line with the path %s", route)
		}
	}
}
