package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/catalog"
)

type apiErr struct {
	Error struct{ Code, Message string } `json:"error"`
}

// api sends a request to the JSON API with a bearer token ("" for none) and decodes the body.
func (ts *testServer) api(t *testing.T, token, method, path string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp
}

var tokenRE = regexp.MustCompile(`<code id="token-secret">(fst_[A-Za-z0-9_-]+)</code>`)

// createToken makes a read token through the portal page and returns its secret.
func (ts *testServer) createToken(t *testing.T, u *user, name string) string {
	t.Helper()
	return ts.createScopedToken(t, u, name, "read")
}

// createScopedToken makes a token of the scope through the portal page, for 30 days.
func (ts *testServer) createScopedToken(t *testing.T, u *user, name, scope string) string {
	t.Helper()
	resp := ts.do(t, u, "POST", "/account/tokens", url.Values{"name": {name}, "scope": {scope}, "expiry": {"30"}})
	body := readBody(t, resp)
	m := tokenRE.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("create token: status %d, no secret shown:\n%s", resp.StatusCode, body)
	}
	return m[1]
}

func TestTokens(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newMoneyFixture(t, ts)
	ctx := context.Background()
	secret := ts.createToken(t, &f.partner, "accounting")

	// Stored hashed: the secret is nowhere in the table, its SHA-256 is.
	sum := sha256.Sum256([]byte(secret))
	var n int
	ts.db.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE token_hash = $1 AND name = 'accounting'`, sum[:]).Scan(&n)
	var leaked bool
	ts.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_tokens t WHERE strpos(t::text, $1) > 0)`, secret[4:]).Scan(&leaked)
	if n != 1 || leaked {
		t.Fatalf("token rows with its hash: %d; secret stored: %v", n, leaked)
	}
	// Shown once: the list page never has it again.
	if body := readBody(t, ts.do(t, &f.partner, "GET", "/account/tokens", nil)); strings.Contains(body, secret) || !strings.Contains(body, "accounting") {
		t.Fatal("the token list shows the secret, or not the token")
	}
	if resp := ts.do(t, &f.partner, "POST", "/account/tokens", url.Values{"name": {""}}); resp.StatusCode != 400 {
		t.Errorf("token without a name: %d, want 400", resp.StatusCode)
	}

	// The token reads the partner's statements, through the API and the CSV.
	var list struct {
		Data []struct {
			ID   int64
			Name string
		}
	}
	if resp := ts.api(t, secret, "GET", "/api/v1/statements", &list); resp.StatusCode != 200 || len(list.Data) != 1 || list.Data[0].ID != f.collab.ID {
		t.Fatalf("statements with the token: %d %+v", resp.StatusCode, list)
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/statements/%d.csv?period=2026-01", ts.URL, f.collab.ID), nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CSV with the token: %v %v", resp, err)
	}
	var last *string
	ts.db.QueryRow(ctx, `SELECT last_used_at::text FROM api_tokens WHERE token_hash = $1`, sum[:]).Scan(&last)
	if last == nil {
		t.Error("last_used_at not recorded")
	}

	// Another party's statement: 403. Writes: 403 (read-only). Wrong token: 401.
	var e apiErr
	if resp := ts.api(t, secret, "GET", fmt.Sprintf("/api/v1/statements/%d", f.creator.ID), &e); resp.StatusCode != 403 || e.Error.Code != "forbidden" {
		t.Errorf("another party's statement: %d %+v", resp.StatusCode, e)
	}
	for _, w := range [][2]string{{"POST", "/api/v1/shows"}, {"PATCH", "/api/v1/shows/1"}, {"PUT", "/api/v1/shows/1/plan"}} {
		e = apiErr{}
		if resp := ts.api(t, secret, w[0], w[1], &e); resp.StatusCode != 403 || e.Error.Code != "insufficient_scope" ||
			!strings.Contains(e.Error.Message, "write scope") {
			t.Errorf("%s %s with a read token: %d %+v", w[0], w[1], resp.StatusCode, e)
		}
	}
	// A partner's write token writes nothing: partners manage no shows.
	writer := ts.createScopedToken(t, &f.partner, "writer", "write")
	e = apiErr{}
	if resp := ts.api(t, writer, "POST", "/api/v1/shows", &e); resp.StatusCode != 403 || e.Error.Code != "forbidden" {
		t.Errorf("a partner's write token creating a show: %d %+v", resp.StatusCode, e)
	}
	if body := readBody(t, ts.do(t, &f.partner, "GET", "/account/tokens", nil)); !strings.Contains(body, "<td>write</td>") ||
		!strings.Contains(body, time.Now().AddDate(0, 0, 30).UTC().Format("2006-01-02")) {
		t.Error("the token list does not show the write token's scope and expiry")
	}
	for _, bad := range []string{"fst_wrong", secret + "x", "not-a-token"} {
		e = apiErr{}
		resp := ts.api(t, bad, "GET", "/api/v1/statements", &e)
		if resp.StatusCode != 401 || e.Error.Code != "unauthorized" || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("token %q: %d %+v", bad, resp.StatusCode, e)
		}
	}

	// Only its owner revokes it; then it is 401.
	var id int64
	ts.db.QueryRow(ctx, `SELECT id FROM api_tokens WHERE token_hash = $1`, sum[:]).Scan(&id)
	if resp := ts.do(t, &f.other, "POST", fmt.Sprintf("/account/tokens/%d/revoke", id), url.Values{}); resp.StatusCode != 404 {
		t.Errorf("revoke another's token: %d, want 404", resp.StatusCode)
	}
	if resp := ts.api(t, secret, "GET", "/api/v1/statements", nil); resp.StatusCode != 200 {
		t.Fatalf("token after another's revoke attempt: %d", resp.StatusCode)
	}
	if resp := ts.do(t, &f.partner, "POST", fmt.Sprintf("/account/tokens/%d/revoke", id), url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	e = apiErr{}
	if resp := ts.api(t, secret, "GET", "/api/v1/statements", &e); resp.StatusCode != 401 || e.Error.Code != "unauthorized" {
		t.Errorf("revoked token: %d %+v", resp.StatusCode, e)
	}
	if body := readBody(t, ts.do(t, &f.partner, "GET", "/account/tokens", nil)); !strings.Contains(body, "revoked") {
		t.Error("the token list does not show the token revoked")
	}
}

func TestAPIv1(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newMoneyFixture(t, ts)
	ctx := context.Background()
	token := ts.createToken(t, &f.owner, "script")
	otherToken := ts.createToken(t, &f.other, "script")
	for i := 0; i < 4; i++ {
		if _, err := catalog.CreateShow(ctx, ts.db, f.owner.ID, catalog.ShowInput{Slug: fmt.Sprintf("extra-%d", i), Title: "Extra", Currency: "EUR"}); err != nil {
			t.Fatal(err)
		}
	}
	foreign, err := catalog.CreateShow(ctx, ts.db, f.other.ID, catalog.ShowInput{Slug: "foreign", Title: "Foreign", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ShowsPaginate", func(t *testing.T) {
		seen := map[int64]bool{}
		cursor, pages := "", 0
		for {
			var page struct {
				Data []struct {
					ID   int64
					Slug string
				}
				NextCursor *string `json:"next_cursor"`
			}
			path := "/api/v1/shows?limit=2"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			if resp := ts.api(t, token, "GET", path, &page); resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
			pages++
			for _, s := range page.Data {
				if seen[s.ID] || s.ID == foreign.ID {
					t.Fatalf("show %d twice, or another's", s.ID)
				}
				seen[s.ID] = true
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		if len(seen) != 5 || pages != 3 {
			t.Fatalf("%d shows in %d pages, want 5 in 3", len(seen), pages)
		}
		for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?cursor=!!", "?cursor=" + url.QueryEscape("aWQ6eA")} {
			var e apiErr
			if resp := ts.api(t, token, "GET", "/api/v1/shows"+q, &e); resp.StatusCode != 400 || e.Error.Code != "invalid" || e.Error.Message == "" {
				t.Errorf("shows%s: %d %+v", q, resp.StatusCode, e)
			}
		}
	})

	t.Run("Episodes", func(t *testing.T) {
		ep, rec := ts.publishedEpisode(t, f.show, "Pilot", "pilot.mp3", []byte("ID3 audio bytes for the api"))
		draft, _ := catalog.CreateEpisode(ctx, ts.db, f.show.ID, catalog.EpisodeInput{Title: "Draft"})
		var page struct {
			Data []struct {
				ID      int64
				Status  string
				Torrent *struct {
					InfoHash   string `json:"infohash"`
					Length     int64
					Magnet     string
					TorrentURL string `json:"torrent_url"`
				}
				Stats struct{ Completed int64 }
			}
		}
		if resp := ts.api(t, token, "GET", fmt.Sprintf("/api/v1/shows/%d/episodes", f.show.ID), &page); resp.StatusCode != 200 || len(page.Data) != 2 {
			t.Fatalf("episodes: %d %+v", resp.StatusCode, page)
		}
		pub, dr := page.Data[0], page.Data[1]
		if pub.ID != ep.ID || pub.Torrent == nil || pub.Torrent.InfoHash != rec.InfoHashHex() || pub.Torrent.Length != rec.Length ||
			!strings.HasPrefix(pub.Torrent.Magnet, "magnet:?xt=urn:btih:"+rec.InfoHashHex()) || pub.Stats.Completed != 7 ||
			!strings.HasSuffix(pub.Torrent.TorrentURL, "/t/"+rec.InfoHashHex()+".torrent") {
			t.Errorf("published episode %+v", pub)
		}
		if dr.ID != draft.ID || dr.Torrent != nil || dr.Status != "draft" {
			t.Errorf("draft episode %+v", dr)
		}
		var e apiErr
		if resp := ts.api(t, otherToken, "GET", fmt.Sprintf("/api/v1/shows/%d/episodes", f.show.ID), &e); resp.StatusCode != 404 || e.Error.Code != "not_found" {
			t.Errorf("another's episodes: %d %+v", resp.StatusCode, e)
		}
	})

	t.Run("Donations", func(t *testing.T) {
		if _, err := ts.db.Exec(ctx, `INSERT INTO donations (show_id, amount, currency, display_name, anonymous, status, paid_at) VALUES
			($1, 500, 'USD', 'Ada', false, 'paid', now()), ($1, 700, 'USD', 'Secret Sam', true, 'paid', now()),
			($1, 900, 'USD', 'Pending Pat', false, 'pending', NULL), ($2, 1100, 'USD', 'Elsewhere', false, 'paid', now())`,
			f.show.ID, foreign.ID); err != nil {
			t.Fatal(err)
		}
		var page struct {
			Data []struct {
				Amount      int64
				DisplayName string `json:"display_name"`
				Anonymous   bool
			}
		}
		if resp := ts.api(t, token, "GET", "/api/v1/donations", &page); resp.StatusCode != 200 || len(page.Data) != 2 {
			t.Fatalf("donations: %d %+v", resp.StatusCode, page)
		}
		if page.Data[0].Amount != 500 || page.Data[0].DisplayName != "Ada" || page.Data[1].DisplayName != "" || !page.Data[1].Anonymous {
			t.Errorf("donations %+v", page.Data)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		for _, tt := range []struct {
			token, path string
			status      int
			code        string
		}{
			{"", "/api/v1/shows", 401, "unauthorized"},
			{token, fmt.Sprintf("/api/v1/shows/%d", foreign.ID), 404, "not_found"},
			{token, "/api/v1/shows/abc", 404, "not_found"},
			{token, "/api/v1/nothing-here", 404, "not_found"},
			{token, fmt.Sprintf("/api/v1/statements/%d", f.collab.ID), 403, "forbidden"},
			{token, fmt.Sprintf("/api/v1/statements/%d?from=2026-02-01&to=2026-01-01", f.creator.ID), 400, "invalid"},
		} {
			var e apiErr
			if resp := ts.api(t, tt.token, "GET", tt.path, &e); resp.StatusCode != tt.status || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Errorf("GET %s: %d %+v, want %d %s", tt.path, resp.StatusCode, e, tt.status, tt.code)
			}
		}
	})
}

// Every path of the OpenAPI document answers on the real server (not with the API's 404).
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	owner := ts.newUser(t, "o@example.com", catalog.RoleCreator)
	token := ts.createToken(t, &owner, "t")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if resp := ts.api(t, "", "GET", "/api/v1/openapi.json", &doc); resp.StatusCode != 200 || doc.OpenAPI != "3.1.0" || len(doc.Paths) < 7 {
		t.Fatalf("openapi.json: %d %+v", resp.StatusCode, doc)
	}
	show, _ := catalog.CreateShow(context.Background(), ts.db, owner.ID, catalog.ShowInput{Slug: "doc-show", Title: "Doc", Currency: "USD"})
	ep, _ := catalog.CreateEpisode(context.Background(), ts.db, show.ID, catalog.EpisodeInput{Title: "Doc"})
	for path, ops := range doc.Paths {
		if _, ok := ops["get"]; !ok || strings.HasPrefix(path, "/uploads") || strings.HasSuffix(path, "/plan") {
			continue // /plan is 404 until the show has a plan
		}
		p := strings.NewReplacer("{showID}", fmt.Sprint(show.ID), "{partyID}", "1", "{episodeID}", fmt.Sprint(ep.ID)).Replace(path)
		var e apiErr
		resp := ts.api(t, token, "GET", "/api/v1"+p, &e)
		if resp.StatusCode == 404 || resp.StatusCode == 405 || resp.StatusCode >= 500 {
			t.Errorf("documented GET %s: %d %+v", path, resp.StatusCode, e)
		}
	}
}
