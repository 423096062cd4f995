// Command stream measures how much of browser playback and BitTorrent downloads the origin web
// seed serves once the seedbox fleet and the viewers share an episode, beside plain HTTP from
// the origin, in one run: a real `fanseed serve` and two `fanseed seedbox` nodes (in a network
// namespace across a veth pair, since WebRTC gathers no loopback candidates), one video of about
// -size bytes, and K headless Chromium viewers starting 2 s apart that each play -watch of it.
// Then 4 aria2c and 4 libtorrent clients download it with the fleet healthy, and last the tracker
// benchmark (go run ./bench/tracker) runs.
//
//	go run ./bench/stream [-size 268435456] [-viewers 6] [-watch 20s] [-tracker=true]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
	"github.com/fanseed/fanseed/internal/testkit"
)

const nodeToken = "bench-stream-node-token"

func main() {
	size := flag.Int64("size", 256<<20, "the video's size in bytes (about: it is whole loops of a 20 s clip)")
	viewers := flag.Int("viewers", 6, "browser viewers, starting 2 s apart")
	watch := flag.Duration("watch", 20*time.Second, "how much of the video each viewer plays")
	tracker := flag.Bool("tracker", true, "run the tracker benchmark afterwards")
	flag.Parse()
	if err := run(context.Background(), *size, *viewers, *watch); err != nil {
		fmt.Fprintln(os.Stderr, "bench/stream:", err)
		os.Exit(1)
	}
	if *tracker {
		fmt.Println()
		cmd := exec.Command("go", "run", "./bench/tracker")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "bench/stream: bench/tracker:", err)
			os.Exit(1)
		}
	}
}

func run(ctx context.Context, size int64, viewers int, watch time.Duration) error {
	if _, err := os.Stat(filepath.Join("templates", "static", "player", "player.js")); err != nil {
		return fmt.Errorf("the player bundle is not built (run from the repository root after `bash .ci/dev` or `(cd web && npm ci --ignore-scripts && node build.mjs)`): %w", err)
	}
	for tool, pkg := range map[string]string{"chromium": "chromium", "ffmpeg": "ffmpeg", "aria2c": "aria2", "ip": "iproute2"} {
		if _, err := exec.LookPath(tool); err != nil {
			if err := benchkit.AptInstall(ctx, os.Stderr, pkg); err != nil {
				return err
			}
		}
	}
	if exec.Command("/usr/bin/python3", "-c", "import libtorrent").Run() != nil {
		if err := benchkit.AptInstall(ctx, os.Stderr, "python3-libtorrent"); err != nil {
			return err
		}
	}
	dir, bin, dbURL, cleanup, err := benchkit.Prepare(ctx, "stream")
	if err != nil {
		return err
	}
	defer cleanup()
	ns, err := testkit.NewNetns()
	if err != nil {
		return err
	}
	defer ns.Close()

	video := filepath.Join(dir, "pilot.webm")
	if err := makeVideo(ctx, dir, video, size); err != nil {
		return err
	}
	st, err := os.Stat(video)
	if err != nil {
		return err
	}
	size = st.Size()

	addr, err := benchkit.FreeAddrOn(ns.HostIP)
	if err != nil {
		return err
	}
	base := "http://" + addr
	serve, err := benchkit.StartServeAt(ctx, bin, addr, "DATABASE_URL="+dbURL, "BASE_URL="+base, "NODE_TOKEN="+nodeToken,
		"DATA_DIR="+filepath.Join(dir, "data"), "LOG_LEVEL=warn", "TRACKER_ANNOUNCES_PER_MINUTE=0", "TRACKER_SOCKETS_PER_IP=0",
		"METRICS_ALLOW=127.0.0.0/8,"+ns.HostIP+"/32", "UPLOAD_MAX_BYTES="+strconv.FormatInt(size+1, 10))
	if err != nil {
		return err
	}
	defer serve.Stop()
	for _, name := range []string{"n1", "n2"} {
		ndir := filepath.Join(dir, name)
		os.MkdirAll(ndir, 0o755)
		cmd := ns.Command(ctx, bin, "seedbox")
		cmd.Env = []string{"CONTROL_URL=" + base, "NODE_TOKEN=" + nodeToken, "NODE_NAME=" + name, "NODE_DATA_DIR=" + ndir,
			"NODE_LISTEN_ADDR=" + ns.PeerIP + ":0", "NODE_CAPACITY_BYTES=" + strconv.FormatInt(4*size, 10), "LOG_LEVEL=warn",
			"HOME=" + ndir, "PATH=" + os.Getenv("PATH")}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
	}

	up, err := benchkit.UploadEpisode(ctx, base, video, size, "pilot.webm")
	if err != nil {
		return err
	}
	fmt.Printf("one %.1f MiB video (VP8 WebM), published by 2 seedbox nodes across a veth pair; %d viewers starting 2 s apart, each playing %s\n\n",
		float64(size)/(1<<20), viewers, watch)
	page, torrentURL, err := waitPublished(ctx, base, up)
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the nodes announce to both trackers once told the torrent is published

	before, err := webSeedBytes(base)
	if err != nil {
		return err
	}
	swarm, err := watchAll(ctx, dir, base, viewers, func(ctx context.Context) (viewerFigures, error) {
		return playerViewer(ctx, base, page, watch)
	})
	if err != nil {
		return fmt.Errorf("viewers over the swarm: %w", err)
	}
	mid, err := webSeedBytes(base)
	if err != nil {
		return err
	}
	seedURL := base + "/seed/" + strings.TrimSuffix(filepath.Base(torrentURL), ".torrent") + "/pilot.webm"
	plain, err := watchAll(ctx, dir, base, viewers, func(ctx context.Context) (viewerFigures, error) {
		return plainViewer(ctx, seedURL, watch)
	})
	if err != nil {
		return fmt.Errorf("viewers over plain HTTP: %w", err)
	}
	after, err := webSeedBytes(base)
	if err != nil {
		return err
	}

	plainEach := (after["browser"] - mid["browser"]) / int64(viewers)
	fmt.Println("viewer  origin web seed   from peers   uploaded to viewers   first frame   |  plain HTTP: origin (mean)   first frame")
	fmt.Println("                                                           (page opened to first frame)")
	var later, fleet, v2v int64
	for i := range viewers {
		s, p := swarm[i], plain[i]
		fmt.Printf("%6d  %13s  %11s  %20s  %10dms   |  %24s  %10dms\n", i+1, mib(s.webSeed), mib(s.peers), mib(s.uploaded), s.firstFrameMs, mib(plainEach), p.firstFrameMs)
		if i >= 2 {
			later = max(later, s.webSeed)
		}
		v2v += s.uploaded
		fleet += s.peers
	}
	fleet -= v2v
	fmt.Printf("origin web seed to the players in all: %s (its own count: %s); plain HTTP: %s\n",
		mib(sum(swarm, func(v viewerFigures) int64 { return v.webSeed })), mib(mid["player"]-before["player"]), mib(after["browser"]-mid["browser"]))
	fmt.Printf("fleet to viewers: %s, viewer to viewer: %s (bytes from peers less what the viewers uploaded)\n", mib(max(fleet, 0)), mib(v2v))
	fmt.Printf("origin egress per viewer, plain HTTP: %s = %.2f%% of the file\n", mib(plainEach), 100*float64(plainEach)/float64(size))
	fmt.Printf("page opened to first frame, swarm: p50 %d ms, p95 %d ms; plain HTTP: p50 %d ms, p95 %d ms\n",
		pct(swarm, 50), pct(swarm, 95), pct(plain, 50), pct(plain, 95))
	fmt.Printf("origin egress per viewer after the first two, the most: %s = %.2f%% of the file (goal at most 5%%)\n\n", mib(later), 100*float64(later)/float64(size))

	share, err := clientsShare(ctx, dir, base, up, torrentURL, size)
	if err != nil {
		return fmt.Errorf("BitTorrent clients: %w", err)
	}
	fmt.Printf("4 aria2c + 4 libtorrent clients with the fleet healthy: the web seed sent %.2f%% of their bytes (goal under 10%%)\n", share)
	return nil
}

// makeVideo encodes a 20 s clip at 4 Mbit/s, an episode's usual rate (with noise, so that it
// does not shrink to nothing), and loops it
// without encoding again to about size bytes.
func makeVideo(ctx context.Context, dir, out string, size int64) error {
	clip := filepath.Join(dir, "clip.webm")
	cmd := exec.CommandContext(ctx, "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-vf", "noise=alls=30:allf=t", "-t", "20", "-c:v", "libvpx", "-b:v", "4M", "-minrate", "4M", "-maxrate", "4M",
		"-deadline", "realtime", "-cpu-used", "8", "-g", "50", clip)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg: %v\n%s", err, b)
	}
	st, err := os.Stat(clip)
	if err != nil {
		return err
	}
	loops := max(int((size+st.Size()/2)/st.Size()), 1)
	cmd = exec.CommandContext(ctx, "ffmpeg", "-loglevel", "error", "-y", "-stream_loop", strconv.Itoa(loops-1), "-i", clip, "-c", "copy", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg: %v\n%s", err, b)
	}
	return nil
}

// waitPublished waits until the episode is published and returns its fan page and .torrent URL.
func waitPublished(ctx context.Context, base string, up benchkit.Upload) (page, torrent string, err error) {
	embed := regexp.MustCompile(`/s/([a-z0-9-]+)/e/([0-9]+)/embed`)
	tor := regexp.MustCompile(`/t/[0-9a-f]{40}\.torrent`)
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		resp, err := up.Creator.Get(base + up.EpisodePath)
		if err != nil {
			return "", "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m, t := embed.FindStringSubmatch(string(b)), tor.FindString(string(b)); m != nil && t != "" && strings.Contains(string(b), "Seeded by 2 of 2") {
			return base + "/s/" + m[1] + "/e/" + m[2], base + t, nil
		}
	}
	return "", "", fmt.Errorf("%s was not published in 5 minutes", up.EpisodePath)
}

type viewerFigures struct {
	webSeed, peers, uploaded int64
	firstFrameMs             int64
}

// watchAll starts viewers Chromium processes 2 s apart, each running view, and keeps every one
// open (sharing what it has) until all are done.
func watchAll(ctx context.Context, dir, base string, viewers int, view func(context.Context) (viewerFigures, error)) ([]viewerFigures, error) {
	out := make([]viewerFigures, viewers)
	errs := make([]error, viewers)
	var wg sync.WaitGroup
	var cancels []func()
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := range viewers {
		profile, err := os.MkdirTemp(dir, "chromium-")
		if err != nil {
			return nil, err
		}
		actx, cancelA := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath("/usr/bin/chromium"), chromedp.UserDataDir(profile), chromedp.NoSandbox,
			chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
			chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
			// An address other than loopback is no secure context: let the service worker run there.
			chromedp.Flag("unsafely-treat-insecure-origin-as-secure", base),
			chromedp.WindowSize(800, 600))...)
		bctx, cancelB := chromedp.NewContext(actx)
		cancels = append(cancels, cancelB, cancelA)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = view(bctx)
		}()
		time.Sleep(2 * time.Second)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("viewer %d: %w", i+1, err)
		}
	}
	return out, nil
}

const playerVideo = `document.querySelector('#play video')`

// playerViewer opens the episode page, plays watch of the video with the player and reads its
// counters.
func playerViewer(ctx context.Context, base, page string, watch time.Duration) (viewerFigures, error) {
	opened := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitReady(chromedp.CSS(`#play[data-state="webtorrent"]`)),
		chromedp.Evaluate[chromedp.Void](playerVideo+`.muted = true; `+playerVideo+`.play()`)); err != nil {
		return viewerFigures{}, err
	}
	first, err := waitPosition(ctx, playerVideo, opened, watch)
	if err != nil {
		return viewerFigures{}, err
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]int64](`(d => [+d.webSeedBytes || 0, +d.peerBytes || 0, +d.uploadedBytes || 0])(document.querySelector('#play').dataset)`))
	if err != nil || len(v) != 3 {
		return viewerFigures{}, fmt.Errorf("the player's counters: %v %v", v, err)
	}
	return viewerFigures{webSeed: v[0], peers: v[1], uploaded: v[2], firstFrameMs: first.Milliseconds()}, nil
}

// plainViewer opens the web seed's file in the browser's own media page, which plays it at
// once, as a fan without the player does.
func plainViewer(ctx context.Context, seedURL string, watch time.Duration) (viewerFigures, error) {
	const v = `document.querySelector('video')`
	opened := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(seedURL), chromedp.WaitReady(chromedp.CSS(`video`)),
		chromedp.Evaluate[chromedp.Void](v+`.muted = true; `+v+`.play()`)); err != nil {
		return viewerFigures{}, err
	}
	first, err := waitPosition(ctx, v, opened, watch)
	return viewerFigures{firstFrameMs: first.Milliseconds()}, err
}

// waitPosition waits until the video has played watch, and returns when its first frame showed
// (its position past 0), counted from opened.
func waitPosition(ctx context.Context, video string, opened time.Time, watch time.Duration) (first time.Duration, err error) {
	deadline := time.Now().Add(watch + 90*time.Second)
	for {
		cur, err := chromedp.Run(ctx, chromedp.Evaluate[float64](video+`.currentTime`))
		if err != nil {
			return 0, err
		}
		if cur > 0 && first == 0 {
			first = time.Since(opened)
		}
		if cur >= watch.Seconds() {
			return first, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("played %.1f s of %s in %s", cur, watch, watch+90*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var webSeedSeries = regexp.MustCompile(`(?m)^fanseed_web_seed_bytes_total\{to="([a-z]+)"\} ([0-9.e+]+)$`)

// webSeedBytes reads the web seed's bytes by who asked from /metrics.
func webSeedBytes(base string) (map[string]int64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]int64{}
	for _, m := range webSeedSeries.FindAllStringSubmatch(string(b), -1) {
		f, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = int64(f)
	}
	return out, nil
}

// clientsShare runs 4 aria2c and 4 libtorrent clients on the .torrent (with its web seed) at
// once and returns the share of their bytes the web seed sent them.
func clientsShare(ctx context.Context, dir, base string, up benchkit.Upload, torrentURL string, size int64) (float64, error) {
	resp, err := up.Creator.Get(torrentURL)
	if err != nil {
		return 0, err
	}
	tb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tf := filepath.Join(dir, "pilot.torrent")
	if err := os.WriteFile(tf, tb, 0o600); err != nil {
		return 0, err
	}
	before, err := webSeedBytes(base)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var cmds []*exec.Cmd
	for i := range 4 {
		out := filepath.Join(dir, fmt.Sprintf("aria2c-%d", i))
		cmds = append(cmds, exec.CommandContext(ctx, "aria2c", "--dir="+out, "--seed-time=0", "--enable-dht=false",
			"--bt-enable-lpd=false", "--enable-peer-exchange=true", "--listen-port="+strconv.Itoa(46881+i), "--console-log-level=warn",
			"--summary-interval=0", "--file-allocation=none", "--check-integrity=true", tf))
		out = filepath.Join(dir, fmt.Sprintf("libtorrent-%d", i))
		cmds = append(cmds, exec.CommandContext(ctx, "/usr/bin/python3", "-c", libtorrentClient, tf, out, strconv.Itoa(47881+i)))
	}
	for _, c := range cmds {
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			return 0, err
		}
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			return 0, fmt.Errorf("%s: %w", filepath.Base(c.Path), err)
		}
	}
	time.Sleep(time.Second) // the web seed counts a response once it is sent
	after, err := webSeedBytes(base)
	if err != nil {
		return 0, err
	}
	return 100 * float64(after["bittorrent"]-before["bittorrent"]) / float64(8*size), nil
}

// libtorrentClient downloads argv[1] into argv[2] listening on port argv[3], and exits once the
// file is complete and checked.
const libtorrentClient = `
import sys, time, libtorrent as lt
s = lt.session({'listen_interfaces': '0.0.0.0:' + sys.argv[3], 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True})
h = s.add_torrent({'ti': lt.torrent_info(sys.argv[1]), 'save_path': sys.argv[2]})
deadline = time.time() + 600
while not h.status().is_seeding:
    if time.time() > deadline:
        sys.exit('libtorrent did not finish in 10 minutes: %s' % h.status().state)
    time.sleep(0.2)
`

func sum(v []viewerFigures, f func(viewerFigures) int64) (n int64) {
	for _, x := range v {
		n += f(x)
	}
	return n
}

func pct(v []viewerFigures, p int) int64 {
	var ms []int64
	for _, x := range v {
		ms = append(ms, x.firstFrameMs)
	}
	slices.Sort(ms)
	return ms[min(len(ms)-1, (len(ms)*p+99)/100-1)]
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
