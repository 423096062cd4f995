package seeding

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/fanseed/fanseed/internal/testkit"
)

// A node with an upload limit serves a fan no faster than the limit (plus its small burst), and
// joins swarms under the fleet's peer id prefix.
func TestNodeUploadLimit(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	data := randomBytes(3, 3<<20)
	node, tor, mi := nodeHolding(t, NodeConfig{Name: "limited", UploadLimit: limit}, data, "http://127.0.0.1:1/announce")
	if id := node.cl.PeerID(); !IsNodePeerID(id) {
		t.Errorf("node peer id %q lacks %q", id[:], NodePeerIDPrefix)
	}
	if err := node.Add(mi, nil, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !node.Seeding(tor.InfoHash); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not verify the episode in 30 s")
		}
	}

	leechDir := t.TempDir()
	leech, err := testClient(t, leechDir, false).AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	leech.AddPeers(peerInfos([]string{node.ListenAddr()}))
	leech.DownloadAll()
	waitComplete(t, leech, "leecher of a limited node")
	took := time.Since(start)
	got, err := os.ReadFile(filepath.Join(leechDir, tor.Name))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("leecher's file differs from the episode (err %v)", err)
	}
	// 3 MiB at 1 MiB/s with a 256 KiB burst takes at least 2.75 s; unlimited on loopback, a few
	// milliseconds.
	if floor := time.Duration(float64(len(data)-uploadBurst) / limit * float64(time.Second)); took < floor {
		t.Errorf("3 MiB took %s from a node limited to 1 MiB/s, want at least %s", took.Round(time.Millisecond), floor)
	}
	t.Logf("3 MiB from a node limited to 1 MiB/s took %s", took.Round(time.Millisecond))
}

// A node holding a published episode on disk, as after a restart, announces only once it has
// hashed the data: its first announce says it has nothing left, so the tracker counts a seeder
// at once rather than a leecher until the next interval.
func TestNodeFirstAnnounceIsASeeder(t *testing.T) {
	t.Parallel()
	tr := &Tracker{}
	lefts := make(chan string, 16)
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Write(tr.AnnounceBody(r.URL.RawQuery, net.ParseIP(host), false))
		if id := r.URL.Query().Get("peer_id"); len(id) == 20 && IsNodePeerID([20]byte([]byte(id))) {
			lefts <- r.URL.Query().Get("left")
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	node, tor, mi := nodeHolding(t, NodeConfig{Name: "kept"}, randomBytes(4, 6<<20), srv.URL+"/announce")
	tr.Allowed = func(ih [20]byte) bool { return ih == tor.InfoHash }
	if err := node.Add(mi, nil, true); err != nil {
		t.Fatal(err)
	}
	select {
	case left := <-lefts:
		if left != "0" {
			t.Fatalf("the node's first announce has left=%s, want 0", left)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not announce in 30 s")
	}
	if s := tr.Snapshot(); len(s) != 1 || s[0].Seeders != 1 || s[0].Leechers != 0 || s[0].Completed != 0 {
		t.Errorf("tracker after the node's first announce: %+v, want one seeder and no completion", s)
	}
}

// nodeHolding starts a node (cfg with a fresh data directory and a loopback port) holding data
// on disk, as after a restart, and returns it with the episode's torrent, not added yet.
func nodeHolding(t *testing.T, cfg NodeConfig, data []byte, trackerURL string) (*Node, Torrent, *metainfo.MetaInfo) {
	t.Helper()
	tor, err := BuildTorrent(hashAll(t, data, PieceLength(int64(len(data)))), TorrentOptions{Name: cfg.Name + ".mp4", TrackerURL: trackerURL})
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Load(bytes.NewReader(tor.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.ListenAddr, cfg.CapacityBytes = t.TempDir(), "127.0.0.1:0", 1<<30
	node, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	dst := node.ContentPath(tor.InfoHash, tor.Name)
	os.MkdirAll(filepath.Dir(dst), 0o750)
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return node, tor, mi
}

// A node restarted with a torrent's data on disk offers it in its heartbeat (OnDisk); given it
// back, it verifies the data and seeds it without fetching, rather than deleting it.
func TestRestartedNodeOffersWhatIsOnDisk(t *testing.T) {
	t.Parallel()
	data := randomBytes(5, 3<<20)
	node, tor, _ := nodeHolding(t, NodeConfig{Name: "back"}, data, "http://127.0.0.1:1/announce")
	hexHash := hex.EncodeToString(tor.InfoHash[:])
	if got := node.OnDisk(); len(got) != 1 || got[0] != hexHash {
		t.Fatalf("OnDisk = %v, want %s", got, hexHash)
	}
	node.Apply(Orders{Status: NodeUp, Torrents: []Want{{InfoHash: hexHash, Metainfo: tor.Bytes}}})
	deadline := time.Now().Add(30 * time.Second)
	for !node.Seeding(tor.InfoHash) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not seed the data it had on disk within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := node.OnDisk(); len(got) != 0 {
		t.Errorf("OnDisk = %v once held, want nothing", got)
	}
	if b, err := os.ReadFile(node.ContentPath(tor.InfoHash, tor.Name)); err != nil || !bytes.Equal(b, data) {
		t.Errorf("the data on disk changed: %v", err)
	}
}

// A node tells what it sent other nodes apart from what it sent fans: a node fetching the
// episode from it counts in UploadedToNodes, a fan's download does not.
func TestNodeCountsUploadsToNodes(t *testing.T) {
	t.Parallel()
	data := randomBytes(5, 2<<20+777)
	a, tor, mi := nodeHolding(t, NodeConfig{Name: "first"}, data, "http://127.0.0.1:1/announce")
	if err := a.Add(mi, nil, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !a.Seeding(tor.InfoHash); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not verify the episode in 30 s")
		}
	}
	report := func(n *Node) Report {
		t.Helper()
		reports, _ := n.Reports()
		if len(reports) != 1 {
			t.Fatalf("reports %+v, want one", reports)
		}
		return reports[0]
	}
	b, err := NewNode(NodeConfig{Name: "second", DataDir: t.TempDir(), ListenAddr: "127.0.0.1:0", CapacityBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Add(mi, []string{a.ListenAddr()}, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !b.Seeding(tor.InfoHash); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second node did not fetch the episode from the first in 30 s")
		}
	}
	r := report(a)
	if r.UploadedToNodes < int64(len(data)) || r.UploadedToNodes != r.Uploaded {
		t.Fatalf("after a node fetched it: uploaded %d, to nodes %d; want all of the %d bytes to nodes", r.Uploaded, r.UploadedToNodes, len(data))
	}
	b.Close() // its connection's bytes stay counted once it is closed
	toNodes := r.UploadedToNodes

	leech, err := testClient(t, t.TempDir(), false).AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	leech.AddPeers(peerInfos([]string{a.ListenAddr()}))
	leech.DownloadAll()
	waitComplete(t, leech, "fan of a node")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r = report(a)
		if r.Uploaded-r.UploadedToNodes >= int64(len(data)) && r.UploadedToNodes == toNodes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a fan's download: uploaded %d, to nodes %d (was %d); want %d more to fans and to nodes unchanged",
				r.Uploaded, r.UploadedToNodes, toNodes, len(data))
		}
	}
}

// A node fetching a torrent writes no line per piece at INFO: the client's per-piece hash lines
// ("piece N failed hash: 0 connections contributed", one for each piece checked before it
// arrived) are debug lines, and shown at LOG_LEVEL=debug.
func TestNodeLogsNoLinePerPiece(t *testing.T) {
	t.Parallel()
	data := randomBytes(6, 4<<20+99)
	a, tor, mi := nodeHolding(t, NodeConfig{Name: "source"}, data, "http://127.0.0.1:1/announce")
	if err := a.Add(mi, nil, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !a.Seeding(tor.InfoHash); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not verify the episode in 30 s")
		}
	}
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logs testkit.LogBuffer
		b, err := NewNode(NodeConfig{Name: "fetcher", DataDir: t.TempDir(), ListenAddr: "127.0.0.1:0", CapacityBytes: 1 << 30,
			Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(mi, []string{a.ListenAddr()}, false); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); !b.Seeding(tor.InfoHash); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the second node did not fetch the episode in 30 s")
			}
		}
		b.Close()
		pieceLines := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "failed hash") {
				if level == slog.LevelInfo || !strings.Contains(line, "level=DEBUG") {
					t.Errorf("at %s: %s", level, line)
				}
				pieceLines++
			}
		}
		t.Logf("at %s: %d per-piece hash lines of %d pieces", level, pieceLines, len(data)/int(PieceLength(int64(len(data))))+1)
		if level == slog.LevelDebug && pieceLines == 0 {
			t.Error("no per-piece hash line at debug level: the test no longer sees what it checks")
		}
	}
}

// A node told to verify again (it was marked down and is back) hashes its data anew: it reports
// fetching until done, seeds again when the data is intact, and finds a piece damaged meanwhile.
func TestNodeVerifiesAgainWhenTold(t *testing.T) {
	t.Parallel()
	data := randomBytes(6, 3<<20)
	node, tor, _ := nodeHolding(t, NodeConfig{Name: "returning"}, data, "http://127.0.0.1:1/announce")
	hexHash := hex.EncodeToString(tor.InfoHash[:])
	orders := Orders{Status: NodeUp, Torrents: []Want{{InfoHash: hexHash, Metainfo: tor.Bytes}}}
	waitSeeding := func(when string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !node.Seeding(tor.InfoHash); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the node does not seed within 30 s", when)
			}
		}
	}
	node.Apply(orders)
	waitSeeding("first verification")

	orders.Verify = true
	node.Apply(orders)
	waitSeeding("verifying intact data again")

	f, err := os.OpenFile(node.ContentPath(tor.InfoHash, tor.Name), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, 1000), 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	node.Apply(orders)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		reports, disk := node.Reports()
		if len(reports) == 1 && reports[0].State == StateFetching && disk < int64(len(data)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after damaging a piece and verifying again: reports %+v, %d of %d bytes complete; want fetching with the piece missing", reports, disk, len(data))
		}
	}
}
