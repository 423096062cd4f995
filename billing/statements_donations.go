package billing

import (
	"context"
)

// DonationsPage lists the donations made to the given shows (to every show when all is set),
// paid or refunded ones only, in id order after afterID, at most limit: keyset pagination for
// the JSON API, where a creator reads the donations to their own shows.
func DonationsPage(ctx context.Context, db DBTX, showIDs []int64, all bool, afterID int64, limit int) ([]Donation, error) {
	return findAll[Donation](ctx, db, "donations page", `SELECT `+donationColumns+` FROM donations
		WHERE ($1 OR show_id = ANY($2)) AND status IN ('paid', 'refunded') AND id > $3
		ORDER BY id LIMIT $4`, all, showIDs, afterID, limit)
}
