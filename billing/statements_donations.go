package billing

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DonationsPage lists the donations made to the given shows (to every show when all is set),
// paid or refunded ones only, in id order after afterID, at most limit: keyset pagination for
// the JSON API, where a creator reads the donations to their own shows.
func DonationsPage(ctx context.Context, db DBTX, showIDs []int64, all bool, afterID int64, limit int) ([]Donation, error) {
	rows, _ := db.Query(ctx, `SELECT `+donationColumns+` FROM donations
		WHERE ($1 OR show_id = ANY($2)) AND status IN ('paid', 'refunded') AND id > $3
		ORDER BY id LIMIT $4`, all, showIDs, afterID, limit)
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByName[Donation])
	if err != nil {
		return nil, fmt.Errorf("donations page: %w", dbError(err))
	}
	return ds, nil
}
