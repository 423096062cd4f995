package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/mail/mailtest"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// ffmpegPush runs Debian's ffmpeg sending a test picture and tone over RTMP, in real time, for
// seconds (0: until killed), with a key frame every 2 s.
func ffmpegPush(t *testing.T, url string, seconds int) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (bash .ci/test installs it): %v", err)
	}
	args := []string{"-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"}
	if seconds > 0 {
		args = append(args, "-t", fmt.Sprint(seconds))
	}
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", url)
	cmd := exec.Command("ffmpeg", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// sseEvent is one Server-Sent Event as the overlay gets it, with when it arrived.
type sseEvent struct {
	Event, Data string
	At          time.Time
}

// followSSE reads an event stream into a channel until the test ends.
func followSSE(t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("overlay events: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			case line == "":
				if ev.Event != "" {
					ev.At = time.Now()
					ch <- ev
				}
				ev = sseEvent{}
			}
		}
	}()
	return ch
}

// TestLiveStreamToEpisode is the live issue's proof with real processes: serve with its RTMP
// ingest and two seedbox nodes; a wrong key is refused; ffmpeg pushes a test stream whose HLS
// segments match their SHA-256 list; a donation made during the stream reaches the overlay's
// event stream within 2 s, moderated; a viewer's reports show in the live statistics; stopping
// ffmpeg ends the stream, and its recording (one mp4, moov first) is published as an episode
// with the stream's donation linked to it, whose torrent aria2c downloads byte-exact.
func TestLiveStreamToEpisode(t *testing.T) {
	t.Parallel()
	bin := buildFanseed(t)
	dbURL := dbtest.NewURL(t)
	smtpd := mailtest.NewPlainServer(t)
	rtmpAddr := freeAddr(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL, "NODE_TOKEN": testNodeToken, "LOG_FORMAT": "text",
		"SMTP_URL": smtpd.URL(), "MAIL_FROM": "Fanseed <noreply@fanseed.test>", "LIVE_RTMP_ADDR": rtmpAddr})
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	edgeAddr := freeAddr(t)
	startSeedbox(t, bin, base, "n1", t.TempDir(), "NODE_LIVE_EDGE_ADDR="+edgeAddr)
	startSeedbox(t, bin, base, "n2", t.TempDir())

	jar, _ := cookiejar.New(nil)
	creator := &fan{t: t, base: base, c: &http.Client{Jar: jar}}
	creator.post("/signup", url.Values{"name": {"Nina"}, "email": {"nina@example.com"}, "password": {"a long enough password"}})
	confirmEmail(t, creator.c, base, smtpd, "nina@example.com")
	creator.post("/login", url.Values{"email": {"nina@example.com"}, "password": {"a long enough password"}})
	resp := creator.post("/shows", url.Values{"title": {"Night Signals"}, "slug": {"night-signals"}, "currency": {"USD"}})
	showPath := strings.TrimSuffix(resp.Request.URL.Path, "/plan")
	creator.post(showPath+"/plan", url.Values{"name": {"Fanseed (distributor)", "Nina"},
		"email": {"", "nina@example.com"}, "percent": {"25", "75"}, "fee_policy": {"net"}, "source": {"all"}, "action": {"save"}})
	if resp := creator.post(showPath+"/live/settings", url.Values{"record": {"1"}, "goal": {"100"}, "message_limit": {"40"},
		"blocklist": {"rotten"}}); resp.Request.URL.Query().Get("saved") == "" {
		t.Fatalf("live settings not saved: landed on %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+showPath+"/live/key", strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := creator.do(req)
	keyM := regexp.MustCompile(`<code id="stream-key">([^<]+)</code>`).FindSubmatch(body)
	overlayM := regexp.MustCompile(`<code id="overlay-url">([^<]+)</code>`).FindSubmatch(body)
	serverM := regexp.MustCompile(`<code id="live-server">([^<]+)</code>`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || keyM == nil || overlayM == nil || serverM == nil {
		t.Fatalf("creating a stream key: status %d\n%s", resp.StatusCode, body)
	}
	streamKey, overlayURL, server := string(keyM[1]), html.UnescapeString(string(overlayM[1])), string(serverM[1])
	if server != "rtmp://"+rtmpAddr+"/live" {
		t.Errorf("the live page names the server %s, want rtmp://%s/live", server, rtmpAddr)
	}
	if page := string(creator.get(showPath + "/live")); strings.Contains(page, streamKey) {
		t.Error("the live page shows the stream key again: it must be shown once")
	}
	var stored int
	db.QueryRow(context.Background(), `SELECT count(*) FROM live_keys WHERE key_hash = sha256(convert_to($1, 'UTF8'))`, streamKey).Scan(&stored)
	if stored != 1 {
		t.Errorf("the key is not stored as its SHA-256 (%d rows)", stored)
	}

	if err := ffmpegPush(t, "rtmp://"+rtmpAddr+"/live/wrong-key", 3).Wait(); err == nil {
		t.Fatal("ffmpeg with a wrong key exited 0: the ingest took it")
	}
	overlay := followSSE(t, overlayURL+"/events")
	ff := ffmpegPush(t, server+"/"+streamKey, 0)

	var playlist string
	deadline := time.Now().Add(30 * time.Second)
	for {
		page := string(creator.get("/s/night-signals/live"))
		if m := regexp.MustCompile(`data-playlist="([^"]+)"`).FindStringSubmatch(page); m != nil {
			playlist = m[1]
			if r, err := http.Get(playlist); err == nil {
				ok := r.StatusCode == http.StatusOK
				r.Body.Close()
				if ok {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live page has no playable stream 30 s after ffmpeg started:\n%s", page)
		}
		time.Sleep(200 * time.Millisecond)
	}
	liveBase := strings.TrimSuffix(playlist, "index.m3u8")
	var list struct {
		Segments []struct{ Name, SHA256 string } `json:"segments"`
	}
	json.Unmarshal(creator.get(strings.TrimPrefix(liveBase, base)+"hashes.json"), &list)
	if len(list.Segments) == 0 {
		t.Fatal("the SHA-256 list names no segment")
	}
	seg := creator.get(strings.TrimPrefix(liveBase, base) + list.Segments[0].Name)
	if sum := sha256.Sum256(seg); hex.EncodeToString(sum[:]) != list.Segments[0].SHA256 {
		t.Errorf("segment %s does not match its SHA-256 in the list", list.Segments[0].Name)
	}

	// The node's edge serves the same bytes, fetched once from serve; the page names the edge.
	if page := string(creator.get("/s/night-signals/live")); !strings.Contains(page, `data-edges="http://`+edgeAddr+`"`) {
		t.Errorf("the live page does not name the node's edge http://%s", edgeAddr)
	}
	segPath := strings.TrimPrefix(liveBase, base) + list.Segments[0].Name
	for i, want := range []string{"miss", "hit"} {
		r, err := http.Get("http://" + edgeAddr + segPath)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || !bytes.Equal(b, seg) || r.Header.Get("X-Cache") != want {
			t.Errorf("segment from the edge, request %d: status %d, same bytes %v, X-Cache %q (want %s)", i+1, r.StatusCode, bytes.Equal(b, seg), r.Header.Get("X-Cache"), want)
		}
	}

	// A viewer reports; the creator's statistics count it.
	report := func(viewer string, peer, http_ int64) {
		b, _ := json.Marshal(map[string]any{"viewer": viewer, "peer_bytes": peer, "http_bytes": http_, "seconds": 60})
		r, err := http.Post(liveBase+"report", "application/json", bytes.NewReader(b))
		if err != nil || r.StatusCode != http.StatusNoContent {
			t.Fatalf("viewer report: %v %v", err, r)
		}
		r.Body.Close()
	}
	report("viewer-one", 3000, 1000)
	report("viewer-two", 0, 1000)
	var stats struct {
		Live           bool
		Viewers        int
		PeakViewers    int     `json:"peak_viewers"`
		MinutesWatched int64   `json:"minutes_watched"`
		PeerShare      float64 `json:"peer_share"`
	}
	json.Unmarshal(creator.get(showPath+"/live/stats"), &stats)
	if !stats.Live || stats.Viewers != 2 || stats.PeakViewers != 2 || stats.MinutesWatched != 2 || stats.PeerShare != 0.6 {
		t.Errorf("live statistics = %+v, want live, 2 viewers, peak 2, 2 minutes, peer share 0.6", stats)
	}

	// A donation during the stream reaches the overlay within 2 s, its message moderated.
	donor, _ := cookiejar.New(nil)
	fanC := &fan{t: t, base: base, c: &http.Client{Jar: donor}}
	resp = fanC.post("/s/night-signals/donate", url.Values{"amount": {"custom"}, "custom": {"20.00"}, "frequency": {"once"},
		"display_name": {"Fan One"}, "message": {"Rotten luck with the weather, but what a show this is tonight"}})
	if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/") {
		t.Fatalf("the donation is not on the test checkout: %s", resp.Request.URL)
	}
	fanC.post(resp.Request.URL.Path, url.Values{"action": {"pay"}})
	paid := time.Now()
	var got sseEvent
	for got.Event != "donation" {
		select {
		case got = <-overlay:
		case <-time.After(10 * time.Second):
			t.Fatal("no donation on the overlay 10 s after paying")
		}
	}
	if d := got.At.Sub(paid); d > 2*time.Second {
		t.Errorf("the donation reached the overlay %s after it was paid, want within 2 s", d)
	} else {
		t.Logf("the donation reached the overlay %s after the test checkout returned", d.Round(time.Millisecond))
	}
	var od struct{ Name, Amount, Message string }
	json.Unmarshal([]byte(got.Data), &od)
	if od.Name != "Fan One" || od.Amount != "20.00 USD" || !strings.HasPrefix(od.Message, "****** luck") || len([]rune(od.Message)) > 41 {
		t.Errorf("overlay donation = %+v, want Fan One, 20.00 USD, the blocked word masked and the message cut to 40", od)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		select {
		case ev := <-overlay:
			if ev.Event == "goal" && strings.Contains(ev.Data, `"raised":2000`) && strings.Contains(ev.Data, `"goal":10000`) {
				goto goalSeen
			}
		case <-time.After(time.Until(deadline)):
			t.Fatal("the goal bar did not move to 20.00 of 100.00")
		}
	}
goalSeen:

	// A second connection with the same key is refused while the first one sends.
	if err := ffmpegPush(t, server+"/"+streamKey, 3).Wait(); err == nil {
		t.Error("a second ffmpeg with the same key exited 0")
	}

	ff.Process.Kill()
	ff.Wait()
	var episodeID int64
	var recording, reason string
	for deadline := time.Now().Add(60 * time.Second); ; {
		db.QueryRow(context.Background(), `SELECT coalesce(episode_id, 0), recording, end_reason FROM live_streams`).Scan(&episodeID, &recording, &reason)
		if episodeID != 0 || recording == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no episode of the recording 60 s after ffmpeg stopped (recording %s)", recording)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if recording != "episode" || reason != "disconnected" {
		t.Fatalf("stream after ffmpeg stopped: recording %q, end reason %q", recording, reason)
	}
	episodePath := fmt.Sprintf("%s/episodes/%d", showPath, episodeID)
	waitPublished(t, creator, episodePath, 90*time.Second)
	var linked int64
	db.QueryRow(context.Background(), `SELECT count(*) FROM donations WHERE episode_id = $1 AND display_name = 'Fan One'`, episodeID).Scan(&linked)
	if linked != 1 {
		t.Errorf("the stream's donation is not linked to the recording's episode")
	}

	page := string(creator.get(episodePath))
	m := regexp.MustCompile(`/t/([0-9a-f]{40})\.torrent`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the recording's episode page has no .torrent link:\n%s", page)
	}
	ih, _ := hex.DecodeString(m[1])
	var want []byte
	db.QueryRow(context.Background(), `SELECT sha256 FROM torrents WHERE infohash = $1`, ih).Scan(&want)
	torrentBytes := creator.get("/t/" + m[1] + ".torrent")
	mi, err := metainfo.Load(bytes.NewReader(torrentBytes))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := mi.UnmarshalInfo()
	dir := t.TempDir()
	torrentFile := filepath.Join(dir, "live.torrent")
	os.WriteFile(torrentFile, torrentBytes, 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := t.TempDir()
	cmd, logs := aria2c(t, ctx, out, torrentFile)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("aria2c: %v\n%s", err, logs)
	}
	file := filepath.Join(out, info.Name)
	if got := sha256File(t, file); !bytes.Equal(got[:], want) {
		t.Fatal("the recording aria2c downloaded differs from what was published")
	}
	b, _ := os.ReadFile(file)
	if moov, mdat := bytes.Index(b, []byte("moov")), bytes.Index(b, []byte("mdat")); moov < 0 || moov > mdat {
		t.Errorf("the recording's moov is at %d, its mdat at %d: want moov first", moov, mdat)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", file).CombinedOutput()
	if err != nil || !strings.Contains(string(probe), "h264") || !strings.Contains(string(probe), "aac") {
		t.Errorf("ffprobe of the recording: %v\n%s", err, probe)
	}
}
