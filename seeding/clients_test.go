package seeding

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// testEndpoints stands in for the api package: the tracker and, under /webseed/, the files. It
// returns the server unstarted, so tests finish setting up the tracker first, and its URL.
func testEndpoints(t *testing.T, tr *Tracker, webseedDir string) (*httptest.Server, string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(tr.AnnounceBody(r.URL.RawQuery, net.ParseIP(host), false))
	})
	mux.Handle("/webseed/", http.StripPrefix("/webseed/", http.FileServer(http.Dir(webseedDir))))
	srv := httptest.NewUnstartedServer(mux)
	t.Cleanup(srv.Close)
	return srv, "http://" + srv.Listener.Addr().String()
}

func testClient(t *testing.T, dataDir string, webseeds bool) *torrent.Client {
	cfg := torrent.TestingConfig(t)
	cfg.DataDir = dataDir
	cfg.DisableTrackers = false
	cfg.DisableWebseeds = !webseeds
	cfg.DisableIPv6 = true
	cfg.Seed = true
	cfg.MaxAllocPeerRequestDataPerConn = torrent.NewDefaultClientConfig().MaxAllocPeerRequestDataPerConn
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// publish writes an episode into dir and builds its torrent, as publishing does.
func publish(t *testing.T, dir, trackerURL, webSeedURL string) (Torrent, []byte, *metainfo.MetaInfo) {
	data := randomBytes(9, 3<<20+777)
	tor, err := BuildTorrent(hashAll(t, data, PieceLength(int64(len(data)))), TorrentOptions{
		Name: "Episode 9.webm", TrackerURL: trackerURL, WebSeedURL: webSeedURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tor.Name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Load(bytes.NewReader(tor.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	return tor, data, mi
}

func waitComplete(t *testing.T, tt *torrent.Torrent, what string) {
	t.Helper()
	select {
	case <-tt.Complete().On():
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: %d of %d bytes after 60 s", what, tt.BytesCompleted(), tt.Length())
	}
}

// TestClientsThroughTracker has a real BitTorrent client fetch an episode from another one that
// it found only through our tracker, using the .torrent BuildTorrent made.
func TestClientsThroughTracker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two BitTorrent clients")
	}
	tr := &Tracker{Interval: time.Minute}
	srv, base := testEndpoints(t, tr, t.TempDir())
	seedDir, leechDir := t.TempDir(), t.TempDir()
	tor, data, mi := publish(t, seedDir, base+"/announce", "")
	tr.Allowed = func(ih [20]byte) bool { return ih == tor.InfoHash }
	srv.Start()

	seed, err := testClient(t, seedDir, false).AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.VerifyData(); err != nil {
		t.Fatal(err)
	}
	waitComplete(t, seed, "seeder verifying")
	leechAll(t, leechDir, false, mi, tor.Name, data)
	// Both clients are in the swarm. The seeder's first announce had nothing uploaded, so it may
	// still count as a leecher (see isSeeder).
	if s := tr.Snapshot(); len(s) != 1 || s[0].Announces < 2 || s[0].Seeders+s[0].Leechers != 2 {
		t.Errorf("Snapshot = %+v", s)
	}
}

// TestClientFromWebSeed has a real client fetch an episode from the web seed alone, which checks
// the url-list form torrents carry: the file's own URL (which webtorrent needs), and BEP 19's
// directory form (a URL the client appends the name to) that older torrents carried.
func TestClientFromWebSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a BitTorrent client")
	}
	for _, form := range []string{"file", "directory"} {
		t.Run(form, func(t *testing.T) {
			tr := &Tracker{}
			originDir, leechDir := t.TempDir(), t.TempDir()
			srv, base := testEndpoints(t, tr, originDir)
			webSeed := base + "/webseed/"
			if form == "file" {
				webSeed = WebSeedFileURL(webSeed, "Episode 9.webm")
			}
			tor, data, mi := publish(t, originDir, base+"/announce", webSeed)
			if form == "file" && (len(mi.UrlList) != 1 || !strings.HasSuffix(mi.UrlList[0], "/webseed/Episode%209.webm")) {
				t.Fatalf("url-list = %q, want the file's URL", mi.UrlList)
			}
			tr.Allowed = func(ih [20]byte) bool { return ih == tor.InfoHash }
			srv.Start()

			leechAll(t, leechDir, true, mi, tor.Name, data)
		})
	}
}

// leechAll downloads mi with a new client in dir (webSeeds: one that fetches from web seeds)
// and checks that the file, name, holds data.
func leechAll(t *testing.T, dir string, webSeeds bool, mi *metainfo.MetaInfo, name string, data []byte) {
	t.Helper()
	leech, err := testClient(t, dir, webSeeds).AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	leech.DownloadAll()
	waitComplete(t, leech, "leecher")
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("leecher's file differs from the episode (err %v)", err)
	}
}
