package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/seeding"
)

// fakeNode is a process that enrols with the fleet token and heartbeats, reporting every torrent
// it is given as seeding, while holding nothing: its BitTorrent port answers the handshake for
// any torrent, says it has every piece and sends made-up bytes for every block asked for.
type fakeNode struct {
	id     int64
	secret string
	addr   string

	mu    sync.Mutex
	given map[string]bool // infohashes it was told to hold
}

func startFakeNode(t *testing.T, base, name string) *fakeNode {
	t.Helper()
	f := &fakeNode{addr: testkit.Serve(t, answerWithGarbage), given: map[string]bool{}}
	post := func(path string, in, out any) error {
		b, _ := json.Marshal(in)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+testNodeToken)
		req.Header.Set("Content-Type", "application/json")
		if f.secret != "" {
			req.Header.Set(seeding.NodeSecretHeader, f.secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, body)
		}
		return json.Unmarshal(body, out)
	}
	var e seeding.Enrolment
	if err := post("/api/nodes/", seeding.NodeInfo{Name: name, ListenAddr: f.addr, PublicAddr: f.addr, CapacityBytes: 1 << 50}, &e); err != nil {
		t.Fatal(err)
	}
	f.id, f.secret = e.ID, e.Secret
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		var reports []seeding.Report
		for {
			var o seeding.Orders
			if err := post(fmt.Sprintf("/api/nodes/%d/heartbeat", f.id), seeding.Heartbeat{Session: "fake", Torrents: reports}, &o); err == nil {
				reports = reports[:0]
				f.mu.Lock()
				for _, w := range o.Torrents {
					f.given[w.InfoHash] = true
					reports = append(reports, seeding.Report{InfoHash: w.InfoHash, State: seeding.StateSeeding})
				}
				f.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return f
}

func (f *fakeNode) holds(ih string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.given[ih]
}

// answerWithGarbage plays a seeder of whatever torrent the peer asks for.
func answerWithGarbage(c net.Conn) {
	defer c.Close()
	var hs [68]byte
	if _, err := io.ReadFull(c, hs[:]); err != nil {
		return
	}
	reply := append([]byte{19}, "BitTorrent protocol"...)
	reply = append(reply, 0, 0, 0, 0, 0, 0, 0, 0x04) // fast extension
	reply = append(reply, hs[28:48]...)
	reply = append(reply, "-FS0100-fakefakefake"...)
	reply = append(reply, 0, 0, 0, 1, 0x0e, 0, 0, 0, 1, 1) // have all, unchoke
	if _, err := c.Write(reply); err != nil {
		return
	}
	for {
		var l [4]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint32(l[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		if len(msg) != 13 || msg[0] != 6 { // request
			continue
		}
		n := binary.BigEndian.Uint32(msg[9:])
		out := binary.BigEndian.AppendUint32(nil, 9+n)
		out = append(out, 7) // piece
		out = append(out, msg[1:9]...)
		out = append(out, bytes.Repeat([]byte{0x5a}, int(n))...)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// TestFakeNodeNeverGetsAnEpisodePublished is the test: a fake node that claims to seed
// without data never gets an episode published and is marked suspect. With REPLICAS=1 and the
// fake node alone, an episode it reports seeding stays processing through several of the
// control plane's proofs; the fake node is suspect, and the admin's fleet page and /metrics
// say so and why. A real `fanseed seedbox` node started next to it gets the episode (the suspect
// node gets no new torrents) and its proof publishes it; a second episode goes to the real node
// alone and is published by its proof.
func TestFakeNodeNeverGetsAnEpisodePublished(t *testing.T) {
	t.Parallel()
	bin := buildFanseed(t)
	dbURL := dbtest.NewURL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "NODE_TOKEN": testNodeToken, "DATA_DIR": t.TempDir(), "LOG_FORMAT": "text",
		"REPLICAS": "1", "RECONCILE_EVERY": "500ms", "PROOF_INTERVAL": "1s", "PROOF_TIMEOUT": "5s"}
	base, _ := startServe(t, env)
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// The admin, for the fleet page.
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("a long enough password\n"), 0o600)
	if err := run(context.Background(), []string{"fanseed", "admin", "create-user", "-email", "ops@example.com", "-name", "Ops",
		"-role", "admin", "-password-file", pwFile}, func(k string) string { return env[k] }, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	admin := &fan{t: t, base: base, c: newClient()}
	admin.post("/login", url.Values{"email": {"ops@example.com"}, "password": {"a long enough password"}})

	fake := startFakeNode(t, base, "fake")
	creator, ep1 := uploadEpisode(t, base, "pilot.mp4", mediaFile(31, 3<<20))
	var ih1 []byte
	if err := db.QueryRow(context.Background(), `SELECT infohash FROM torrents ORDER BY id LIMIT 1`).Scan(&ih1); err != nil {
		t.Fatal(err)
	}
	status := func(path string) string {
		t.Helper()
		var st struct{ Status string }
		json.Unmarshal(creator.get(path+"/status"), &st)
		return st.Status
	}
	// The fake node is given the episode, claims it, fails its proof and is suspect.
	var reason string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var suspect bool
		db.QueryRow(context.Background(), `SELECT suspect_at IS NOT NULL, suspect_reason FROM nodes WHERE id = $1`, fake.id).Scan(&suspect, &reason)
		if suspect {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake node (given the episode: %v) is not suspect after 30 s", fake.holds(fmt.Sprintf("%x", ih1)))
		}
	}
	if !fake.holds(fmt.Sprintf("%x", ih1)) || !strings.Contains(reason, "wrong data") {
		t.Fatalf("the fake node is suspect for %q (given the episode: %v), want wrong data of it", reason, fake.holds(fmt.Sprintf("%x", ih1)))
	}
	// More proofs come (one about every PROOF_INTERVAL); the claims go on; nothing is published.
	var due0 time.Time
	db.QueryRow(context.Background(), `SELECT proof_due FROM assignments WHERE node_id = $1`, fake.id).Scan(&due0)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var due time.Time
		db.QueryRow(context.Background(), `SELECT proof_due FROM assignments WHERE node_id = $1`, fake.id).Scan(&due)
		if due.After(due0.Add(2 * time.Second)) {
			break // the proof due at due0 ran and failed, and at least one more
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake node's replica is not proven again within 30 s")
		}
	}
	if st := status(ep1); st != "processing" {
		t.Fatalf("with the fake node alone, the episode is %s, want processing", st)
	}
	// The page gives the last failure's reason: the pieces differ from one proof to the next.
	page := html.UnescapeString(string(admin.get("/admin/fleet")))
	if want := fmt.Sprintf("failed a proof: torrent %x: wrong data: piece ", ih1); !strings.Contains(page, ">suspect<") || !strings.Contains(page, want) {
		t.Fatalf("the fleet page does not show the fake node suspect with %q:\n%s", want, page)
	}
	if v, ok := metricValue(t, base, "fanseed_seedbox_nodes_suspect"); !ok || v != 1 {
		t.Errorf("/metrics fanseed_seedbox_nodes_suspect = %v (found %v), want 1", v, ok)
	}

	// A real node next to it: the episode goes to it, and its proof publishes it.
	real1 := startSeedbox(t, bin, base, "real-1", t.TempDir())
	waitPublished(t, creator, ep1, 60*time.Second)
	var realProven, fakeProven bool
	db.QueryRow(context.Background(), `SELECT
		EXISTS (SELECT 1 FROM assignments a JOIN nodes n ON n.id = a.node_id WHERE n.name = 'real-1' AND a.proven_at IS NOT NULL),
		EXISTS (SELECT 1 FROM assignments a WHERE a.node_id = $1 AND a.proven_at IS NOT NULL)`, fake.id).Scan(&realProven, &fakeProven)
	if !realProven || fakeProven {
		t.Fatalf("published with real-1 proven: %v, fake proven: %v; want real-1's proof alone\n%s", realProven, fakeProven, real1.logs)
	}

	// A second episode: the suspect node is given none of it.
	resp := creator.post(strings.Split(ep1, "/episodes/")[0]+"/episodes", url.Values{"title": {"Second"}})
	ep2 := resp.Request.URL.Path
	second := tusUpload(t, creator, base, ep2, "second.mp4", mediaFile(32, 1<<20))
	waitPublished(t, creator, ep2, 60*time.Second)
	var holders []string
	rows, _ := db.Query(context.Background(), `SELECT n.name FROM assignments a JOIN nodes n ON n.id = a.node_id
		JOIN torrents t ON t.id = a.torrent_id WHERE t.episode_id = $1 ORDER BY n.name`, second)
	for rows.Next() {
		var n string
		rows.Scan(&n)
		holders = append(holders, n)
	}
	rows.Close()
	if len(holders) != 1 || holders[0] != "real-1" {
		t.Errorf("the second episode is held by %v, want real-1 alone", holders)
	}
	if v, ok := metricValue(t, base, "fanseed_torrents_under_replicated"); !ok || v != 0 {
		t.Errorf("/metrics fanseed_torrents_under_replicated = %v (found %v), want 0", v, ok)
	}
}

// tusUpload uploads data with tus as the file of the creator's episode at episodePath, as any
// tus client would: created on base, then one PATCH per entry of patchBases (base alone when
// there are none), each sending its share of the bytes to that server. It returns the
// episode's id.
func tusUpload(t *testing.T, creator *fan, base, episodePath, filename string, data []byte, patchBases ...string) int64 {
	t.Helper()
	var id int64
	if _, err := fmt.Sscanf(episodePath[strings.LastIndex(episodePath, "/")+1:], "%d", &id); err != nil {
		t.Fatalf("episode path %s: %v", episodePath, err)
	}
	b64 := base64.StdEncoding.EncodeToString
	req, _ := http.NewRequest("POST", base+"/api/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
	req.Header.Set("Upload-Metadata", "episode_id "+b64([]byte(strconv.FormatInt(id, 10)))+",filename "+b64([]byte(filename)))
	resp, body := creator.do(req)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("tus creation: status %d\n%s", resp.StatusCode, body)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if len(patchBases) == 0 {
		patchBases = []string{base}
	}
	for i, pb := range patchBases {
		from, to := len(data)*i/len(patchBases), len(data)*(i+1)/len(patchBases)
		target, _ := url.Parse(pb)
		target.Path = loc.Path
		req, _ = http.NewRequest("PATCH", target.String(), bytes.NewReader(data[from:to]))
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", strconv.Itoa(from))
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		if resp, body := creator.do(req); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("tus PATCH %d to %s: status %d\n%s", i, pb, resp.StatusCode, body)
		}
	}
	return id
}
