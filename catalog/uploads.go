package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fanseed/fanseed/seeding"
)

// ErrForbidden is returned when an account may not touch something it can see exists.
var ErrForbidden = errors.New("forbidden")

// Episode statuses, in lifecycle order.
const (
	EpisodeDraft      = "draft"
	EpisodeUploading  = "uploading"
	EpisodeProcessing = "processing"
	EpisodePublished  = "published"
	EpisodeFailed     = "failed"
	EpisodeDeleted    = "deleted"
)

// FindEpisodeForAccount loads an episode of a show the account manages.
func FindEpisodeForAccount(ctx context.Context, db DBTX, id int64, viewer Account) (Episode, error) {
	rows, _ := db.Query(ctx, `
		SELECT e.id, e.show_id, e.title, e.description, e.status, e.failure_reason, e.created_at, e.published_at
		FROM episodes e JOIN shows s ON s.id = e.show_id
		WHERE e.id = $1 AND e.status <> 'deleted' AND (s.owner_id = $2 OR $3)`, id, viewer.ID, viewer.IsAdmin())
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Episode])
	return e, notFound(err, "episode")
}

// StartUpload records a new upload for an episode and marks the episode uploading.
func StartUpload(ctx context.Context, db DBTX, id string, episodeID, accountID int64, filename string, size int64) error {
	_, err := db.Exec(ctx, `
		WITH u AS (INSERT INTO uploads (id, episode_id, account_id, filename, size) VALUES ($1, $2, $3, $4, $5))
		UPDATE episodes SET status = 'uploading', failure_reason = '' WHERE id = $2`,
		id, episodeID, accountID, filename, size)
	if err != nil {
		return fmt.Errorf("start upload: %w", err)
	}
	return nil
}

// CheckUploadOwner returns nil when the account may write to the upload.
func CheckUploadOwner(ctx context.Context, db DBTX, id string, viewer Account) error {
	var owner int64
	err := db.QueryRow(ctx, `
		SELECT s.owner_id FROM uploads u JOIN episodes e ON e.id = u.episode_id JOIN shows s ON s.id = e.show_id
		WHERE u.id = $1 AND e.status <> 'deleted'`, id).Scan(&owner)
	if err != nil {
		return notFound(err, "upload")
	}
	if owner != viewer.ID && !viewer.IsAdmin() {
		return ErrForbidden
	}
	return nil
}

// FailUpload marks the upload's episode failed with a reason the creator reads.
func FailUpload(ctx context.Context, db DBTX, id, reason string) error {
	_, err := db.Exec(ctx, `UPDATE episodes SET status = 'failed', failure_reason = $2
		WHERE id = (SELECT episode_id FROM uploads WHERE id = $1)`, id, reason)
	return err
}

// CancelUpload returns the episode of a terminated upload to draft.
func CancelUpload(ctx context.Context, db DBTX, id string) error {
	_, err := db.Exec(ctx, `UPDATE episodes SET status = 'draft' WHERE status = 'uploading'
		AND id = (SELECT episode_id FROM uploads WHERE id = $1)`, id)
	return err
}

// Upload is a row of the uploads table.
type Upload struct {
	ID          string     `db:"id"`
	EpisodeID   int64      `db:"episode_id"`
	AccountID   int64      `db:"account_id"`
	Filename    string     `db:"filename"`
	Size        int64      `db:"size"`
	CreatedAt   time.Time  `db:"created_at"`
	CompletedAt *time.Time `db:"completed_at"`
}

// FindUpload loads one upload.
func FindUpload(ctx context.Context, db DBTX, id string) (Upload, error) {
	rows, _ := db.Query(ctx, `SELECT id, episode_id, account_id, filename, size, created_at, completed_at FROM uploads WHERE id = $1`, id)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Upload])
	return u, notFound(err, "upload")
}

// LatestUpload is the most recent upload of an episode, for resuming it from the portal.
func LatestUpload(ctx context.Context, db DBTX, episodeID int64) (Upload, error) {
	rows, _ := db.Query(ctx, `SELECT id, episode_id, account_id, filename, size, created_at, completed_at FROM uploads
		WHERE episode_id = $1 ORDER BY created_at DESC LIMIT 1`, episodeID)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Upload])
	return u, notFound(err, "upload")
}

// Publisher turns finished uploads into torrents and hands them to the fleet.
type Publisher struct {
	DB interface {
		DBTX
		Begin(ctx context.Context) (pgx.Tx, error)
	}
	Store    *UploadStore
	BaseURL  string                                                             // public URL of the control plane, without a trailing slash
	Assigned func(ctx context.Context, tx pgx.Tx, torrent seeding.Record) error // assigns replicas; may be nil
}

// TrackerURL is the announce URL of our tracker.
func (p *Publisher) TrackerURL() string { return p.BaseURL + "/announce" }

// WebSeedURL is the BEP 19 url-list entry for a torrent: the client appends the file name.
func (p *Publisher) WebSeedURL(infoHashHex string) string {
	return p.BaseURL + "/seed/" + infoHashHex + "/"
}

// Finish builds the torrent of a completed upload from the hashes made while it arrived, stores
// it and moves the episode to processing. Calling it again for the same upload does nothing.
func (p *Publisher) Finish(ctx context.Context, uploadID string) error {
	up, err := FindUpload(ctx, p.DB, uploadID)
	if err != nil {
		return err
	}
	if up.CompletedAt != nil {
		return nil
	}
	hashes, err := p.Store.Hashes(ctx, uploadID)
	if err != nil {
		return err
	}
	if hashes.Length != up.Size {
		return fmt.Errorf("upload %s: hashed %d bytes of %d", uploadID, hashes.Length, up.Size)
	}
	ctype, err := p.Store.ContentType(uploadID)
	if err != nil {
		FailUpload(ctx, p.DB, uploadID, "The file is not audio, video or an archive.")
		return err
	}
	var show Show
	if err := p.DB.QueryRow(ctx, `SELECT s.slug FROM shows s JOIN episodes e ON e.show_id = s.id WHERE e.id = $1`, up.EpisodeID).
		Scan(&show.Slug); err != nil {
		return notFound(err, "show")
	}
	opts := seeding.TorrentOptions{Name: up.Filename, TrackerURL: p.TrackerURL(), ShowURL: p.BaseURL + "/s/" + show.Slug, CreatedAt: time.Now()}
	t, err := seeding.BuildTorrent(hashes, opts)
	if err != nil {
		return err
	}
	// url-list names the infohash, which the info dictionary alone decides: build again with it.
	opts.WebSeedURL = p.WebSeedURL(fmt.Sprintf("%x", t.InfoHash))
	if t, err = seeding.BuildTorrent(hashes, opts); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, p.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE uploads SET completed_at = now() WHERE id = $1 AND completed_at IS NULL`, uploadID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		// A file that failed to publish before gives way to this one.
		if _, err := tx.Exec(ctx, `UPDATE torrents SET status = 'deleted' WHERE episode_id = $1 AND status = 'failed'`, up.EpisodeID); err != nil {
			return err
		}
		rec, err := seeding.CreateTorrent(ctx, tx, seeding.Record{
			EpisodeID: up.EpisodeID, InfoHash: t.InfoHash[:], Name: t.Name, Length: hashes.Length,
			PieceLength: hashes.PieceLength, SHA256: hashes.SHA256[:], ContentType: ctype,
			ContentPath: p.Store.Path(uploadID), Metainfo: t.Bytes,
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "torrents_infohash_key" {
			return fmt.Errorf("%w: this exact file, with this name, is already published as another episode", ErrInvalid)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE episodes SET status = 'processing', failure_reason = '' WHERE id = $1`, up.EpisodeID); err != nil {
			return err
		}
		if p.Assigned != nil {
			return p.Assigned(ctx, tx, rec)
		}
		return nil
	})
}

// Delete unpublishes an episode and its torrent in one transaction. It locks the torrents before
// the episode, the order publishing takes them in, so a delete while the episode is being
// published waits for it instead of deadlocking with it.
func (p *Publisher) Delete(ctx context.Context, episodeID int64) error {
	return pgx.BeginFunc(ctx, p.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM torrents WHERE episode_id = $1 ORDER BY id FOR NO KEY UPDATE`, episodeID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE episodes SET status = 'deleted' WHERE id = $1`, episodeID); err != nil {
			return err
		}
		t, err := seeding.TorrentForEpisode(ctx, tx, episodeID)
		if errors.Is(err, seeding.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return seeding.DeleteTorrent(ctx, tx, t.ID)
	})
}
