package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// fanFixture signs a creator up over HTTP, makes a show with a goal and publishes two episodes
// straight in the database (as the fleet would), returning the creator's cookies.
func fanFixture(t *testing.T, base, dbURL, slug string) *http.Client {
	t.Helper()
	c := newClient()
	for _, step := range []struct {
		path string
		form url.Values
	}{
		{"/signup", url.Values{"name": {"Nina Creator"}, "email": {slug + "@example.com"}, "password": {"a long enough password"}}},
		{"/login", url.Values{"email": {slug + "@example.com"}, "password": {"a long enough password"}}},
		{"/shows", url.Values{"title": {"Night Signals"}, "slug": {slug}, "currency": {"USD"}, "funding_goal": {"200"},
			"description": {"A web series about radio operators who hear the future."}}},
	} {
		resp, err := c.PostForm(base+step.path, step.form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i, title := range []string{"Pilot: Static on the Line", "The Long Frequency"} {
		_, err := conn.Exec(ctx, `
			WITH e AS (INSERT INTO episodes (show_id, title, description, status, published_at)
			           SELECT id, $2, 'Episode notes.', 'published', now() FROM shows WHERE slug = $1 RETURNING id)
			INSERT INTO torrents (episode_id, infohash, name, length, piece_length, sha256, content_type, content_path, metainfo, status, published_at, completed)
			SELECT id, substring(sha256($3::bytea) from 1 for 20), $4, 1048576, 16384, sha256($3::bytea), 'video/mp4', '/nonexistent', 'd4:infod6:lengthi1e4:name1:xee'::bytea, 'published', now(), $5 FROM e`,
			slug, title, []byte(slug+title), fmt.Sprintf("episode-%d.mp4", i+1), 10*(i+1))
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestBrowserFanPagesFit opens the show page, an episode page and the dashboard on a phone and a
// desktop window: nothing scrolls sideways, and screenshots are kept.
func TestBrowserFanPagesFit(t *testing.T) {
	dbURL := dbtest.NewURL(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL})
	fanFixture(t, base, dbURL, "fit-show")
	var showID int64
	conn, _ := pgx.Connect(context.Background(), dbURL)
	conn.QueryRow(context.Background(), `SELECT id FROM shows WHERE slug = 'fit-show'`).Scan(&showID)
	// The creator is paid as a party with a threshold of its own, so Get paid has its tables.
	party, err := billing.EnsureParty(context.Background(), conn, billing.PartyCreator, "Fit", "fit-show@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := billing.SetPayoutThreshold(context.Background(), conn, party.ID, "EUR", ptrTo(int64(2500))); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())

	for _, width := range []int{375, 1280} {
		t.Run(strconv.Itoa(width)+"px", func(t *testing.T) {
			ctx := newBrowser(t, width, 900)
			for _, p := range []struct{ name, path string }{
				{"show", "/s/fit-show"},
				{"dashboard", fmt.Sprintf("/shows/%d/dashboard", showID)},
				{"get-paid", "/connect"},
			} {
				if p.name == "dashboard" {
					if err := chromedp.Do(ctx,
						chromedp.Navigate(base+"/login"),
						chromedp.SendKeys(chromedp.ID("email"), "fit-show@example.com"),
						chromedp.SendKeys(chromedp.ID("password"), "a long enough password"),
						chromedp.Click(chromedp.CSS("form button[type=submit]")),
						chromedp.WaitVisible(chromedp.CSS(`a[href="/shows/new"]`)),
					); err != nil {
						t.Fatal(err)
					}
				}
				if err := chromedp.Do(ctx, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				noOverflow(t, ctx, p.name+" page")
				shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(screenshotDir(t), fmt.Sprintf("%s-%d.png", p.name, width)), shot, 0o644)
			}
		})
	}
}

// TestBrowserEmbedOnAnotherSite puts the donate button snippet on a page served from another
// origin; the browser loads the script, which frames the button, and the button leads to the
// show's donate page.
func TestBrowserEmbedOnAnotherSite(t *testing.T) {
	dbURL := dbtest.NewURL(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL})
	fanFixture(t, base, dbURL, "embed-show")

	page := `<!doctype html><html><body><h1>A blog</h1>
<div data-fanseed-show="embed-show"></div><script src="` + base + `/static/embed.js" async></script></body></html>`
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(page))
	})}
	go other.Serve(ln)
	defer other.Close()
	blog := "http://" + ln.Addr().String() + "/"
	if strings.HasPrefix(base, blog) {
		t.Fatal("the blog must be another origin")
	}

	ctx := newBrowser(t, 1000, 700)
	if err := chromedp.Do(ctx, chromedp.Navigate(blog), chromedp.WaitVisible(chromedp.CSS("iframe"))); err != nil {
		t.Fatal(err)
	}
	// The frame is another origin, so ask its document through the frame's own context.
	deadline := time.Now().Add(15 * time.Second)
	var href string
	for time.Now().Before(deadline) {
		// Each try is bounded: a query into a frame document that has since been replaced (the
		// frame's first about:blank) would otherwise wait for good.
		try, cancel := context.WithTimeout(ctx, 2*time.Second)
		nodes, err := chromedp.Run(try, chromedp.Nodes(chromedp.CSS("iframe"), chromedp.Populate(-1, true)))
		if err == nil && len(nodes) == 1 && nodes[0].ContentDocument != nil {
			if h, err := chromedp.Run(try, chromedp.AttributeValue(chromedp.CSS("#donate"), "href", chromedp.FromNode(nodes[0].ContentDocument))); err == nil && h.Exists {
				href = h.Value
				cancel()
				break
			}
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	if href != base+"/s/embed-show/donate" {
		t.Fatalf("the framed button links to %q, want %s/s/embed-show/donate", href, base)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		os.WriteFile(filepath.Join(screenshotDir(t), "embed.png"), shot, 0o644)
	}
}

// TestBrowserFanDonates is a fan in a real browser: opens the show page, donates in offline test
// mode, completes the test checkout, and sees the goal bar move and their name among supporters.
func TestBrowserFanDonates(t *testing.T) {
	dbURL := dbtest.NewURL(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL})
	c := fanFixture(t, base, dbURL, "donate-show")
	var showID int64
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	conn.QueryRow(context.Background(), `SELECT id FROM shows WHERE slug = 'donate-show'`).Scan(&showID)
	conn.Close(context.Background())
	resp, err := c.PostForm(fmt.Sprintf("%s/shows/%d/plan", base, showID), url.Values{
		"name": {"Fanseed (distributor)", "Nina Creator"}, "email": {"", "donate-show@example.com"},
		"percent": {"25", "75"}, "fee_policy": {"net"}, "source": {"all"}, "action": {"save"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	ctx := newBrowser(t, 1000, 900)
	before, err := runText(ctx, base+"/s/donate-show", "#goal-month")
	if err != nil || before != "0.00 USD" {
		t.Fatalf("goal before the donation: %q, %v", before, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/s/donate-show/donate"]`)),
		chromedp.WaitVisible(chromedp.ID("display_name")),
		chromedp.Click(chromedp.CSS(`input[name="amount"]`)), // the first preset
		chromedp.SendKeys(chromedp.ID("display_name"), "Ada Fan"),
		chromedp.SendKeys(chromedp.ID("message"), "Loved the pilot!"),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="pay"]`)),
	); err != nil {
		t.Fatal(err)
	}
	checkout, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil || !strings.Contains(checkout, "TEST MODE: NO REAL MONEY") {
		t.Fatalf("the test checkout is not marked as a test: %v\n%s", err, checkout)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value="pay"]`)), chromedp.WaitNotPresent(chromedp.CSS(`button[value="pay"]`))); err != nil {
		t.Fatal(err)
	}
	if thanks, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main h1"))); err != nil || thanks != "Thank you!" {
		t.Fatalf("after the test payment: %q, %v", thanks, err)
	}
	// The payment is applied by a background job and the page is cached for seconds: reload until
	// it shows.
	deadline := time.Now().Add(30 * time.Second)
	var goal, supporters string
	for time.Now().Before(deadline) {
		if goal, err = runText(ctx, base+"/s/donate-show", "#goal-month"); err != nil {
			t.Logf("reading the goal: %v", err)
		}
		supporters, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		if goal != before && strings.Contains(supporters, "Ada Fan") {
			break
		}
		time.Sleep(time.Second)
	}
	if goal == before || !strings.Contains(supporters, "Ada Fan") || !strings.Contains(supporters, "Loved the pilot!") {
		t.Fatalf("after the donation: goal %q (was %q), supporters %q", goal, before, supporters)
	}
	if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		os.WriteFile(filepath.Join(screenshotDir(t), "donated.png"), shot, 0o644)
	}
}

// runText opens a page and returns the text of one element.
func runText(ctx context.Context, page, sel string) (string, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
		return "", err
	}
	return chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
}
