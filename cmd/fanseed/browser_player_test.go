package main

import (
	"context"
	"fmt"
	"net/url"
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

	"github.com/fanseed/fanseed/internal/testkit"
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
func playerBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	ctx := newBrowser(t, 1024, 800, append([]chromedp.ExecAllocatorOption{
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required")}, extra...)...)
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

// publishedVideo runs serve and two seedbox nodes, publishes a 40 s video with them and stops
// both nodes. It returns serve's base URL, its database, the creator and the episode's
// portal path and fan page URL.
func publishedVideo(t *testing.T) (base, dbURL string, creator *fan, episodePath, page string) {
	t.Helper()
	needPlayerBundle(t)
	bin := buildFanseed(t)
	dbURL = dbtest.NewURL(t)
	addr := freeAddrOn(t, "127.0.0.1")
	base = "http://" + addr
	startServeProcess(t, "DATABASE_URL="+dbURL, "ADDR="+addr, "BASE_URL="+base, "NODE_TOKEN="+testNodeToken,
		"DATA_DIR="+t.TempDir(), "LOG_FORMAT=text", "TRACKER_ANNOUNCES_PER_MINUTE=0")
	var nodes []*seedboxProc
	for _, name := range []string{"n1", "n2"} {
		nodes = append(nodes, startSeedbox(t, bin, base, name, t.TempDir()))
	}
	creator, episodePath = uploadEpisode(t, base, "pilot.webm", testVideo(t, 40))
	waitPublished(t, creator, episodePath, 90*time.Second)
	m := regexp.MustCompile(`/s/([a-z0-9-]+)/e/([0-9]+)/embed`).FindStringSubmatch(string(creator.get(episodePath)))
	if m == nil {
		t.Fatal("the creator's episode page does not offer the player's embed")
	}
	for _, n := range nodes {
		n.stop(syscall.SIGTERM)
	}
	return base, dbURL, creator, episodePath, base + "/s/" + m[1] + "/e/" + m[2]
}

const playerVideo = `document.querySelector('#play video')`

// startPlaying opens the episode page and starts playback once the player has the stream.
func startPlaying(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`#play video`)),
		chromedp.WaitReady(chromedp.CSS(`#play[data-state="webtorrent"]`)),
		chromedp.Evaluate[chromedp.Void](playerVideo+`.muted = true; `+playerVideo+`.play()`),
	); err != nil {
		t.Fatal(err)
	}
}

// waitPlayed waits until the video's position reaches from+seconds, advancing as it plays.
func waitPlayed(t *testing.T, ctx context.Context, what string, from, seconds float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cur, err := chromedp.Run(ctx, chromedp.Evaluate[float64](playerVideo+`.currentTime`))
		if err != nil {
			t.Fatal(err)
		}
		if cur >= from+seconds {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({ready: `+playerVideo+`.readyState, paused: `+playerVideo+`.paused, err: `+playerVideo+`.error && `+playerVideo+`.error.message, line: document.querySelector('[data-player-stats]').textContent, box: document.querySelector('#play').dataset})`))
			t.Fatalf("%s: currentTime %.1f after 60 s, want %.1f; %s", what, cur, from+seconds, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// playerBytes reads the player's counters: bytes from peers, from the web seed, uploaded.
func playerBytes(t *testing.T, ctx context.Context) (peers, webSeed, uploaded int64) {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]int64](`(d => [+d.peerBytes || 0, +d.webSeedBytes || 0, +d.uploadedBytes || 0])(document.querySelector('#play').dataset)`))
	if err != nil || len(v) != 3 {
		t.Fatalf("player's counters: %v, %v", v, err)
	}
	return v[0], v[1], v[2]
}

// TestBrowserPlaysFromTheWebSeedAlone publishes a video with two seedbox nodes, stops both, and
// plays the episode page in Chromium with no other viewer: the player (webtorrent through its
// service worker) finds no peer, adds the web seed, plays for seconds, seeks near the end and
// plays there too, and reports its bytes, which the creator's dashboard and /metrics show.
func TestBrowserPlaysFromTheWebSeedAlone(t *testing.T) {
	base, dbURL, creator, episodePath, page := publishedVideo(t)
	ctx := playerBrowser(t)
	const video = playerVideo
	startPlaying(t, ctx, page)
	src, err := chromedp.Run(ctx, chromedp.Evaluate[string](video+`.currentSrc`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(src, base+"/s/webtorrent/") {
		t.Errorf("the video plays %q, want webtorrent's stream under /s/webtorrent/ (the service worker)", src)
	}
	waitPlayed(t, ctx, "from the start", 0, 5)
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
	waitPlayed(t, ctx, "after seeking to 30 s", 30, 3)

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

// TestBrowserSecondViewerPlaysFromTheFirst has two viewers in two Chromium processes on
// loopback, with every node stopped: the first plays from the web seed and keeps seeding while
// its page is open; the second, arriving later, plays 10 s with at least 90% of its bytes from
// the first (over WebRTC, found through the WebSocket tracker).
func TestBrowserSecondViewerPlaysFromTheFirst(t *testing.T) {
	_, _, _, _, page := publishedVideo(t)
	first := playerBrowser(t)
	startPlaying(t, first, page)
	waitPlayed(t, first, "first viewer", 0, 3)
	deadline := time.Now().Add(60 * time.Second)
	for {
		peers, web, _ := playerBytes(t, first)
		if done, _ := chromedp.Run(first, chromedp.Evaluate[bool](`document.querySelector('#play').dataset.webSeed === 'off'`)); done && peers+web > 0 {
			break // the whole file is in: the web seed left
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first viewer has %d bytes from peers and %d from the web seed after 60 s, and is not complete", peers, web)
		}
		time.Sleep(250 * time.Millisecond)
	}
	second := playerBrowser(t)
	startPlaying(t, second, page)
	waitPlayed(t, second, "second viewer", 0, 10)
	peers, web, _ := playerBytes(t, second)
	t.Logf("second viewer: %d bytes from peers, %d from the web seed", peers, web)
	if peers+web == 0 || peers*100 < 90*(peers+web) {
		t.Errorf("second viewer: %d bytes from peers, %d from the web seed; want at least 90%% from peers", peers, web)
	}
	if _, _, up := playerBytes(t, first); up == 0 {
		t.Error("the first viewer uploaded nothing to the second")
	}
}

// TestBrowserPlaysFromTheNodes has the seedbox fleet feed the player: two nodes in a network
// namespace (pion gathers no loopback candidates) seed a video published by serve on the host
// side of the veth pair, and two viewers in Chromium on the host each play 10 s of it with at
// least 90% of their bytes from peers (the nodes over WebRTC, and each other); the web seed sent
// either less than 10% of the file.
func TestBrowserPlaysFromTheNodes(t *testing.T) {
	needPlayerBundle(t)
	ns := newNetns(t)
	bin := buildFanseed(t)
	dbURL := dbtest.NewURL(t)
	addr := freeAddrOn(t, ns.HostIP)
	base := "http://" + addr
	// The swarm is given 10 s before the web seed helps a viewer, not 1 s: on a loaded machine the
	// nodes' first bytes may take longer, and the web seed's share is what this test measures.
	startServeProcess(t, "DATABASE_URL="+dbURL, "ADDR="+addr, "BASE_URL="+base, "NODE_TOKEN="+testNodeToken,
		"DATA_DIR="+t.TempDir(), "LOG_FORMAT=text", "TRACKER_ANNOUNCES_PER_MINUTE=0", "PLAYER_PEER_GRACE=10s")
	for _, name := range []string{"n1", "n2"} {
		dir := t.TempDir()
		p := &seedboxProc{name: name, dir: dir, logs: &testkit.LogBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command("ip", "netns", "exec", ns.Name, bin, "seedbox")
		p.cmd.Env = []string{"CONTROL_URL=" + base, "NODE_TOKEN=" + testNodeToken, "NODE_NAME=" + name,
			"NODE_DATA_DIR=" + dir, "NODE_LISTEN_ADDR=" + ns.PeerIP + ":0", "NODE_CAPACITY_BYTES=1000000000",
			"LOG_FORMAT=text", "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			p.stop(syscall.SIGKILL)
			if t.Failed() {
				t.Logf("node %s:\n%s", name, p.logs.String())
			}
		})
	}
	data := testVideo(t, 40)
	creator, episodePath := uploadEpisode(t, base, "pilot.webm", data)
	waitPublished(t, creator, episodePath, 90*time.Second)
	m := regexp.MustCompile(`/s/([a-z0-9-]+)/e/([0-9]+)/embed`).FindStringSubmatch(string(creator.get(episodePath)))
	if m == nil {
		t.Fatal("the creator's episode page does not offer the player's embed")
	}
	// Two viewers, in two Chromium processes, the second arriving once the first plays. An
	// address other than loopback is no secure context: let the service worker run there.
	page := base + "/s/" + m[1] + "/e/" + m[2]
	if body := string(creator.get("/s/" + m[1] + "/e/" + m[2])); !strings.Contains(body, `data-peer-grace="10000"`) {
		t.Fatal("the episode page does not give the player PLAYER_PEER_GRACE (10 s)")
	}
	var viewers []context.Context
	for i := range 2 {
		ctx := playerBrowser(t, chromedp.Flag("unsafely-treat-insecure-origin-as-secure", base))
		startPlaying(t, ctx, page)
		waitPlayed(t, ctx, fmt.Sprintf("viewer %d", i+1), 0, 2)
		viewers = append(viewers, ctx)
	}
	for i, ctx := range viewers {
		waitPlayed(t, ctx, fmt.Sprintf("viewer %d", i+1), 0, 10)
		peers, web, up := playerBytes(t, ctx)
		ttff, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#play').dataset.firstFrameMs`))
		t.Logf("viewer %d: %d bytes from peers, %d from the web seed, %d uploaded, of a %d-byte file; first frame %s ms after play()", i+1, peers, web, up, len(data), ttff)
		if peers+web == 0 || peers*100 < 90*(peers+web) {
			t.Errorf("viewer %d: %d bytes from peers, %d from the web seed; want at least 90%% from peers", i+1, peers, web)
		}
		if web*10 >= int64(len(data)) {
			t.Errorf("viewer %d: the web seed sent %d bytes, 10%% of the file or more", i+1, web)
		}
	}
}

// TestBrowserTwoEpisodesInTwoTabs plays two episodes in two tabs of one browser (the first from
// the web seed, its nodes stopped; the second seeded by two other nodes): webtorrent's worker
// asks every open page for a stream, and each tab must get its own episode's, not the other
// tab's "not found".
func TestBrowserTwoEpisodesInTwoTabs(t *testing.T) {
	base, _, creator, episodePath, first := publishedVideo(t)
	showPath := episodePath[:strings.Index(episodePath, "/episodes/")]
	resp := creator.post(showPath+"/episodes", url.Values{"title": {"Second"}})
	secondPath := resp.Request.URL.Path
	m := regexp.MustCompile(`/episodes/(\d+)$`).FindStringSubmatch(secondPath)
	if m == nil {
		t.Fatalf("creating the second episode landed on %s", secondPath)
	}
	// The nodes are stopped: two fresh ones publish the second episode.
	bin := buildFanseed(t)
	for _, name := range []string{"n3", "n4"} {
		startSeedbox(t, bin, base, name, t.TempDir())
	}
	data := testVideo(t, 20)
	tusUpload(t, creator, base, secondPath, "second.webm", data)
	waitPublished(t, creator, secondPath, 90*time.Second)
	second := strings.Replace(first, "/e/"+first[strings.LastIndex(first, "/")+1:], "/e/"+m[1], 1)

	tab1 := playerBrowser(t)
	startPlaying(t, tab1, first)
	waitPlayed(t, tab1, "first tab", 0, 3)
	tab2, cancel := chromedp.NewContext(tab1)
	defer cancel()
	startPlaying(t, tab2, second)
	waitPlayed(t, tab2, "second tab", 0, 5)
	waitPlayed(t, tab1, "first tab, with the second open", 0, 6)
	for i, tab := range []context.Context{tab1, tab2} {
		src, err := chromedp.Run(tab, chromedp.Evaluate[string](playerVideo+`.currentSrc`))
		if want := []string{"pilot.webm", "second.webm"}[i]; err != nil || !strings.HasSuffix(src, "/"+want) {
			t.Errorf("tab %d plays %q, %v; want %s", i+1, src, err, want)
		}
	}
}
