package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
		SELECT e.id, e.show_id, e.title, e.description, e.status, e.failure_reason, e.created_at, e.published_at, e.number, e.duration_seconds
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

// CompleteUpload marks an upload finished. It reports false when it was finished already, so
// that only one caller goes on to publish it.
func CompleteUpload(ctx context.Context, db DBTX, id string) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE uploads SET completed_at = now() WHERE id = $1 AND completed_at IS NULL`, id)
	if err != nil {
		return false, fmt.Errorf("complete upload %s: %w", id, err)
	}
	return tag.RowsAffected() > 0, nil
}

// EpisodeShowSlug is the slug of the show an episode belongs to, for the links in its torrent.
func EpisodeShowSlug(ctx context.Context, db DBTX, episodeID int64) (string, error) {
	var slug string
	err := db.QueryRow(ctx, `SELECT s.slug FROM shows s JOIN episodes e ON e.show_id = s.id WHERE e.id = $1`, episodeID).Scan(&slug)
	return slug, notFound(err, "show")
}

// ProcessEpisode moves an episode whose file is in to processing: its torrent waits for the fleet.
func ProcessEpisode(ctx context.Context, db DBTX, id int64) error {
	if _, err := db.Exec(ctx, `UPDATE episodes SET status = 'processing', failure_reason = '' WHERE id = $1`, id); err != nil {
		return fmt.Errorf("process episode %d: %w", id, err)
	}
	return nil
}

// PublishEpisodes makes public the episodes in processing among ids, once their torrents are.
func PublishEpisodes(ctx context.Context, db DBTX, ids []int64) error {
	_, err := db.Exec(ctx, `UPDATE episodes SET status = 'published', failure_reason = '', published_at = coalesce(published_at, now())
		WHERE id = ANY($1) AND status = 'processing'`, ids)
	if err != nil {
		return fmt.Errorf("publish episodes: %w", err)
	}
	return nil
}

// FailEpisode marks an episode in processing failed, with a reason its creator reads.
func FailEpisode(ctx context.Context, db DBTX, id int64, reason string) error {
	if _, err := db.Exec(ctx, `UPDATE episodes SET status = 'failed', failure_reason = $2 WHERE id = $1 AND status = 'processing'`, id, reason); err != nil {
		return fmt.Errorf("fail episode %d: %w", id, err)
	}
	return nil
}

// DeleteEpisode marks an episode deleted: it leaves the fan pages and the portal.
func DeleteEpisode(ctx context.Context, db DBTX, id int64) error {
	if _, err := db.Exec(ctx, `UPDATE episodes SET status = 'deleted' WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete episode %d: %w", id, err)
	}
	return nil
}
