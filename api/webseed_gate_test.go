package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
)

// While the fleet seeds an episode with R proven nodes, the web seed answers a fan's BitTorrent
// client at the gate's rate (one address sharing it across connections) and the nodes, which
// send the node token, at full speed; with fewer nodes, fans' clients get full speed too. The
// bytes to the fleet are counted apart from those to fans.
func TestWebSeedBoundsClientsWhileTheFleetSeeds(t *testing.T) {
	t.Parallel()
	const rate = 64 << 10
	tally := &seeding.WebSeedTally{}
	var fleet *seeding.Fleet
	ts := newTestServerWith(t, func(c *api.Config) {
		fleet = &seeding.Fleet{DB: c.Published.DB, Replicas: 2}
		c.Fleet, c.NodeToken, c.WebSeedTally = fleet, "fleet-token-for-tests", tally
		c.WebSeedGate = &seeding.WebSeedGate{Fleet: fleet, Rate: rate}
	}, io.Discard)
	ctx := context.Background()
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "slow-lane", Title: "Slow Lane", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("episode bytes ", 16<<10)) // 224 KiB
	publish := func(title, name string, replicas int) string {
		t.Helper()
		_, rec := ts.publishedEpisode(t, show, title, name, data)
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.db.Exec(ctx, `UPDATE torrents SET content_path = $2 WHERE id = $1`, rec.ID, path); err != nil {
			t.Fatal(err)
		}
		for i := range replicas {
			var node int64
			err := ts.db.QueryRow(ctx, `INSERT INTO nodes (name, listen_addr, public_addr, capacity_bytes, proofs_passed)
				VALUES ($1, '127.0.0.1:6881', '127.0.0.1:6881', 1 << 30, 1) RETURNING id`, fmt.Sprintf("%s-%d", name, i)).Scan(&node)
			if err == nil {
				_, err = ts.db.Exec(ctx, `INSERT INTO assignments (torrent_id, node_id, state, proven_at) VALUES ($1, $2, 'seeding', now())`, rec.ID, node)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return ts.URL + "/seed/" + rec.InfoHashHex() + "/" + name
	}
	fetch := func(seed, token string) time.Duration {
		t.Helper()
		req, _ := http.NewRequest("GET", seed, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		start := time.Now()
		resp := ts.send(t, nil, req)
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != string(data) {
			t.Fatalf("web seed answered %d with %d bytes, want the %d bytes of the file", resp.StatusCode, len(body), len(data))
		}
		return time.Since(start)
	}
	// The burst (32 KiB) goes at once, the rest at the rate.
	bounded := time.Duration(float64(len(data)-32<<10) / rate * float64(time.Second))

	// One proven node of two: the fleet cannot serve it alone, so the web seed does, at full speed.
	if took := fetch(publish("Short", "short.mp3", 1), ""); took > bounded/2 {
		t.Errorf("with 1 of 2 replicas a client's fetch took %v, want full speed (well under %v)", took, bounded)
	}
	// Two of two: fans' clients are bounded, the nodes are not.
	seed := publish("Pilot", "pilot.mp3", 2)
	if took := fetch(seed, ""); took < bounded*9/10 {
		t.Errorf("with 2 of 2 replicas a client's fetch took %v, want at least %v at %d B/s", took, bounded*9/10, rate)
	}
	if took := fetch(seed, "fleet-token-for-tests"); took > bounded/2 {
		t.Errorf("a node's fetch took %v, want full speed", took)
	}
	if took := fetch(seed, "not-the-token"); took < bounded*9/10 {
		t.Errorf("a client with a wrong token took %v, want the bound", took)
	}

	// A handler counts its bytes once it has sent them all, which can be after the client read them.
	day := time.Now().UTC().Truncate(24 * time.Hour)
	var ids []int64
	if err := ts.db.QueryRow(ctx, `SELECT array_agg(id) FROM torrents`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	var got seeding.Playback
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := tally.Flush(ctx, ts.db, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got, err = seeding.PlaybackTotals(ctx, ts.db, ids, day, day.AddDate(0, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if got.ServedBitTorrent == 3*int64(len(data)) && got.ServedFleet == int64(len(data)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web seed bytes = %+v; want 3 files to fans' clients and 1 to the fleet", got)
		}
	}
	// What the nodes uploaded to fans, as their heartbeats leave it.
	if _, err := ts.db.Exec(ctx, `INSERT INTO torrent_served (torrent_id, node_id, bytes) SELECT torrent_id, node_id, 2 << 20 FROM assignments LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	dash := readBody(t, ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard", show.ID), nil))
	if !strings.Contains(dash, `id="webseed-to-fans">672.0 KiB<`) || !strings.Contains(dash, `id="fleet-served">2.0 MiB<`) ||
		!strings.Contains(dash, `id="webseed-share">24%<`) {
		i := strings.Index(dash, `id="clients"`)
		t.Errorf("dashboard does not show the web seed's bytes to fans beside the fleet's: %.600s", dash[max(i, 0):])
	}
}
