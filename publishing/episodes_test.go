package publishing

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/seeding"
	"github.com/fanseed/fanseed/seeding/seedingtest"
)

// processingEpisode adds an episode in processing with its torrent, assigned by the fleet as
// Publisher.Finish does.
func processingEpisode(t *testing.T, db *pgxpool.Pool, fleet *seeding.Fleet, slug string) (seeding.Record, []byte) {
	t.Helper()
	ctx := context.Background()
	data := bytes.Repeat([]byte(slug), 100_000/len(slug))
	h, err := seeding.NewHasher(seeding.PieceLength(int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	h.Write(data)
	hashes := h.Sum()
	tor, err := seeding.BuildTorrent(hashes, seeding.TorrentOptions{Name: slug + ".mp4", TrackerURL: "http://127.0.0.1:1/announce"})
	if err != nil {
		t.Fatal(err)
	}
	var rec seeding.Record
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var ep int64
		if err := tx.QueryRow(ctx, `
			WITH a AS (INSERT INTO accounts (email, name, password_hash, role) VALUES ($1 || '@example.com', 'C', 'x', 'creator') RETURNING id),
			s AS (INSERT INTO shows (owner_id, slug, title, currency) SELECT id, $1, 'Night', 'USD' FROM a RETURNING id)
			INSERT INTO episodes (show_id, title, status) SELECT id, 'Pilot', 'processing' FROM s RETURNING id`, slug).Scan(&ep); err != nil {
			return err
		}
		var err error
		rec, err = seeding.CreateTorrent(ctx, tx, seeding.Record{EpisodeID: ep, InfoHash: tor.InfoHash[:], Name: tor.Name, Length: hashes.Length,
			PieceLength: hashes.PieceLength, SHA256: hashes.SHA256[:], ContentType: "video/mp4", ContentPath: "/nowhere", Metainfo: tor.Bytes})
		if err != nil {
			return err
		}
		return fleet.Assign(ctx, tx, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec, data
}

func episodeStatus(t *testing.T, db *pgxpool.Pool, rec seeding.Record) (status, reason string, published bool) {
	t.Helper()
	err := db.QueryRow(context.Background(), `SELECT status, failure_reason, published_at IS NOT NULL FROM episodes WHERE id = $1`,
		rec.EpisodeID).Scan(&status, &reason, &published)
	if err != nil {
		t.Fatal(err)
	}
	return status, reason, published
}

// The fleet publishes a torrent once R nodes seed it and fails one not published in time; wired
// to Episodes, the catalog moves the episode with it in the same transaction.
func TestFleetMovesEpisodesThroughTheCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	fleet := &seeding.Fleet{DB: db, Replicas: 2, PublishTimeout: time.Minute, Episodes: Episodes{}}
	// Two real seedbox nodes (without a control plane: they seed what they are given) hold the
	// ready episode, so that the control plane's proofs pass; the heartbeats are this test's.
	var nodes []seeding.Enrolment
	var servers []*seeding.Node
	for _, name := range []string{"n1", "n2"} {
		server := seedingtest.Node(t, name)
		e, err := fleet.Register(ctx, seeding.NodeInfo{Name: name, ListenAddr: server.ListenAddr(), PublicAddr: server.Addr(), CapacityBytes: 1 << 30}, "")
		if err != nil {
			t.Fatal(err)
		}
		nodes, servers = append(nodes, e), append(servers, server)
	}
	ready, data := processingEpisode(t, db, fleet, "ready")
	stale, _ := processingEpisode(t, db, fleet, "stale")
	for _, server := range servers {
		seedingtest.Hold(t, server, ready, data)
	}
	seedingReady := seeding.Report{InfoHash: hex.EncodeToString(ready.InfoHash), State: seeding.StateSeeding}
	for _, n := range nodes {
		if _, err := fleet.Heartbeat(ctx, n.ID, n.Secret, seeding.Heartbeat{DiskUsed: 1, Torrents: []seeding.Report{seedingReady}}); err != nil {
			t.Fatal(err)
		}
	}
	if status, _, _ := episodeStatus(t, db, ready); status != "processing" {
		t.Errorf("episode of a torrent two nodes claim to seed, not proven yet: %s, want processing", status)
	}
	if res, err := (&seeding.Prover{Fleet: fleet}).ProveDue(ctx); err != nil || res.Passed != 2 || res.Published != 1 {
		t.Fatalf("ProveDue = %+v, %v; want both proofs passed and the torrent published", res, err)
	}
	if status, _, published := episodeStatus(t, db, ready); status != "published" || !published {
		t.Errorf("episode of a torrent two nodes seed: %s (published_at set: %v), want published", status, published)
	}
	if _, err := db.Exec(ctx, `UPDATE torrents SET created_at = now() - interval '2 minutes' WHERE id = $1`, stale.ID); err != nil {
		t.Fatal(err)
	}
	res, err := fleet.Reconcile(ctx)
	if err != nil || res.Failed != 1 {
		t.Fatalf("Reconcile = %+v, %v; want one failure", res, err)
	}
	if status, reason, _ := episodeStatus(t, db, stale); status != "failed" || !strings.Contains(reason, "Publishing did not finish within 1m0s") {
		t.Errorf("episode of a torrent not published in time: %s, %q; want failed with the reason", status, reason)
	}
	if status, _, _ := episodeStatus(t, db, ready); status != "published" {
		t.Errorf("the published episode is %s after reconciling, want published", status)
	}
}
