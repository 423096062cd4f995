package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// publishedOn runs serve and two seedbox processes listening on hostIP, uploads an episode and
// waits until it is published and both nodes announce it. It returns the serve base URL, the
// episode's .torrent and its data.
func publishedOn(t *testing.T, hostIP string, size int) (base string, torrent []byte, data []byte) {
	t.Helper()
	bin := buildFanseed(t)
	addr := freeAddrOn(t, hostIP)
	base = "http://" + addr
	startServeProcess(t, "DATABASE_URL="+dbtest.NewURL(t), "ADDR="+addr, "BASE_URL="+base, "NODE_TOKEN="+testNodeToken,
		"DATA_DIR="+t.TempDir(), "LOG_FORMAT=text", "TRACKER_ANNOUNCES_PER_MINUTE=0")
	for _, name := range []string{"n1", "n2"} {
		startSeedbox(t, bin, base, name, t.TempDir(), "NODE_LISTEN_ADDR="+hostIP+":0")
	}
	data = mediaFile(7, size)
	creator, episodePath := uploadEpisode(t, base, "pilot.mp4", data)
	waitPublished(t, creator, episodePath, 90*time.Second)
	m := regexp.MustCompile(`/t/([0-9a-f]{40})\.torrent`).FindStringSubmatch(string(creator.get(episodePath)))
	if m == nil {
		t.Fatal("the episode page has no .torrent link")
	}
	torrent = creator.get("/t/" + m[1] + ".torrent")
	ihb, _ := hex.DecodeString(m[1])
	var ih [20]byte
	copy(ih[:], ihb)
	deadline := time.Now().Add(30 * time.Second)
	for scrapeSeeders(t, base, ih) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the tracker knows %d seeders 30 s after publishing, want 2", scrapeSeeders(t, base, ih))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return base, torrent, data
}

// withoutWebSeed is the .torrent with its url-list removed: the infohash is the same, and
// whatever a client fetches with it comes from peers.
func withoutWebSeed(t *testing.T, torrent []byte) []byte {
	t.Helper()
	mi, err := metainfo.Load(bytes.NewReader(torrent))
	if err != nil {
		t.Fatal(err)
	}
	mi.UrlList = nil
	var b bytes.Buffer
	if err := mi.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTransmissionDownloadsFromTheNodes runs Debian's Transmission 3.00 with its default
// settings (uTP on) in a network namespace, against serve and two seedbox processes on the
// host side, with the web seed removed: every byte comes from the nodes.
func TestTransmissionDownloadsFromTheNodes(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("transmission-cli"); err != nil {
		t.Fatalf("transmission-cli is not installed (bash .ci/test installs it): %v", err)
	}
	ns := newNetns(t)
	_, torrent, data := publishedOn(t, ns.HostIP, 6<<20+4321)
	dir := t.TempDir()
	tf := filepath.Join(dir, "pilot.torrent")
	os.WriteFile(tf, withoutWebSeed(t, torrent), 0o600)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, "transmission-cli", "-w", out, "-g", filepath.Join(dir, "conf"), "-p", "51413", tf)
	logs := &testkit.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	started := time.Now()
	want := sha256.Sum256(data)
	got := filepath.Join(out, "pilot.mp4")
	for {
		if b, err := os.ReadFile(got); err == nil && sha256.Sum256(b) == want {
			t.Logf("transmission downloaded %d bytes from the nodes in %s", len(b), time.Since(started).Round(time.Millisecond))
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("transmission did not finish from the nodes in 120 s:\n%s", logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestAria2cFromAMagnetAlone gives aria2c nothing but a magnet with our tracker: before it has
// the metadata it announces left=0 with nothing downloaded, which must not make it a seeder
// that gets no peers (and counts as one).
func TestAria2cFromAMagnetAlone(t *testing.T) {
	t.Parallel()
	base, torrent, data := publishedOn(t, "127.0.0.1", 3<<20+777)
	mi, err := metainfo.Load(bytes.NewReader(torrent))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := mi.UnmarshalInfo()
	ih := mi.HashInfoBytes()
	magnet := metainfo.Magnet{InfoHash: ih, DisplayName: info.Name, Trackers: []string{base + "/announce"}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := t.TempDir()
	started := time.Now()
	cmd, logs := aria2c(t, ctx, out, magnet.String(), "--bt-save-metadata=false", "--bt-metadata-only=false")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("aria2c from a magnet: %v\n%s", err, logs)
	}
	if sha256File(t, filepath.Join(out, info.Name)) != sha256.Sum256(data) {
		t.Fatal("the file aria2c fetched from the magnet differs from the upload")
	}
	t.Logf("aria2c fetched the metadata and %d bytes from the nodes in %s", len(data), time.Since(started).Round(time.Millisecond))
	if sc := scrape(t, base, ih); sc.Complete != 2 {
		t.Errorf("scrape after aria2c stopped = %+v, want the 2 nodes as the only seeders", sc)
	}
}

// TestAnacrolixOverWebRTCAlone downloads an episode with an anacrolix client that may use
// nothing but WebRTC through the WebSocket tracker: no TCP, no uTP, no web seed, no HTTP
// tracker, no DHT or PEX. Every byte comes from the nodes' WebRTC, as a browser's would. pion
// gathers no loopback candidates, so everything listens on the host side of a veth pair.
func TestAnacrolixOverWebRTCAlone(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	_, torrentFile, data := publishedOn(t, ns.HostIP, 3<<20+777)
	mi, err := metainfo.Load(bytes.NewReader(torrentFile))
	if err != nil {
		t.Fatal(err)
	}
	var ws []string
	for _, tier := range mi.UpvertedAnnounceList() {
		for _, u := range tier {
			if strings.HasPrefix(u, "ws://") || strings.HasPrefix(u, "wss://") {
				ws = append(ws, u)
			}
		}
	}
	if len(ws) != 1 {
		t.Fatalf("the .torrent lists WebSocket trackers %v, want one", ws)
	}
	mi.Announce, mi.AnnounceList, mi.UrlList = ws[0], [][]string{ws}, nil

	cfg := torrent.NewDefaultClientConfig()
	cfg.DataDir = t.TempDir()
	cfg.DisableTCP, cfg.DisableUTP, cfg.NoDHT, cfg.DisablePEX, cfg.DisableWebseeds = true, true, true, true, true
	cfg.ListenPort = 0
	cfg.Seed = false
	var mu sync.Mutex
	networks := map[string]int{} // of every peer connection made
	cfg.Callbacks.PeerConnAdded = append(cfg.Callbacks.PeerConnAdded, func(pc *torrent.PeerConn) {
		mu.Lock()
		defer mu.Unlock()
		networks[pc.Network]++
	})
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tor, err := cl.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	tor.DownloadAll()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	started := time.Now()
	select {
	case <-tor.Complete().On():
	case <-ctx.Done():
		t.Fatalf("the WebRTC-only client has %d of %d bytes after 90 s, from %d peers", tor.BytesCompleted(), tor.Length(), len(tor.PeerConns()))
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("downloaded %d bytes over WebRTC in %s; peer connections by network: %v", tor.Length(), time.Since(started).Round(time.Millisecond), networks)
	for network := range networks {
		if network != "webrtc" {
			t.Errorf("a peer connection over %q: the client may use WebRTC alone", network)
		}
	}
	if networks["webrtc"] == 0 {
		t.Error("no WebRTC peer connection was made")
	}
	got, err := os.ReadFile(filepath.Join(cfg.DataDir, tor.Info().BestName()))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("the file fetched over WebRTC differs from the upload")
	}
}
