package publishing

import (
	"context"
	"testing"
	"time"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// A creator deletes an episode while the fleet reconciler publishes it: publishing locks the
// torrent, then updates the episode. Delete must wait for it, not take the episode first and
// deadlock (PostgreSQL would abort one of the two, and the creator would see an error).
func TestDeleteWhilePublishing(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	var ep, tor int64
	err := db.QueryRow(ctx, `
		WITH a AS (INSERT INTO accounts (email, name, password_hash, role) VALUES ('c@example.com', 'C', 'x', 'creator') RETURNING id),
		s AS (INSERT INTO shows (owner_id, slug, title, currency) SELECT id, 'night', 'Night', 'USD' FROM a RETURNING id)
		INSERT INTO episodes (show_id, title, status) SELECT id, 'Pilot', 'processing' FROM s RETURNING id`).Scan(&ep)
	if err != nil {
		t.Fatal(err)
	}
	err = db.QueryRow(ctx, `INSERT INTO torrents (episode_id, infohash, name, length, piece_length, sha256, content_type, content_path, metainfo)
		VALUES ($1, '\x0102030405060708090a0b0c0d0e0f1011121314', 'pilot.mp4', 1, 16384, $2, 'video/mp4', '/nowhere', 'd4:infod}e')
		RETURNING id`, ep, make([]byte, 32)).Scan(&tor)
	if err != nil {
		t.Fatal(err)
	}

	publishing, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer publishing.Rollback(ctx)
	if _, err := publishing.Exec(ctx, `SELECT 1 FROM torrents WHERE id = $1 FOR UPDATE`, tor); err != nil {
		t.Fatal(err)
	}
	p := &Publisher{DB: db}
	deleted := make(chan error, 1)
	go func() { deleted <- p.Delete(ctx, ep) }()
	// Wait until Delete waits on a lock, then publish the episode as the reconciler does.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Delete took no lock wait in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := publishing.Exec(ctx, `UPDATE torrents SET status = 'published' WHERE id = $1`, tor); err != nil {
		t.Fatal(err)
	}
	if _, err := publishing.Exec(ctx, `UPDATE episodes SET status = 'published' WHERE id = $1`, ep); err != nil {
		t.Fatalf("publishing the episode while it is being deleted: %v", err)
	}
	if err := publishing.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("Delete while publishing: %v", err)
	}
	var epStatus, torStatus string
	db.QueryRow(ctx, `SELECT e.status, t.status FROM episodes e JOIN torrents t ON t.episode_id = e.id WHERE e.id = $1`, ep).Scan(&epStatus, &torStatus)
	if epStatus != "deleted" || torStatus != "deleted" {
		t.Errorf("after both: episode %s, torrent %s; want both deleted", epStatus, torStatus)
	}
}
