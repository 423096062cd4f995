package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// expiredReason is what the creator reads on an episode whose upload expired.
const expiredReason = "The upload was not finished in time, so the part that arrived was deleted. Upload the file again."

// UnfinishedUploads lists the unfinished uploads created before cutoff, for expiring them.
func UnfinishedUploads(ctx context.Context, db DBTX, cutoff time.Time) ([]string, error) {
	rows, _ := db.Query(ctx, `SELECT id FROM uploads WHERE completed_at IS NULL AND created_at < $1`, cutoff)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("unfinished uploads: %w", err)
	}
	return ids, nil
}

// ExpireUpload deletes an unfinished upload's row, so that a client resuming it hears it is
// gone, and marks its episode failed, with a reason its creator reads, when no other upload of
// it is in progress. It reports whether it deleted the row: an upload finished or gone meanwhile
// is left alone, and so must its files be.
func ExpireUpload(ctx context.Context, db interface {
	DBTX
	Begin(context.Context) (pgx.Tx, error)
}, id string) (deleted bool, err error) {
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var episodeID int64
		err := tx.QueryRow(ctx, `DELETE FROM uploads WHERE id = $1 AND completed_at IS NULL RETURNING episode_id`, id).Scan(&episodeID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // finished or gone meanwhile: its files are not to be touched
		}
		if err != nil {
			return err
		}
		deleted = true
		_, err = tx.Exec(ctx, `UPDATE episodes SET status = 'failed', failure_reason = $2
			WHERE id = $1 AND status = 'uploading'
			  AND NOT EXISTS (SELECT 1 FROM uploads WHERE episode_id = $1 AND completed_at IS NULL)`, episodeID, expiredReason)
		return err
	})
	return deleted && err == nil, err
}

// UploadsWithoutRow returns the ids among ids that have no upload row: files of an upload whose
// creation failed half way.
func UploadsWithoutRow(ctx context.Context, db DBTX, ids []string) ([]string, error) {
	rows, _ := db.Query(ctx, `SELECT id FROM unnest($1::text[]) AS c(id) WHERE NOT EXISTS (SELECT 1 FROM uploads u WHERE u.id = c.id)`, ids)
	orphans, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("uploads without a row: %w", err)
	}
	return orphans, nil
}
