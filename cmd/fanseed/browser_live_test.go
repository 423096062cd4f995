package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// liveStats is what the live player counts, as window.fanseedLive.stats has it.
type liveStats struct {
	PeerBytes, HTTPBytes       int64
	PeerSegments, HTTPSegments int
	Peers, Rejected            int
}

const readLiveStats = `(() => { const s = window.fanseedLive.stats; return {PeerBytes: s.peerBytes, HTTPBytes: s.httpBytes,
	PeerSegments: s.peerSegments, HTTPSegments: s.httpSegments, Peers: s.peers, Rejected: window.fanseedLive.verifier.rejected} })()`

// Two headless Chromium viewers play the live page of a stream ffmpeg pushes, for 20 s each:
// both play, the second gets at least half of its segments from the first over WebRTC (peers
// found through our WebSocket tracker's live swarm), and the verification the player runs on
// every segment from a peer takes the real bytes and refuses a segment with one byte changed.
func TestBrowsersWatchLiveOverTheSwarm(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join("..", "..", "templates", "static", "player", "live.js")); err != nil {
		t.Fatalf("the live player bundle is not built (bash .ci/test builds it; or `. .ci/lib.sh && build_player`): %v", err)
	}
	dbURL := dbtest.NewURL(t)
	addr := freeAddrOn(t, "127.0.0.1")
	rtmpAddr := freeAddrOn(t, "127.0.0.1")
	base := "http://" + addr
	serve := startServeProcess(t, "DATABASE_URL="+dbURL, "ADDR="+addr, "BASE_URL="+base, "NODE_TOKEN="+testNodeToken,
		"DATA_DIR="+t.TempDir(), "LOG_FORMAT=text", "TRACKER_ANNOUNCES_PER_MINUTE=0", "LIVE_RTMP_ADDR="+rtmpAddr)
	jar, _ := cookiejar.New(nil)
	creator := &fan{t: t, base: base, c: &http.Client{Jar: jar}}
	creator.post("/signup", url.Values{"name": {"Nina"}, "email": {"nina@example.com"}, "password": {"a long enough password"}})
	creator.post("/login", url.Values{"email": {"nina@example.com"}, "password": {"a long enough password"}})
	resp := creator.post("/shows", url.Values{"title": {"Night Signals"}, "slug": {"night-signals"}, "currency": {"USD"}})
	showPath := strings.TrimSuffix(resp.Request.URL.Path, "/plan")
	creator.post(showPath+"/live/settings", url.Values{"message_limit": {"200"}}) // not recorded: this test watches
	req, _ := http.NewRequest("POST", base+showPath+"/live/key", strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, body := creator.do(req)
	keyM := regexp.MustCompile(`<code id="stream-key">([^<]+)</code>`).FindSubmatch(body)
	if keyM == nil {
		t.Fatalf("no stream key:\n%s", body)
	}
	ffmpegPush(t, "rtmp://"+rtmpAddr+"/live/"+string(keyM[1]), 0)
	page := base + "/s/night-signals/live"
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(string(creator.get("/s/night-signals/live")), `id="live-player"`); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stream is not live 30 s after ffmpeg started:\n%s", serve.logs)
		}
	}
	time.Sleep(6 * time.Second) // a few segments, so both viewers start behind the edge with some to share

	play := func(ctx context.Context) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`#live-video`)),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('live-video').play()`)); err != nil {
			t.Fatal(err)
		}
	}
	first := playerBrowser(t)
	play(first)
	time.Sleep(4 * time.Second)
	second := playerBrowser(t)
	play(second)
	start := time.Now()
	time.Sleep(20 * time.Second)

	for name, ctx := range map[string]context.Context{"first": first, "second": second} {
		played, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById('live-video').currentTime`))
		if err != nil {
			t.Fatal(err)
		}
		paused, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('live-video').paused`))
		if played < 10 || paused {
			t.Errorf("the %s viewer: currentTime %.1f, paused %v after %s", name, played, paused, time.Since(start).Round(time.Second))
		}
	}
	s1, err := chromedp.Run(first, chromedp.Evaluate[liveStats](readLiveStats))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := chromedp.Run(second, chromedp.Evaluate[liveStats](readLiveStats))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first viewer: %+v; second viewer: %+v", s1, s2)
	if s2.PeerSegments+s2.HTTPSegments == 0 || s2.PeerSegments < s2.HTTPSegments {
		t.Errorf("the second viewer got %d segments from peers and %d over HTTP: want at least half from peers", s2.PeerSegments, s2.HTTPSegments)
	}
	if s1.Rejected+s2.Rejected != 0 {
		t.Errorf("segments from honest peers were refused: %d and %d", s1.Rejected, s2.Rejected)
	}

	// The check p2p-media-loader runs on each segment from a peer: the real bytes pass, a
	// segment with one byte changed is refused.
	check, err := chromedp.Run(second, chromedp.Evaluate[[]bool](`(async () => {
		const box = document.getElementById('live-player')
		const list = await (await fetch(box.dataset.hashes)).json()
		const url = new URL(list.segments[list.segments.length - 1].name, box.dataset.playlist).href
		const real = await (await fetch(url)).arrayBuffer()
		const bad = real.slice(0)
		new Uint8Array(bad)[Math.floor(bad.byteLength / 2)] ^= 1
		const v = window.fanseedLive.verifier
		return [await v.validate(url, undefined, real), await v.validate(url, undefined, bad)]
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if len(check) != 2 || !check[0] || check[1] {
		t.Errorf("verifying a segment: real bytes %v, tampered bytes %v; want true, false", check[0], check[1])
	}
}
