package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/catalog"
)

// TestPagesSpeakPlainly: sizes read in KiB, MiB and GiB; counts of one take the singular.
func TestPagesSpeakPlainly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "plain", Title: "Plain", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	ep, rec := ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))
	if _, err := ts.db.Exec(ctx, `UPDATE torrents SET length = 1572864, completed = 1 WHERE id = $1`, rec.ID); err != nil {
		t.Fatal(err)
	}
	page := readBody(t, ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/episodes/%d", show.ID, ep.ID), nil))
	if !strings.Contains(page, ">1.5 MiB<") || strings.Contains(page, "1572864 bytes<") {
		t.Errorf("episode page does not give the size as 1.5 MiB")
	}
	if page := readBody(t, ts.do(t, nil, "GET", fmt.Sprintf("/s/plain/e/%d", ep.ID), nil)); !strings.Contains(page, "pilot.mp3 · 1.5 MiB") {
		t.Errorf("fan episode page does not give the size as 1.5 MiB")
	}

	for path, want := range map[string]string{
		"/s/plain": "· 1 download</span>", fmt.Sprintf("/s/plain/e/%d", ep.ID): "1.5 MiB · 1 download ·",
	} {
		if page := readBody(t, ts.do(t, nil, "GET", path, nil)); !strings.Contains(page, want) || strings.Contains(page, "1 downloads") {
			t.Errorf("%s does not say %q", path, want)
		}
	}
	day := time.Now().UTC().Add(-time.Hour)
	if _, err := ts.db.Exec(ctx, `INSERT INTO swarm_stats (torrent_id, bucket, seeders, leechers, completed, announces, downloaders) VALUES ($1, $2, 1, 1, 1, 1, 1)`,
		rec.ID, day); err != nil {
		t.Fatal(err)
	}
	page = readBody(t, ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard", show.ID), nil))
	if want := "<strong>1</strong> completed download in this range, by <strong>1</strong> new downloader"; !strings.Contains(page, want) {
		t.Errorf("dashboard does not say %q", want)
	}
	_, err = ts.db.Exec(ctx, `INSERT INTO swarm_stats (torrent_id, bucket, seeders, leechers, completed, announces, downloaders) VALUES ($1, $2, 1, 1, 1, 1, 1)`,
		rec.ID, day.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard", show.ID), nil))
	if want := "<strong>2</strong> completed downloads in this range, by <strong>2</strong> new downloaders"; !strings.Contains(page, want) {
		t.Errorf("dashboard does not say %q", want)
	}
}

// TestFavicon: every page links an SVG icon, served as an image, and /favicon.ico leads to it.
func TestFavicon(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	page := readBody(t, ts.do(t, nil, "GET", "/login", nil))
	if !strings.Contains(page, `<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">`) {
		t.Fatal("the layout links no icon")
	}
	resp := ts.do(t, nil, "GET", "/static/favicon.svg", nil)
	if body := readBody(t, resp); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(body, "<svg") {
		t.Errorf("/static/favicon.svg: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp = ts.do(t, nil, "GET", "/favicon.ico", nil)
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/static/favicon.svg" {
		t.Errorf("/favicon.ico: status %d to %q, want 301 to the icon", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// noInternalWords fails when a message shown to people carries an error code or a sentinel's
// words, or does not start with a capital.
func noInternalWords(t *testing.T, what, msg string) {
	t.Helper()
	msg = strings.TrimSpace(msg)
	for _, bad := range []string{"ERR_", "invalid input", "invalid:", "conflict:"} {
		if strings.Contains(msg, bad) {
			t.Errorf("%s: message %q carries %q", what, msg, bad)
		}
	}
	if msg == "" || strings.ToUpper(msg[:1]) != msg[:1] {
		t.Errorf("%s: message %q does not start with a capital", what, msg)
	}
}

// TestHomeListsShows: the home page says what Fanseed is and lists the shows that have published
// an episode, linked to their pages; a show with nothing published yet is left out.
func TestHomeListsShows(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	live, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "live-one", Title: "Live One", Currency: "EUR",
		Description: "Radio dramas from the coast."})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "empty-one", Title: "Empty One", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	ts.publishedEpisode(t, live, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))
	page := readBody(t, ts.do(t, nil, "GET", "/", nil))
	for _, want := range []string{"For fans", "For creators", "BitTorrent client", "Radio dramas from the coast."} {
		if !strings.Contains(page, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	if links := hrefs(t, page); !slices.Contains(links, "/s/live-one") || slices.Contains(links, "/s/empty-one") {
		t.Errorf("home page links %v, want the show with an episode and not the empty one", links)
	}
}
