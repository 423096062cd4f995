package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ShowsPage lists the shows an account manages (every show for an admin) in id order, after
// the id afterID, at most limit of them: keyset pagination for the JSON API, so a page costs
// the same however deep the cursor.
func ShowsPage(ctx context.Context, db DBTX, viewer Account, afterID int64, limit int) ([]Show, error) {
	rows, _ := db.Query(ctx, `SELECT `+showColumns+` FROM shows WHERE (owner_id = $1 OR $2) AND id > $3
		ORDER BY id LIMIT $4`, viewer.ID, viewer.IsAdmin(), afterID, limit)
	shows, err := pgx.CollectRows(rows, pgx.RowToStructByName[Show])
	if err != nil {
		return nil, fmt.Errorf("shows page: %w", err)
	}
	return shows, nil
}

// EpisodesPage lists a show's episodes (not deleted) in id order after afterID, at most limit.
func EpisodesPage(ctx context.Context, db DBTX, showID, afterID int64, limit int) ([]Episode, error) {
	rows, _ := db.Query(ctx, `SELECT `+episodeColumns+` FROM episodes WHERE show_id = $1 AND status <> 'deleted' AND id > $2
		ORDER BY id LIMIT $3`, showID, afterID, limit)
	eps, err := pgx.CollectRows(rows, pgx.RowToStructByName[Episode])
	if err != nil {
		return nil, fmt.Errorf("episodes page: %w", err)
	}
	return eps, nil
}
