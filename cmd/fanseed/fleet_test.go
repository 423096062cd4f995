package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

const testNodeToken = "test-node-token-0123456789"

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// buildFanseed builds this program, once per test run, for tests that need real processes
// (to SIGKILL them).
func buildFanseed(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fanseed-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "fanseed")
		if out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// seedboxProc is a `fanseed seedbox` process.
type seedboxProc struct {
	name string
	dir  string
	cmd  *exec.Cmd
	logs *testkit.LogBuffer
	done chan struct{}
}

// env adds to or overrides the node's settings.
func startSeedbox(t *testing.T, bin, controlURL, name, dir string, env ...string) *seedboxProc {
	t.Helper()
	p := &seedboxProc{name: name, dir: dir, logs: &testkit.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "seedbox")
	p.cmd.Env = []string{"CONTROL_URL=" + controlURL, "NODE_TOKEN=" + testNodeToken, "NODE_NAME=" + name,
		"NODE_DATA_DIR=" + dir, "NODE_LISTEN_ADDR=127.0.0.1:0", "NODE_CAPACITY_BYTES=1000000000",
		"LOG_FORMAT=text", "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

func (p *seedboxProc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	<-p.done
}

// fan is a browser-like HTTP client with a session.
type fan struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (f *fan) do(req *http.Request) (*http.Response, []byte) {
	f.t.Helper()
	resp, err := f.c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (f *fan) post(path string, form url.Values) *http.Response {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ := f.do(req)
	return resp
}

func (f *fan) get(path string) []byte {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.base+path, nil)
	resp, b := f.do(req)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET %s: status %d\n%s", path, resp.StatusCode, b)
	}
	return b
}

// uploadEpisode signs up, creates a show and an episode, and uploads data with tus as any tus
// client would: created on base, then one PATCH per entry of patchBases (base alone when there
// are none), each sending its share of the bytes to that server. It returns the episode page's
// path.
func uploadEpisode(t *testing.T, base, filename string, data []byte, patchBases ...string) (creator *fan, episodePath string) {
	t.Helper()
	creator = &fan{t: t, base: base, c: newClient()}
	creator.post("/signup", url.Values{"name": {"Nina"}, "email": {"nina@example.com"}, "password": {"a long enough password"}})
	creator.post("/login", url.Values{"email": {"nina@example.com"}, "password": {"a long enough password"}})
	resp := creator.post("/shows", url.Values{"title": {"Night Signals"}, "slug": {"night-signals"}, "currency": {"USD"}, "funding_goal": {"0"}})
	showPath := strings.TrimSuffix(resp.Request.URL.Path, "/plan")
	resp = creator.post(showPath+"/episodes", url.Values{"title": {"Pilot"}})
	episodePath = resp.Request.URL.Path
	tusUpload(t, creator, base, episodePath, filename, data, patchBases...)
	return creator, episodePath
}

// waitPublished follows the episode's status as the upload page does.
func waitPublished(t *testing.T, creator *fan, episodePath string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var st struct{ Status, FailureReason string }
		json.Unmarshal(creator.get(episodePath+"/status"), &st)
		switch {
		case st.Status == "published":
			return
		case st.Status == "failed":
			t.Fatalf("episode failed: %s", st.FailureReason)
		case time.Now().After(deadline):
			t.Fatalf("episode still %s after %s", st.Status, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mediaFile is size random bytes that sniff as MP4.
func mediaFile(seed uint64, size int) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	copy(b, "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
	return b
}

// scrapeSeeders asks our tracker how many seeders a torrent has.
// scrapeEntry is one torrent's line in a scrape answer (BEP 48).
type scrapeEntry struct {
	Complete   int `bencode:"complete"`
	Incomplete int `bencode:"incomplete"`
	Downloaded int `bencode:"downloaded"`
}

func scrape(t *testing.T, base string, ih [20]byte) scrapeEntry {
	t.Helper()
	resp, err := http.Get(base + "/scrape?info_hash=" + url.QueryEscape(string(ih[:])))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Files map[string]scrapeEntry `bencode:"files"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := bencode.Unmarshal(b, &out); err != nil {
		t.Fatalf("scrape answer %q: %v", b, err)
	}
	return out.Files[string(ih[:])]
}

func scrapeSeeders(t *testing.T, base string, ih [20]byte) int {
	t.Helper()
	return scrape(t, base, ih).Complete
}

// aria2c starts Debian's aria2c on a .torrent, with DHT, local discovery and PEX off so that it
// finds peers only through our tracker (and the web seed, when the .torrent lists one).
func aria2c(t *testing.T, ctx context.Context, dir, torrentFile string, extra ...string) (*exec.Cmd, *testkit.LogBuffer) {
	t.Helper()
	if _, err := exec.LookPath("aria2c"); err != nil {
		t.Fatalf("aria2c is not installed (bash .ci/test installs it): %v", err)
	}
	args := append([]string{"--dir=" + dir, "--seed-time=0", "--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--disable-ipv6=true", "--listen-port=" + freePort(t),
		"--file-allocation=none", "--summary-interval=0", "--console-log-level=warn", "--allow-overwrite=true",
		"--auto-file-renaming=false", "--bt-stop-timeout=90", "--retry-wait=1", "--bt-tracker-connect-timeout=5"}, extra...)
	cmd := exec.CommandContext(ctx, "aria2c", append(args, torrentFile)...)
	out := &testkit.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

func sha256File(t *testing.T, name string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// fleetState reads how many up nodes seed the torrent and the total bytes the nodes uploaded.
func fleetState(t *testing.T, db *pgxpool.Pool, ih []byte) (seeding int, uploaded int64, perNode map[string]int64) {
	t.Helper()
	perNode = map[string]int64{}
	rows, err := db.Query(context.Background(), `SELECT n.name, n.status, a.state, a.uploaded FROM assignments a
		JOIN nodes n ON n.id = a.node_id JOIN torrents t ON t.id = a.torrent_id WHERE t.infohash = $1`, ih)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, status, state string
		var up int64
		rows.Scan(&name, &status, &state, &up)
		if status == "up" && state == "seeding" {
			seeding++
		}
		uploaded += up
		perNode[name] = up
	}
	return seeding, uploaded, perNode
}

// TestFleetPublishesAndFansDownload is the Publishing issue's proof with real processes: serve and
// three `fanseed seedbox` processes on loopback, an episode uploaded with tus, published once two
// nodes seed it, then fetched by aria2c from the fleet alone (a .torrent without the web seed),
// again while one seeding node is SIGKILLed mid-download (the fleet is back to two seeding
// replicas within 60 s, with the default 30 s down threshold), then from the web seed alone with
// every node stopped. Deleting the episode makes the tracker refuse it and the nodes drop it.
func TestFleetPublishesAndFansDownload(t *testing.T) {
	t.Parallel()
	bin := buildFanseed(t)
	dbURL := dbtest.NewURL(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL, "NODE_TOKEN": testNodeToken, "DATA_DIR": t.TempDir(), "LOG_FORMAT": "text"})
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	nodes := map[string]*seedboxProc{}
	for _, name := range []string{"n1", "n2", "n3"} {
		nodes[name] = startSeedbox(t, bin, base, name, t.TempDir())
	}
	dumpLogs := func() {
		for _, n := range nodes {
			t.Logf("--- %s:\n%s", n.name, n.logs)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var up int
		db.QueryRow(context.Background(), `SELECT count(*) FROM nodes WHERE status = 'up'`).Scan(&up)
		if up == 3 {
			break
		}
		if time.Now().After(deadline) {
			dumpLogs()
			t.Fatalf("%d of 3 nodes registered after 20 s", up)
		}
		time.Sleep(100 * time.Millisecond)
	}

	data := mediaFile(1, 8<<20+12345)
	want := sha256.Sum256(data)
	start := time.Now()
	creator, episodePath := uploadEpisode(t, base, "pilot.mp4", data)
	waitPublished(t, creator, episodePath, 60*time.Second)
	t.Logf("published %s after %s", episodePath, time.Since(start).Round(time.Millisecond))

	page := string(creator.get(episodePath))
	m := regexp.MustCompile(`/t/([0-9a-f]{40})\.torrent`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("episode page has no .torrent link:\n%s", page)
	}
	ihBytes, _ := hex.DecodeString(m[1])
	var ih [20]byte
	copy(ih[:], ihBytes)
	if n, _, _ := fleetState(t, db, ihBytes); n < 2 {
		t.Fatalf("published with %d seeding nodes", n)
	}
	torrentBytes := creator.get("/t/" + m[1] + ".torrent")
	mi, err := metainfo.Load(bytes.NewReader(torrentBytes))
	if err != nil || mi.HashInfoBytes() != ih || len(mi.UrlList) != 1 {
		t.Fatalf("the .torrent: %v, infohash %s, url-list %v", err, mi.HashInfoBytes(), mi.UrlList)
	}
	dir := t.TempDir()
	withWebSeed := filepath.Join(dir, "pilot.torrent")
	os.WriteFile(withWebSeed, torrentBytes, 0o600)
	// The same infohash without url-list: whatever a client fetches with it comes from peers.
	mi.UrlList = nil
	var fleetOnly bytes.Buffer
	mi.Write(&fleetOnly)
	fleetOnlyFile := filepath.Join(dir, "pilot-fleet-only.torrent")
	os.WriteFile(fleetOnlyFile, fleetOnly.Bytes(), 0o600)

	// The nodes announce once told the torrent is published.
	deadline = time.Now().Add(20 * time.Second)
	for scrapeSeeders(t, base, ih) < 2 {
		if time.Now().After(deadline) {
			dumpLogs()
			t.Fatalf("the tracker knows %d seeders 20 s after publishing, want 2", scrapeSeeders(t, base, ih))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Nodes are seeders, not downloads: an episode nobody fetched has no downloads.
	if sc := scrape(t, base, ih); sc.Downloaded != 0 || sc.Incomplete != 0 {
		t.Errorf("scrape after publishing = %+v, want 0 downloaded and 0 incomplete", sc)
	}

	// The creator's page says the fleet seeds it and that no fan has yet: the nodes' announces
	// and their copying to each other count in none of the fans' numbers.
	page = string(creator.get(episodePath))
	for _, want := range []string{`id="reach-replicas">Seeded by 2 of 2 nodes<`, `id="reach-seeders">0<`,
		`id="reach-leechers">0<`, `id="reach-completed">0<`, `id="reach-bytes" title="0 bytes">`} {
		if !strings.Contains(page, want) {
			t.Errorf("episode page after publishing lacks %s:\n%s", want, page)
		}
	}

	// Monitoring sees the fleet and the swarm.
	for series, want := range map[string]float64{`fanseed_seedbox_nodes{status="up"}`: 3, `fanseed_seedbox_nodes{status="down"}`: 0,
		"fanseed_torrents_under_replicated": 0, "fanseed_tracker_swarms": 1, "fanseed_tracker_peers": 2} {
		if v, ok := metricValue(t, base, series); !ok || v != want {
			t.Errorf("/metrics %s = %v (found %v), want %v", series, v, ok, want)
		}
	}
	// Every piece came from the origin once at least, to nodes that said so with the node token:
	// none of it counts as served to fans' clients.
	if v, _ := metricValue(t, base, `fanseed_web_seed_bytes_total{to="fleet"}`); v < float64(len(data)) {
		t.Errorf("the web seed counts %v bytes sent to the fleet, want at least the file's %d", v, len(data))
	}
	if v, ok := metricValue(t, base, `fanseed_web_seed_bytes_total{to="bittorrent"}`); ok && v != 0 {
		t.Errorf("the web seed counts %v bytes sent to fans' clients before any fan fetched", v)
	}

	t.Run("aria2c from the fleet", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out := t.TempDir()
		cmd, logs := aria2c(t, ctx, out, fleetOnlyFile)
		if err := cmd.Wait(); err != nil {
			dumpLogs()
			t.Fatalf("aria2c: %v\n%s", err, logs)
		}
		if sha256File(t, filepath.Join(out, "pilot.mp4")) != want {
			t.Fatal("the file aria2c fetched from the fleet differs from the upload")
		}
		if sc := scrape(t, base, ih); sc.Downloaded != 1 {
			t.Errorf("scrape counts %d downloads after aria2c's, want 1", sc.Downloaded)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, uploaded, perNode := fleetState(t, db, ihBytes)
			if uploaded >= int64(len(data)) {
				t.Logf("nodes report uploading %d bytes: %v", uploaded, perNode)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nodes report uploading %d bytes of a %d-byte episode: %v", uploaded, len(data), perNode)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The page counts what aria2c fetched as served to fans.
		bytesRE := regexp.MustCompile(`id="reach-bytes" title="(\d+) bytes"`)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			m := bytesRE.FindStringSubmatch(string(creator.get(episodePath)))
			if m != nil {
				if n, _ := strconv.ParseInt(m[1], 10, 64); n >= int64(len(data)) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the episode page says %v bytes served to fans after aria2c fetched %d", m, len(data))
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("a seeding node killed mid-download", func(t *testing.T) {
		time.Sleep(2500 * time.Millisecond) // the last heartbeats of the previous download
		_, _, before := fleetState(t, db, ihBytes)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out := t.TempDir()
		// Another fan, at another address: one address counts one download a day.
		cmd, logs := aria2c(t, ctx, out, fleetOnlyFile, "--max-download-limit=1M", "--interface=127.0.0.2")
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var victim string
		deadline := time.Now().Add(30 * time.Second)
		for victim == "" {
			_, _, now := fleetState(t, db, ihBytes)
			for name, up := range now {
				if up > before[name] && (victim == "" || up-before[name] > now[victim]-before[victim]) {
					victim = name
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no node reported uploading to aria2c within 30 s\n%s", logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		select {
		case err := <-exited:
			t.Fatalf("aria2c finished (%v) before a node could be killed: raise the file size", err)
		default:
		}
		killed := time.Now()
		nodes[victim].stop(syscall.SIGKILL)
		t.Logf("SIGKILLed %s mid-download", victim)
		if err := <-exited; err != nil {
			dumpLogs()
			t.Fatalf("aria2c after the kill: %v\n%s", err, logs)
		}
		if sha256File(t, filepath.Join(out, "pilot.mp4")) != want {
			t.Fatal("the file aria2c fetched while a node died differs from the upload")
		}
		t.Logf("download completed %s after the kill", time.Since(killed).Round(time.Millisecond))
		for {
			var status string
			db.QueryRow(context.Background(), `SELECT status FROM nodes WHERE name = $1`, victim).Scan(&status)
			n, _, perNode := fleetState(t, db, ihBytes)
			// The dead node keeps its assignment (it does not count while down, and is verified
			// again if the node returns).
			if _, kept := perNode[victim]; status == "down" && n == 2 && kept {
				t.Logf("back to 2 seeding replicas %s after the kill: %v", time.Since(killed).Round(time.Millisecond), perNode)
				// n3 fetched the episode over BitTorrent, but only fans' downloads count.
				if sc := scrape(t, base, ih); sc.Downloaded != 2 {
					t.Errorf("scrape counts %d downloads after 2 by aria2c, want 2", sc.Downloaded)
				}
				break
			}
			if time.Since(killed) > 60*time.Second {
				dumpLogs()
				t.Fatalf("60 s after the kill: %s is %s, %d nodes seed (%v)", victim, status, n, perNode)
			}
			time.Sleep(250 * time.Millisecond)
		}
		// The tracker forgets the dead node once it is marked down, rather than an hour later: the
		// swarm is the two live nodes.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
			sc := scrape(t, base, ih)
			if sc.Complete == 2 && sc.Incomplete == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("15 s after %s was marked down the tracker counts %+v, want the 2 live seeders", victim, sc)
			}
		}
		delete(nodes, victim)
	})
	if t.Failed() {
		return
	}

	t.Run("aria2c from the web seed alone", func(t *testing.T) {
		for _, n := range nodes {
			n.stop(syscall.SIGTERM)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out := t.TempDir()
		cmd, logs := aria2c(t, ctx, out, withWebSeed, "--interface=127.0.0.3") // a third fan
		if err := cmd.Wait(); err != nil {
			t.Fatalf("aria2c: %v\n%s", err, logs)
		}
		if sha256File(t, filepath.Join(out, "pilot.mp4")) != want {
			t.Fatal("the file aria2c fetched from the web seed differs from the upload")
		}
		// aria2c may finish from the web seed before it first announces, and then never sends
		// event=completed: the tracker counts it all the same.
		if sc := scrape(t, base, ih); sc.Downloaded != 3 {
			t.Errorf("scrape counts %d downloads after 3 by aria2c, want 3", sc.Downloaded)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("deleting unpublishes", func(t *testing.T) {
		// The stopped nodes come back, hash what they kept, and seed again without fetching.
		for name, n := range nodes {
			nodes[name] = startSeedbox(t, bin, base, name, n.dir)
		}
		deadline := time.Now().Add(30 * time.Second)
		for n, _, _ := fleetState(t, db, ihBytes); n < 2; n, _, _ = fleetState(t, db, ihBytes) {
			if time.Now().After(deadline) {
				dumpLogs()
				t.Fatalf("restarted nodes: %d seeding after 30 s", n)
			}
			time.Sleep(200 * time.Millisecond)
		}
		resp := creator.post(episodePath+"/delete", url.Values{})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("delete: status %d", resp.StatusCode)
		}
		q := url.Values{"info_hash": {string(ih[:])}, "peer_id": {"-AR0000-000000000000"}, "port": {"6881"},
			"uploaded": {"0"}, "downloaded": {"0"}, "left": {"1"}, "compact": {"1"}}
		r, err := http.Get(base + "/announce?" + strings.ReplaceAll(q.Encode(), "+", "%20"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !strings.Contains(string(b), "failure reason") {
			t.Fatalf("the tracker still serves the deleted episode: %q", b)
		}
		if resp, _ := http.Get(base + "/t/" + m[1] + ".torrent"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf(".torrent of a deleted episode: status %d", resp.StatusCode)
		}
		deadline = time.Now().Add(30 * time.Second)
		for {
			var left int
			db.QueryRow(context.Background(), `SELECT count(*) FROM assignments a JOIN torrents t ON t.id = a.torrent_id
				WHERE t.infohash = $1`, ihBytes).Scan(&left)
			kept := 0
			for _, n := range nodes {
				if _, err := os.Stat(filepath.Join(n.dir, "torrents", m[1])); err == nil {
					kept++
				}
			}
			if left == 0 && kept == 0 {
				break
			}
			if time.Now().After(deadline) {
				dumpLogs()
				t.Fatalf("30 s after deleting: %d assignments left, %d nodes keep the data", left, kept)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// TestDevRunsTwoSeedboxNodes starts `fanseed dev`, which must bring its two nodes up by itself,
// and starts it again on the same data: the nodes come back on the addresses they had, so the
// tracker sees the same two peers rather than two more, and with their secrets; and once more
// after a node lost its secret.
func TestDevRunsTwoSeedboxNodes(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	// Its RTMP ingest on a free port rather than dev's 1935, which another program may hold.
	env := map[string]string{"DATABASE_URL": dbURL, "DATA_DIR": t.TempDir(), "ADDR": freeAddr(t), "LIVE_RTMP_ADDR": freeAddr(t)}
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runDev := func() (addrs string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		logs := &testkit.LogBuffer{}
		errc := make(chan error, 1)
		started := time.Now()
		go func() {
			errc <- run(ctx, []string{"fanseed", "dev"}, func(k string) string { return env[k] }, io.Discard, logs)
		}()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var names string
			db.QueryRow(context.Background(), `SELECT coalesce(string_agg(name, ',' ORDER BY name), ''),
				coalesce(string_agg(public_addr, ',' ORDER BY name), '') FROM nodes
				WHERE status = 'up' AND last_heartbeat > registered_at AND last_heartbeat > $1`, started).Scan(&names, &addrs)
			if names == "dev-1,dev-2" {
				break
			}
			select {
			case err := <-errc:
				t.Fatalf("dev exited: %v\n%s", err, logs)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("heartbeating nodes after 30 s: %q, want dev-1,dev-2\n%s", names, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, i := range []string{"1", "2"} {
			if _, err := os.Stat(filepath.Join(env["DATA_DIR"], "nodes", i, "torrents")); err != nil {
				t.Errorf("node %s has no data directory: %v", i, err)
			}
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("dev did not stop cleanly: %v", err)
		}
		return addrs
	}
	first := runDev()
	if again := runDev(); again != first {
		t.Errorf("restarted dev's nodes listen on %s, before on %s", again, first)
	}
	// Each node came back with the secret it keeps in its directory; dev re-admits a node that
	// lost it rather than leave it refused.
	if err := os.Remove(filepath.Join(env["DATA_DIR"], "nodes", "1", "node_secret")); err != nil {
		t.Fatal(err)
	}
	runDev()
}

func TestSeedboxConfigErrorsNameTheVariable(t *testing.T) {
	ok := map[string]string{"CONTROL_URL": "http://127.0.0.1:8080", "NODE_TOKEN": testNodeToken, "NODE_NAME": "n1",
		"NODE_LISTEN_ADDR": "127.0.0.1:0"}
	tests := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"CONTROL_URL": ""}, "CONTROL_URL: is required"},
		{map[string]string{"CONTROL_URL": "ftp://x"}, "CONTROL_URL:"},
		{map[string]string{"NODE_TOKEN": ""}, "NODE_TOKEN: is required"},
		{map[string]string{"NODE_TOKEN": "short"}, "NODE_TOKEN: must be at least"},
		{map[string]string{"NODE_NAME": "has space"}, "NODE_NAME:"},
		{map[string]string{"NODE_LISTEN_ADDR": "nope"}, "NODE_LISTEN_ADDR:"},
		{map[string]string{"NODE_LISTEN_ADDR": "0.0.0.0:6881"}, "NODE_PUBLIC_ADDR: is required"},
		{map[string]string{"NODE_PUBLIC_ADDR": "example.com:0"}, "NODE_PUBLIC_ADDR:"},
		{map[string]string{"NODE_CAPACITY_BYTES": "-5"}, "NODE_CAPACITY_BYTES:"},
		{map[string]string{"NODE_UPLOAD_LIMIT": "-1"}, "NODE_UPLOAD_LIMIT:"},
		{map[string]string{"NODE_UPLOAD_LIMIT": "10MB"}, "NODE_UPLOAD_LIMIT:"},
		{map[string]string{"NODE_ZONE": "rack 1"}, "NODE_ZONE:"},
		{map[string]string{"NODE_ZONE": "-rack"}, "NODE_ZONE:"},
	}
	for _, tt := range tests {
		env := map[string]string{}
		for k, v := range ok {
			env[k] = v
		}
		for k, v := range tt.set {
			env[k] = v
		}
		err := run(context.Background(), []string{"fanseed", "seedbox"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want one containing %q", tt.set, err, tt.want)
		}
	}
	err := run(context.Background(), []string{"fanseed", "serve"}, func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://x/y", "NODE_TOKEN": "short", "NODE_DOWN_AFTER": "soon"}[k]
	}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "NODE_TOKEN:") || !strings.Contains(err.Error(), "NODE_DOWN_AFTER:") {
		t.Errorf("serve with a short NODE_TOKEN and a bad NODE_DOWN_AFTER: %v", err)
	}
	for _, tt := range []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"REPLICAS": "3", "REPLICAS_MAX": "2"}, "REPLICAS_MAX: \"2\" must be a whole number from REPLICAS (3) to 20"},
		{map[string]string{"REPLICAS_HOT": "-1"}, "REPLICAS_HOT:"},
		{map[string]string{"REPLICAS_COLD": "many"}, "REPLICAS_COLD:"},
		{map[string]string{"REPLICAS_HOT": "4", "REPLICAS_COLD": "4"}, "REPLICAS_COLD: 4 must be below REPLICAS_HOT (4)"},
		{map[string]string{"REBALANCE_BYTES_PER_MINUTE": "1GB"}, "REBALANCE_BYTES_PER_MINUTE:"},
	} {
		env := map[string]string{"DATABASE_URL": "postgres://x/y", "NODE_TOKEN": testNodeToken}
		for k, v := range tt.set {
			env[k] = v
		}
		err := run(context.Background(), []string{"fanseed", "serve"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("serve with %v: error %v, want one containing %q", tt.set, err, tt.want)
		}
	}
	if c, err := loadFleetConfig(func(k string) string { return map[string]string{"REPLICAS": "3", "REBALANCE_BYTES_PER_MINUTE": "0"}[k] }, false); err != nil ||
		c.ReplicasMax != 5 || c.ReplicasHot != 10 || c.ReplicasCold != 2 || c.RebalanceBytesPerMinute >= 0 {
		t.Errorf("fleet config with REPLICAS=3 and rebalancing off = %+v, %v; want REPLICAS_MAX 5, HOT 10, COLD 2, no rebalancing", c, err)
	}
	var help bytes.Buffer
	run(context.Background(), []string{"fanseed", "help"}, func(string) string { return "" }, &help, io.Discard)
	for _, want := range []string{"seedbox", "NODE_TOKEN", "CONTROL_URL", "NODE_CAPACITY_BYTES"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
