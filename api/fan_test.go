package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
)

// publishedEpisode stores an episode with a published torrent, as the fleet leaves it.
func (ts *testServer) publishedEpisode(t *testing.T, show catalog.Show, title, name string, data []byte) (catalog.Episode, seeding.Record) {
	t.Helper()
	ctx := context.Background()
	ep, err := catalog.CreateEpisode(ctx, ts.db, show.ID, catalog.EpisodeInput{Title: title, Description: "About " + title})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := seeding.NewHasher(seeding.PieceLength(int64(len(data))))
	h.Write(data)
	sum := h.Sum()
	tor, err := seeding.BuildTorrent(sum, seeding.TorrentOptions{Name: name, TrackerURL: "http://fanseed.test/announce"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := seeding.CreateTorrent(ctx, ts.db, seeding.Record{EpisodeID: ep.ID, InfoHash: tor.InfoHash[:], Name: name,
		Length: sum.Length, PieceLength: sum.PieceLength, SHA256: sum.SHA256[:], ContentType: "audio/mpeg",
		ContentPath: "/nonexistent", Metainfo: tor.Bytes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.Exec(ctx, `UPDATE torrents SET status = 'published', published_at = now(), completed = 7 WHERE id = $1;`, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.Exec(ctx, `UPDATE episodes SET status = 'published', published_at = now() WHERE id = $1`, ep.ID); err != nil {
		t.Fatal(err)
	}
	return ep, rec
}

func TestFanPages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "night-signals", Title: "Night Signals",
		Description: "A web series.", Currency: "USD", FundingGoal: "100"})
	if err != nil {
		t.Fatal(err)
	}
	ep, rec := ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 some audio bytes"))
	draft, err := catalog.CreateEpisode(ctx, ts.db, show.ID, catalog.EpisodeInput{Title: "Unfinished"})
	if err != nil {
		t.Fatal(err)
	}

	// Money: a 30.00 payment split by a plan, and a named and an anonymous supporter.
	dist, _ := billing.DistributorParty(ctx, ts.db)
	creator, _ := billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "Maker", "maker@example.com", &owner.ID)
	plan, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceAll, billing.FeePolicyNet, time.Now().Add(-time.Hour),
		[]billing.PlanLine{{PartyID: dist.ID, BasisPoints: 2500}, {PartyID: creator.ID, BasisPoints: 7500}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.PostPayment(ctx, ts.db, billing.Payment{Gross: 3000, Fee: 117, Currency: "USD", OccurredAt: time.Now(),
		Source: billing.SourceDonations, IdempotencyKey: "payment:ch_1"}, plan); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.Exec(ctx, `INSERT INTO donations (show_id, amount, currency, display_name, message, anonymous, status, paid_at)
		VALUES ($1, 2000, 'USD', 'Ada', 'Keep going!', false, 'paid', now()),
		       ($1, 1000, 'USD', 'Hidden Person', 'secret', true, 'paid', now())`, show.ID); err != nil {
		t.Fatal(err)
	}

	resp := ts.do(t, nil, "GET", "/s/night-signals", nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("show page: status %d", resp.StatusCode)
	}
	for _, want := range []string{
		"Night Signals", "Pilot", "7 downloads", "/t/" + rec.InfoHashHex() + ".torrent", "magnet:?xt=urn:btih:" + rec.InfoHashHex(),
		"30.00 USD</strong> of 100.00 USD this month", `<progress class="goal-bar" max="100" value="30">`, "Ada", "Keep going!",
		`property="og:title" content="Night Signals"`, "/s/night-signals/donate",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("show page lacks %q", want)
		}
	}
	// The magnet carries the size and the .torrent's address (xl, xs) beside the trackers.
	if m := regexp.MustCompile(`href="(magnet:[^"]+)"`).FindStringSubmatch(body); m == nil {
		t.Error("show page has no magnet link")
	} else if mag, err := metainfo.ParseMagnetUri(html.UnescapeString(m[1])); err != nil || mag.Params.Get("xl") != strconv.FormatInt(rec.Length, 10) ||
		!strings.HasSuffix(mag.Params.Get("xs"), "/t/"+rec.InfoHashHex()+".torrent") || len(mag.Trackers) == 0 {
		t.Errorf("magnet %q: %+v, %v; want xl=%d, xs ending in the .torrent path and a tracker", m[1], mag, err, rec.Length)
	}
	for _, unwanted := range []string{"Unfinished", "Hidden Person", "secret"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("show page shows %q", unwanted)
		}
	}

	resp = ts.do(t, nil, "GET", fmt.Sprintf("/s/night-signals/e/%d", ep.ID), nil)
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "<audio controls") ||
		!strings.Contains(body, "/seed/"+rec.InfoHashHex()+"/pilot.mp3") {
		t.Errorf("episode page: status %d, want an audio player on the web seed", resp.StatusCode)
	} else if sum := sha256.Sum256([]byte("ID3\x03 some audio bytes")); !strings.Contains(body, hex.EncodeToString(sum[:])) ||
		!strings.Contains(body, "pilot.mp3 · 21 B") {
		t.Errorf("episode page lacks the file's size and SHA-256 %x", sum)
	}
	for _, path := range []string{"/s/no-such-show", fmt.Sprintf("/s/night-signals/e/%d", draft.ID), "/s/night-signals/e/abc", "/s/no-such-show/podcast.rss"} {
		if resp := ts.do(t, nil, "GET", path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}

	t.Run("TorrentFeed", func(t *testing.T) {
		feed := ts.readFeed(t, "/s/night-signals/torrents.rss")
		if len(feed.Channel.Items) != 1 {
			t.Fatalf("%d items, want the one published episode", len(feed.Channel.Items))
		}
		it := feed.Channel.Items[0]
		if it.Title != "Pilot" || it.Enclosure.Type != "application/x-bittorrent" ||
			!strings.HasSuffix(it.Enclosure.URL, "/t/"+rec.InfoHashHex()+".torrent") || it.Enclosure.Length != int64(len(rec.Metainfo)) {
			t.Fatalf("item %+v", it)
		}
	})
	t.Run("PodcastFeed", func(t *testing.T) {
		feed := ts.readFeed(t, "/s/night-signals/podcast.rss")
		if !strings.HasSuffix(feed.Channel.Funding.URL, "/s/night-signals/donate") || feed.Channel.Funding.Text == "" {
			t.Errorf("podcast:funding %+v", feed.Channel.Funding)
		}
		if len(feed.Channel.Items) != 1 {
			t.Fatalf("%d items", len(feed.Channel.Items))
		}
		enc := feed.Channel.Items[0].Enclosure
		if !strings.HasSuffix(enc.URL, "/seed/"+rec.InfoHashHex()+"/pilot.mp3") || enc.Type != "audio/mpeg" || enc.Length != rec.Length {
			t.Errorf("enclosure %+v", enc)
		}
	})
}

func TestArtwork(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(context.Background(), ts.db, owner.ID, catalog.ShowInput{Slug: "art", Title: "Art", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	upload := func(content []byte) *http.Response {
		t.Helper()
		return ts.uploadArtwork(t, &owner, show.ID, content)
	}
	png := squarePNG(t, 1400)
	if resp := upload([]byte("<svg onload=alert(1)></svg>")); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(readBody(t, resp), "PNG or JPEG") {
		t.Errorf("an SVG named .png: status %d, want 400", resp.StatusCode)
	}
	// A rejected image is told on the show's page, next to the artwork field.
	inline := regexp.MustCompile(`(?s)<h1>Art</h1>.*id="artwork"[^>]*>\s*<p class="error" role="alert">([^<]*)</p>`)
	resp := upload(append(png, make([]byte, 3<<20)...))
	if m := inline.FindStringSubmatch(readBody(t, resp)); resp.StatusCode != http.StatusRequestEntityTooLarge || m == nil || m[1] != "The image must be at most 2 MiB." {
		t.Errorf("a 3 MiB image: status %d, error on the show page %q; want 413 with the limit next to the field", resp.StatusCode, m)
	}
	resp = upload([]byte("GIF89 not really"))
	if m := inline.FindStringSubmatch(readBody(t, resp)); resp.StatusCode != http.StatusBadRequest || m == nil || !strings.Contains(m[1], "PNG or JPEG") {
		t.Errorf("not an image: status %d, error on the show page %q; want 400 next to the field", resp.StatusCode, m)
	}
	if resp := ts.do(t, nil, "GET", "/s/art/artwork", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("artwork before any upload: status %d, want 404", resp.StatusCode)
	}
	if resp := upload(png); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("PNG upload: status %d", resp.StatusCode)
	}
	resp = ts.do(t, nil, "GET", "/s/art/artwork", nil)
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || body != string(png) {
		t.Errorf("artwork: status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if body := readBody(t, ts.do(t, nil, "GET", "/s/art", nil)); !strings.Contains(body, `property="og:image"`) {
		t.Error("fan page has no og:image")
	}
}

// rssFeed is what the tests read of a show's RSS feeds.
type rssFeed struct {
	Channel struct {
		Title   string `xml:"title"`
		Funding struct {
			URL  string `xml:"url,attr"`
			Text string `xml:",chardata"`
		} `xml:"https://podcastindex.org/namespace/1.0 funding"`
		Items []struct {
			Title     string `xml:"title"`
			GUID      string `xml:"guid"`
			Enclosure struct {
				URL    string `xml:"url,attr"`
				Type   string `xml:"type,attr"`
				Length int64  `xml:"length,attr"`
			} `xml:"enclosure"`
		} `xml:"item"`
	} `xml:"channel"`
}

// readFeed fetches and decodes the feed at path.
func (ts *testServer) readFeed(t *testing.T, path string) rssFeed {
	t.Helper()
	var feed rssFeed
	resp := ts.do(t, nil, "GET", path, nil)
	if err := xml.NewDecoder(resp.Body).Decode(&feed); err != nil {
		t.Fatal(err)
	}
	return feed
}
