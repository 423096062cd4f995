package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
	"github.com/fanseed/fanseed/templates"
)

// playerFixture is a test server with a published audio episode whose file is on disk.
type playerFixture struct {
	ts    *testServer
	owner user
	show  catalog.Show
	ep    catalog.Episode
	rec   seeding.Record
	data  []byte
	tally *seeding.WebSeedTally
}

func newPlayerFixture(t *testing.T) *playerFixture {
	t.Helper()
	f := &playerFixture{tally: &seeding.WebSeedTally{}}
	f.ts = newTestServerWith(t, func(c *api.Config) {
		c.EmbedOrigins = []string{"https://blog.example"}
		c.WebSeedTally = f.tally
	}, io.Discard)
	ctx := context.Background()
	f.owner = f.ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	var err error
	if f.show, err = catalog.CreateShow(ctx, f.ts.db, f.owner.ID, catalog.ShowInput{Slug: "night-signals", Title: "Night Signals", Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	f.data = []byte("ID3\x03 " + strings.Repeat("some audio bytes ", 100))
	f.ep, f.rec = f.ts.publishedEpisode(t, f.show, "Pilot", "pilot.mp3", f.data)
	path := filepath.Join(t.TempDir(), "pilot.mp3")
	if err := os.WriteFile(path, f.data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ts.db.Exec(ctx, `UPDATE torrents SET content_path = $2 WHERE id = $1`, f.rec.ID, path); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *playerFixture) report(t *testing.T, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/s/%s/e/%d/playback", f.ts.URL, f.show.Slug, f.ep.ID), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp := f.ts.send(t, nil, req)
	return resp, readBody(t, resp)
}

// metric reads one series of /metrics ("" when absent).
func metric(t *testing.T, ts *testServer, series string) string {
	t.Helper()
	body := readBody(t, ts.do(t, nil, "GET", "/metrics", nil))
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func TestPlaybackReports(t *testing.T) {
	t.Parallel()
	f := newPlayerFixture(t)
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		resp, body := f.report(t, `{"peer_bytes":900,"web_seed_bytes":100,"uploaded_bytes":40,"first_frame_ms":700,"stalls":1,"seconds_watched":30}`)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		day := time.Now().UTC().Truncate(24 * time.Hour)
		got, err := seeding.PlaybackTotals(ctx, f.ts.db, []int64{f.rec.ID}, day, day.AddDate(0, 0, 1))
		if err != nil || got.PeerBytes != 900 || got.WebSeedBytes != 100 || got.UploadedBytes != 40 || got.FirstFrameMsSum != 700 || got.Stalls != 1 || got.SecondsWatched != 30 {
			t.Fatalf("PlaybackTotals = %+v, %v", got, err)
		}
		for series, want := range map[string]string{
			`fanseed_playback_bytes_total{source="peers"}`:    "900",
			`fanseed_playback_bytes_total{source="web_seed"}`: "100",
			`fanseed_playback_bytes_total{source="uploaded"}`: "40",
		} {
			if got := metric(t, f.ts, series); got != want {
				t.Errorf("%s = %q, want %s", series, got, want)
			}
		}
		// The creator's dashboard: 90% from the swarm, the 900 bytes the origin did not send.
		dash := readBody(t, f.ts.do(t, &f.owner, "GET", fmt.Sprintf("/shows/%d/dashboard", f.show.ID), nil))
		for _, want := range []string{`Delivered by the swarm: <strong id="swarm-share">90%</strong>`, `<td class="num" id="egress-saved">900 B</td>`, "0.7 s"} {
			if !strings.Contains(dash, want) {
				t.Errorf("dashboard lacks %q", want)
			}
		}
	})
	for _, tt := range []struct{ name, body, field string }{
		{"ErrNegative", `{"peer_bytes":-5,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":0}`, "peer_bytes must not be negative"},
		{"ErrMissing", `{"peer_bytes":5,"uploaded_bytes":0,"stalls":0,"seconds_watched":0}`, "web_seed_bytes is missing"},
		{"ErrUnknown", `{"peer_bytes":5,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":0,"ip":"1.2.3.4"}`, "ip is not a field"},
		{"ErrMoreThanTheFile", `{"peer_bytes":99999999999,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":0}`, "peer_bytes is more than"},
		{"ErrNotJSON", `peer_bytes=5`, "JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.report(t, tt.body)
			var e struct{ Error string }
			json.Unmarshal([]byte(body), &e)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, tt.field) || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("status %d, %q; want 400 with an error naming %q", resp.StatusCode, body, tt.field)
			}
		})
	}
	t.Run("ErrNoEpisode", func(t *testing.T) {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/s/%s/e/%d/playback", f.ts.URL, f.show.Slug, f.ep.ID+1000), strings.NewReader(`{}`))
		if resp := f.ts.send(t, nil, req); resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("ErrRateLimited", func(t *testing.T) {
		valid := `{"peer_bytes":1,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":0}`
		for i := range 20 {
			resp, body := f.report(t, valid)
			if resp.StatusCode == http.StatusTooManyRequests {
				if resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "too many playback reports") {
					t.Errorf("429 without Retry-After or a reason: %q", body)
				}
				return
			}
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("report %d: status %d: %s", i, resp.StatusCode, body)
			}
		}
		t.Error("20 reports in a row from one address were all taken")
	})
}

// The web seed answers CORS preflights with Range allowed, serves ranges to other sites'
// pages, and counts what it sends by who asked: the player (a CORS fetch), a browser element
// (Fetch Metadata without CORS) or a BitTorrent client (no Fetch Metadata).
func TestWebSeedCORSAndCounts(t *testing.T) {
	t.Parallel()
	f := newPlayerFixture(t)
	seed := f.ts.URL + "/seed/" + f.rec.InfoHashHex() + "/pilot.mp3"

	req, _ := http.NewRequest("OPTIONS", seed, nil)
	req.Header.Set("Origin", "https://blog.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "range")
	resp := f.ts.send(t, nil, req)
	h := resp.Header
	if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Range") ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") {
		t.Fatalf("preflight: status %d, headers %v", resp.StatusCode, h)
	}

	get := func(rng string, headers map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", seed, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		return f.ts.send(t, nil, req)
	}
	resp = get("bytes=0-9", map[string]string{"Origin": "https://blog.example", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "empty"})
	if body := readBody(t, resp); resp.StatusCode != http.StatusPartialContent || body != string(f.data[:10]) ||
		resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Content-Range") {
		t.Fatalf("player's range: status %d, %q, headers %v", resp.StatusCode, body, resp.Header)
	}
	resp = get("bytes=5-9", map[string]string{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "audio"})
	if body := readBody(t, resp); resp.StatusCode != http.StatusPartialContent || len(body) != 5 {
		t.Fatalf("audio element's range: status %d, %d bytes", resp.StatusCode, len(body))
	}
	if body := readBody(t, get("", nil)); len(body) != len(f.data) {
		t.Fatalf("client's whole file: %d bytes, want %d", len(body), len(f.data))
	}
	for series, want := range map[string]string{
		`fanseed_web_seed_bytes_total{to="player"}`:     "10",
		`fanseed_web_seed_bytes_total{to="browser"}`:    "5",
		`fanseed_web_seed_bytes_total{to="bittorrent"}`: fmt.Sprint(len(f.data)),
	} {
		if got := metric(t, f.ts, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	ctx := context.Background()
	now := time.Now()
	if err := f.tally.Flush(ctx, f.ts.db, now); err != nil {
		t.Fatal(err)
	}
	day := now.UTC().Truncate(24 * time.Hour)
	got, err := seeding.PlaybackTotals(ctx, f.ts.db, []int64{f.rec.ID}, day, day.AddDate(0, 0, 1))
	if err != nil || got.ServedPlayer != 10 || got.ServedBrowser != 5 || got.ServedBitTorrent != int64(len(f.data)) {
		t.Errorf("playback days = %+v, %v", got, err)
	}
}

// The embeddable player may be framed by this site and EMBED_ORIGINS only; the episode page
// itself by nobody. Both carry the plain element on the web seed, which the player script
// (when built) takes over.
func TestEpisodePlayerPages(t *testing.T) {
	t.Parallel()
	f := newPlayerFixture(t)
	webSeed := "/seed/" + f.rec.InfoHashHex() + "/pilot.mp3"
	_, built := fs.Stat(templates.FS, "static/player/player.js")
	for _, path := range []string{fmt.Sprintf("/s/%s/e/%d/embed", f.show.Slug, f.ep.ID), fmt.Sprintf("/s/%s/e/%d", f.show.Slug, f.ep.ID)} {
		resp := f.ts.do(t, nil, "GET", path, nil)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<audio controls") || !strings.Contains(body, webSeed) {
			t.Fatalf("%s: status %d, want an audio element on the web seed", path, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if strings.HasSuffix(path, "/embed") {
			if !strings.Contains(csp, "frame-ancestors 'self' https://blog.example") || resp.Header.Get("X-Frame-Options") != "" {
				t.Errorf("%s: CSP %q, X-Frame-Options %q; want framing by this site and the embed origins", path, csp, resp.Header.Get("X-Frame-Options"))
			}
		} else if !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: CSP %q; want no framing", path, csp)
		}
		if !strings.Contains(csp, "connect-src 'self' http://fanseed.test ws://fanseed.test") || !strings.Contains(csp, "worker-src 'self'") {
			t.Errorf("%s: CSP %q lets the player reach neither the WebSocket tracker nor its worker", path, csp)
		}
		switch {
		case built == nil && (!strings.Contains(body, "data-player") || !strings.Contains(body, `preload="none"`) || !strings.Contains(body, `src="/static/player/player.js?v=`)):
			t.Errorf("%s: the player bundle is built but the page does not load it:\n%s", path, body)
		case built != nil && (strings.Contains(body, "data-player") || !strings.Contains(body, `preload="metadata"`)):
			t.Errorf("%s: without the bundle the page must be the plain element:\n%s", path, body)
		}
	}
	if built == nil {
		resp := f.ts.do(t, nil, "GET", "/static/player/sw.min.js", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Service-Worker-Allowed") != "/s/" {
			t.Errorf("service worker: status %d, Service-Worker-Allowed %q; want /s/", resp.StatusCode, resp.Header.Get("Service-Worker-Allowed"))
		}
	}
	if resp := f.ts.do(t, nil, "GET", fmt.Sprintf("/s/%s/e/%d/embed", f.show.Slug, f.ep.ID+1000), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("embed of no episode: status %d, want 404", resp.StatusCode)
	}
	// The creator's episode page offers the embed.
	page := readBody(t, f.ts.do(t, &f.owner, "GET", fmt.Sprintf("/shows/%d/episodes/%d", f.show.ID, f.ep.ID), nil))
	if !strings.Contains(page, fmt.Sprintf("/s/%s/e/%d/embed", f.show.Slug, f.ep.ID)) {
		t.Error("the creator's episode page does not offer the player's embed")
	}
}

// A file browsers cannot stream is flagged on its creator's episode page with the fix; a
// streamable one is not.
func TestEpisodePageFlagsUnstreamableFiles(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (bash .ci/test installs it): %v", err)
	}
	f := newPlayerFixture(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		args    []string
		flagged bool
	}{
		{"late.mp4", []string{"-c:v", "libx264"}, true},
		{"fast.mp4", []string{"-c:v", "libx264", "-movflags", "+faststart"}, false},
	} {
		path := filepath.Join(dir, tt.name)
		args := append([]string{"-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "2"}, tt.args...)
		if out, err := exec.Command("ffmpeg", append(args, path)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		if _, err := f.ts.db.Exec(context.Background(), `UPDATE torrents SET content_path = $2, content_type = 'video/mp4' WHERE id = $1`, f.rec.ID, path); err != nil {
			t.Fatal(err)
		}
		page := html.UnescapeString(readBody(t, f.ts.do(t, &f.owner, "GET", fmt.Sprintf("/shows/%d/episodes/%d", f.show.ID, f.ep.ID), nil)))
		if got := strings.Contains(page, `id="stream-problem"`) && strings.Contains(page, "ffmpeg -i in.mp4 -c copy -movflags +faststart out.mp4"); got != tt.flagged {
			t.Errorf("%s: flagged = %v, want %v", tt.name, got, tt.flagged)
		}
	}
}
