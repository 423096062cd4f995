package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// needPlayerBundle fails a test that plays episodes when the player was not built into the
// binary (templates/static/player/, which bash .ci/test builds).
func needPlayerBundle(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("..", "..", "templates", "static", "player", "player.js")); err != nil {
		t.Fatalf("the player bundle is not built (bash .ci/test builds it; or run `npm ci --ignore-scripts && node build.mjs` in web/): %v", err)
	}
}

// testVideo is a WebM (VP8, with cues) of the given seconds that ffmpeg makes.
func testVideo(t *testing.T, seconds int) []byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (bash .ci/test installs it): %v", err)
	}
	out := filepath.Join(t.TempDir(), "pilot.webm")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-t", strconv.Itoa(seconds), "-c:v", "libvpx", "-b:v", "400k", "-deadline", "realtime", "-cpu-used", "8", "-g", "50", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// playerBrowser is Chromium as the player tests need it: WebRTC with loopback addresses (no
// mDNS names), and playback started by the test without a click.
func playerBrowser(t *testing.T) context.Context {
	t.Helper()
	ctx := newBrowser(t, 1024, 800,
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	var mu sync.Mutex
	chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventConsoleAPICalled); ok && (e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeError) {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			mu.Lock()
			t.Logf("browser console %s: %s", e.Type, strings.Join(parts, " "))
			mu.Unlock()
		}
	})
	return ctx
}

// TestBrowserPlaysFromTheWebSeedAlone publishes a video with two seedbox nodes, stops both, and
// plays the episode page in Chromium with no other viewer: the player (webtorrent through its
// service worker) finds no peer, adds the web seed, plays for seconds, seeks near the end and
// plays there too, and reports its bytes, which the creator's dashboard and /metrics show.
func TestBrowserPlaysFromTheWebSeedAlone(t *testing.T) {
	needPlayerBundle(t)
	bin := buildFanseed(t)
	dbURL := dbtest.NewURL(t)
	addr := freeAddrOn(t, "127.0.0.1")
	base := "http://" + addr
	startServeProcess(t, "DATABASE_URL="+dbURL, "ADDR="+addr, "BASE_URL="+base, "NODE_TOKEN="+testNodeToken,
		"DATA_DIR="+t.TempDir(), "LOG_FORMAT=text", "TRACKER_ANNOUNCES_PER_MINUTE=0")
	var nodes []*seedboxProc
	for _, name := range []string{"n1", "n2"} {
		nodes = append(nodes, startSeedbox(t, bin, base, name, t.TempDir()))
	}
	data := testVideo(t, 40)
	creator, episodePath := uploadEpisode(t, base, "pilot.webm", data)
	waitPublished(t, creator, episodePath, 90*time.Second)
	m := regexp.MustCompile(`/s/([a-z0-9-]+)/e/([0-9]+)/embed`).FindStringSubmatch(string(creator.get(episodePath)))
	if m == nil {
		t.Fatal("the creator's episode page does not offer the player's embed")
	}
	for _, n := range nodes {
		n.stop(syscall.SIGTERM)
	}
	page := base + "/s/" + m[1] + "/e/" + m[2]

	ctx := playerBrowser(t)
	const video = `document.querySelector('#play video')`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`#play video`)),
		chromedp.WaitReady(chromedp.CSS(`#play[data-state="webtorrent"]`)),
		chromedp.Evaluate[chromedp.Void](video+`.muted = true; `+video+`.play()`),
	); err != nil {
		t.Fatal(err)
	}
	src, err := chromedp.Run(ctx, chromedp.Evaluate[string](video+`.currentSrc`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(src, base+"/s/webtorrent/") {
		t.Errorf("the video plays %q, want webtorrent's stream under /s/webtorrent/ (the service worker)", src)
	}
	waitPlayed := func(what string, from float64, seconds float64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		last := -1.0
		for {
			cur, err := chromedp.Run(ctx, chromedp.Evaluate[float64](video+`.currentTime`))
			if err != nil {
				t.Fatal(err)
			}
			if cur >= from+seconds {
				return
			}
			if time.Now().After(deadline) {
				state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({ready: `+video+`.readyState, paused: `+video+`.paused, err: `+video+`.error && `+video+`.error.message, line: document.querySelector('[data-player-stats]').textContent, web: document.querySelector('#play').dataset.webSeed})`))
				t.Fatalf("%s: currentTime %.1f (was %.1f) after 60 s, want %.1f; %s", what, cur, last, from+seconds, state)
			}
			last = cur
			time.Sleep(250 * time.Millisecond)
		}
	}
	waitPlayed("from the start", 0, 5)
	web, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#play').dataset.webSeed`))
	if err != nil || web == "" { // "on", or "off" again once the whole file is in
		t.Errorf("data-web-seed = %q, %v; want it set: with no peer the web seed must join", web, err)
	}
	line, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-player-stats]`)))
	if err != nil || !strings.Contains(line, "0 peers") || !strings.Contains(line, "0% of bytes from peers") {
		t.Errorf("stats line %q, %v; want 0 peers and 0%% of bytes from peers", line, err)
	}
	// Seeking: near the end, and playback goes on from there.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](video+`.currentTime = 30`)); err != nil {
		t.Fatal(err)
	}
	waitPlayed("after seeking to 30 s", 30, 3)

	// Leaving the page sends the last report.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var peer, webSeed, watched, servedPlayer int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.QueryRow(context.Background(), `SELECT coalesce(sum(peer_bytes), 0), coalesce(sum(web_seed_bytes), 0),
			coalesce(sum(seconds_watched), 0), coalesce(sum(served_player), 0) FROM playback_days`).Scan(&peer, &webSeed, &watched, &servedPlayer)
		if err != nil {
			t.Fatal(err)
		}
		if webSeed > 0 && watched >= 5 && servedPlayer > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("playback days: %d bytes from peers, %d from the web seed, %d s watched, web seed counted %d to the player; want reports and the web seed's count", peer, webSeed, watched, servedPlayer)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var frames, frameMs int64
	db.QueryRow(context.Background(), `SELECT coalesce(sum(first_frames), 0), coalesce(sum(first_frame_ms_sum), 0) FROM playback_days`).Scan(&frames, &frameMs)
	t.Logf("reported: %d bytes from the web seed, %d s watched, time to first frame %d ms (%d reports with one)", webSeed, watched, frameMs, frames)
	if peer != 0 {
		t.Errorf("the player reported %d bytes from peers with every node stopped", peer)
	}
	showID := regexp.MustCompile(`/shows/([0-9]+)/`).FindStringSubmatch(episodePath)[1]
	dash := string(creator.get("/shows/" + showID + "/dashboard"))
	if !strings.Contains(dash, `Delivered by the swarm: <strong id="swarm-share">0%</strong>`) {
		t.Errorf("the dashboard does not show the swarm's share of 0%%:\n%s", dash)
	}
}
