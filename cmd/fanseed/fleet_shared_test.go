package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// TestTwoServesShareOneSwarm runs two `serve` processes on one database and one uploads
// directory behind a load balancer. An upload resumes on whichever process its next PATCH
// reaches. The balancer sends the seedbox nodes' announces to the first and aria2c's to the
// second: aria2c still finds the nodes and downloads the episode from them (a .torrent without
// the web seed), and either process's scrape counts both seeders.
func TestTwoServesShareOneSwarm(t *testing.T) {
	t.Parallel()
	bin := buildFanseed(t)
	dbURL := dbtest.NewURL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbURL := "http://" + ln.Addr().String()
	dataDir := t.TempDir() // storage both processes see
	env := func() map[string]string {
		return map[string]string{"DATABASE_URL": dbURL, "NODE_TOKEN": testNodeToken, "BASE_URL": lbURL, "LOG_FORMAT": "text",
			"DATA_DIR": dataDir}
	}
	baseA, _ := startServe(t, env())
	baseB, _ := startServe(t, env())
	urlA, _ := url.Parse(baseA)
	urlB, _ := url.Parse(baseB)
	toA, toB := httputil.NewSingleHostReverseProxy(urlA), httputil.NewSingleHostReverseProxy(urlB)
	var aria2Announces atomic.Int64
	lb := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/announce" && strings.HasPrefix(r.URL.Query().Get("peer_id"), "A2") { // aria2's peer ids
			aria2Announces.Add(1)
			toB.ServeHTTP(w, r)
			return
		}
		toA.ServeHTTP(w, r)
	})}
	go lb.Serve(ln)
	t.Cleanup(func() { lb.Close() })

	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, name := range []string{"n1", "n2"} {
		startSeedbox(t, bin, baseA, name, t.TempDir())
	}
	data := mediaFile(7, 4<<20+777)
	// The upload is created on A and its bytes sent in three PATCHes to B, A and B.
	creator, episodePath := uploadEpisode(t, baseA, "shared.mp4", data, baseB, baseA, baseB)
	waitPublished(t, creator, episodePath, 60*time.Second)

	m := regexp.MustCompile(`/t/([0-9a-f]{40})\.torrent`).FindStringSubmatch(string(creator.get(episodePath)))
	if m == nil {
		t.Fatal("episode page has no .torrent link")
	}
	mi, err := metainfo.Load(bytes.NewReader(creator.get("/t/" + m[1] + ".torrent")))
	if err != nil || mi.Announce != lbURL+"/announce" {
		t.Fatalf("the .torrent announces to %q (%v), want the load balancer", mi.Announce, err)
	}
	ihBytes, _ := hex.DecodeString(m[1])
	var ih [20]byte
	copy(ih[:], ihBytes)

	// The nodes announce (through the load balancer) to A only; B learns of them from A.
	deadline := time.Now().Add(20 * time.Second)
	for scrapeSeeders(t, baseA, ih) < 2 || scrapeSeeders(t, baseB, ih) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("20 s after publishing A counts %d seeders and B %d, want 2 each",
				scrapeSeeders(t, baseA, ih), scrapeSeeders(t, baseB, ih))
		}
		time.Sleep(200 * time.Millisecond)
	}

	mi.UrlList = nil
	var fleetOnly bytes.Buffer
	mi.Write(&fleetOnly)
	torrentFile := filepath.Join(t.TempDir(), "shared.torrent")
	os.WriteFile(torrentFile, fleetOnly.Bytes(), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := t.TempDir()
	cmd, logs := aria2c(t, ctx, out, torrentFile)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("aria2c announcing to B: %v\n%s", err, logs)
	}
	if sha256File(t, filepath.Join(out, "shared.mp4")) != sha256.Sum256(data) {
		t.Fatal("the file aria2c fetched differs from the upload")
	}
	if aria2Announces.Load() == 0 {
		t.Fatal("aria2c's announces never reached B")
	}
	t.Logf("aria2c downloaded through B's answers (%d announces to B)", aria2Announces.Load())
}
