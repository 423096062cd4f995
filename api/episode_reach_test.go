package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
	"github.com/fanseed/fanseed/seeding/seedingtest"
)

// TestEpisodeReach checks what the creator's episode page and its status endpoint say of the
// fleet and the swarm: "Seeded by 1 of 2 nodes" while processing, then replicas and the fans'
// seeders, leechers and completions, with the nodes' own announces counted in none of them.
func TestEpisodeReach(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := t.Context()
	var fleet *seeding.Fleet
	var tracker *seeding.Tracker
	ts := newTestServerOn(t, db, func(c *api.Config) {
		fleet = &seeding.Fleet{DB: db, Replicas: 2, Published: c.Published, Episodes: publishing.Episodes{}, Log: slog.New(slog.DiscardHandler)}
		c.Fleet, c.Publisher.Assigned = fleet, fleet.Assign
		tracker = c.Tracker
	}, io.Discard)
	var nodes []int64
	secrets := map[int64]string{}
	// Real seedbox nodes (without a control plane: they seed what they are given) serve the file
	// at the registered addresses once it is uploaded, so that the control plane's proofs of
	// their replicas pass; the heartbeats are this test's, to set the counters.
	servers := []*seeding.Node{seedingtest.Node(t, "serving"), seedingtest.Node(t, "serving")}
	for i := range 2 {
		e, err := fleet.Register(ctx, seeding.NodeInfo{Name: fmt.Sprintf("n%d", i+1), ListenAddr: servers[i].ListenAddr(),
			PublicAddr: servers[i].Addr(), CapacityBytes: 1 << 30}, "")
		if err != nil {
			t.Fatal(err)
		}
		nodes, secrets[e.ID] = append(nodes, e.ID), e.Secret
	}
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	ep := ts.newEpisode(t, owner, "reach")
	data := mediaBytes(t, 100_000)
	path, resp := ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "pilot.mp4"})
	if path == "" {
		t.Fatalf("create: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	if resp := ts.tusPatch(t, &owner, path, 0, data); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	rec, err := seeding.TorrentForEpisode(ctx, db, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range servers {
		seedingtest.Hold(t, n, rec, data)
	}
	prover := &seeding.Prover{Fleet: fleet, Timeout: 30 * time.Second}
	seed := func(node int64, uploaded, toNodes int64) {
		t.Helper()
		hb := seeding.Heartbeat{Session: "s", Torrents: []seeding.Report{{InfoHash: rec.InfoHashHex(), State: seeding.StateSeeding,
			Uploaded: uploaded, UploadedToNodes: toNodes}}}
		if _, err := fleet.Heartbeat(ctx, node, secrets[node], hb); err != nil {
			t.Fatal(err)
		}
		if res, err := prover.ProveDue(ctx); err != nil || res.Failed > 0 {
			t.Fatalf("proofs after a heartbeat: %+v, %v", res, err)
		}
	}
	pagePath := fmt.Sprintf("/shows/%d/episodes/%d", ep.ShowID, ep.ID)
	page := func() string {
		t.Helper()
		resp := ts.do(t, &owner, "GET", pagePath, nil)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("episode page: status %d", resp.StatusCode)
		}
		return body
	}
	type status struct {
		Status   string `json:"status"`
		SeededBy string `json:"seeded_by"`
		Fleet    struct {
			Seeding     int   `json:"seeding_nodes"`
			Replicas    int   `json:"replicas"`
			FanSeeders  int   `json:"fan_seeders"`
			FanLeechers int   `json:"fan_leechers"`
			Completed   int64 `json:"fan_completions"`
			Bytes       int64 `json:"fan_bytes_served"`
		} `json:"fleet"`
	}
	statusOf := func() status {
		t.Helper()
		resp := ts.do(t, &owner, "GET", pagePath+"/status", nil)
		var s status
		if err := json.Unmarshal([]byte(readBody(t, resp)), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	bad := seeding.Heartbeat{Session: "s", Torrents: []seeding.Report{{InfoHash: rec.InfoHashHex(), State: seeding.StateFetching, Uploaded: 10, UploadedToNodes: 11}}}
	if _, err := fleet.Heartbeat(ctx, nodes[0], secrets[nodes[0]], bad); err == nil || !strings.Contains(err.Error(), "uploaded_to_nodes") {
		t.Errorf("heartbeat with more sent to nodes than uploaded: %v, want an error naming uploaded_to_nodes", err)
	}
	seed(nodes[0], 0, 0)
	if body := page(); !strings.Contains(body, "Seeded by 1 of 2 nodes") || !strings.Contains(body, `id="fleet-progress"`) {
		t.Errorf("processing page lacks \"Seeded by 1 of 2 nodes\":\n%s", body)
	}
	if s := statusOf(); s.Status != catalog.EpisodeProcessing || s.SeededBy != "Seeded by 1 of 2 nodes" || s.Fleet.Seeding != 1 || s.Fleet.Replicas != 2 {
		t.Errorf("status while processing: %+v", s)
	}

	// The first node sent the second the whole file: the fleet copying it, not a fan.
	seed(nodes[0], int64(len(data)), int64(len(data)))
	seed(nodes[1], 0, 0)
	if s := statusOf(); s.Status != catalog.EpisodePublished || s.SeededBy != "Seeded by 2 of 2 nodes" {
		t.Fatalf("status after both nodes seed: %+v", s)
	}
	announce := func(peerID string, port int, left int, downloaded int, event string) {
		t.Helper()
		q := url.Values{"info_hash": {string(rec.InfoHash)}, "peer_id": {peerID}, "port": {fmt.Sprint(port)},
			"uploaded": {"0"}, "downloaded": {fmt.Sprint(downloaded)}, "left": {fmt.Sprint(left)}, "compact": {"1"}, "event": {event}}
		resp := ts.do(t, nil, "GET", "/announce?"+trackerQuery(q), nil)
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || strings.Contains(body, "failure reason") {
			t.Fatalf("announce %s: %d %s", peerID, resp.StatusCode, body)
		}
	}
	// The tracker's published set follows within its refresh time at the latest.
	for deadline := time.Now().Add(30 * time.Second); !ts.publishedSet(rec) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if ok, answer := ts.scrapes(rec); !ok {
		var st string
		db.QueryRow(ctx, `SELECT status FROM torrents WHERE id = $1`, rec.ID).Scan(&st)
		t.Fatalf("the tracker does not serve the torrent (%s in the database) 30 s after publishing: scrape answered %s", st, answer)
	}
	// Both nodes seed, one having fetched the file from the other; a third node fetches. None
	// of it is fans'.
	announce(seeding.NodePeerIDPrefix+"aaaaaaaaaaaa", 7001, 0, 0, "started")
	announce(seeding.NodePeerIDPrefix+"bbbbbbbbbbbb", 7002, 0, len(data), "completed")
	announce(seeding.NodePeerIDPrefix+"cccccccccccc", 7003, len(data), 0, "started")
	if err := seeding.RecordStats(ctx, db, time.Now(), tracker.Snapshot()); err != nil {
		t.Fatal(err)
	}
	body := page()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`id="reach-replicas">Seeded by 2 of 2 nodes<`), regexp.MustCompile(`id="reach-seeders">0<`),
		regexp.MustCompile(`id="reach-leechers">0<`), regexp.MustCompile(`id="reach-completed">0<`),
		regexp.MustCompile(`id="reach-bytes" title="0 bytes">`),
		regexp.MustCompile(`copying the file between its own nodes is not counted`),
	} {
		if !want.MatchString(body) {
			t.Errorf("published page before any fan: no %s", want)
		}
	}
	// Now fans: one finishes its download and seeds, another is downloading.
	announce("-qB4650-fanfanfanfan", 6881, len(data), 0, "started")
	announce("-qB4650-fanfanfanfan", 6881, 0, len(data), "completed")
	announce("-TR3000-leecherleech", 6882, len(data)/2, len(data)/2, "started")
	if err := seeding.RecordStats(ctx, db, time.Now(), tracker.Snapshot()); err != nil {
		t.Fatal(err)
	}
	// The second node served the fans the file and a half; the first sent nothing more.
	seed(nodes[0], int64(len(data)), int64(len(data)))
	seed(nodes[1], int64(len(data))*3/2, 0)
	body = page()
	for _, want := range []string{`id="reach-replicas">Seeded by 2 of 2 nodes<`, `id="reach-seeders">1<`, `id="reach-leechers">1<`, `id="reach-completed">1<`,
		fmt.Sprintf(`id="reach-bytes" title="%d bytes">`, len(data)*3/2)} {
		if !strings.Contains(body, want) {
			t.Errorf("published page with two fans: no %s", want)
		}
	}
	if s := statusOf(); s.Fleet.FanSeeders != 1 || s.Fleet.FanLeechers != 1 || s.Fleet.Completed != 1 || s.Fleet.Seeding != 2 || s.Fleet.Bytes != int64(len(data))*3/2 {
		t.Errorf("status with two fans: %+v", s)
	}
}

// publishedSet reports whether the tracker of ts serves rec, by scraping it.
func (ts *testServer) publishedSet(rec seeding.Record) bool {
	ok, _ := ts.scrapes(rec)
	return ok
}

// scrapes reports whether the tracker's scrape lists the torrent, and what it answered.
func (ts *testServer) scrapes(rec seeding.Record) (bool, string) {
	resp, err := http.Get(ts.URL + "/scrape?" + trackerQuery(url.Values{"info_hash": {string(rec.InfoHash)}}))
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), string(rec.InfoHash)), fmt.Sprintf("%d %q", resp.StatusCode, b)
}
