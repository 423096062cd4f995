package billing

import (
	"context"
	"fmt"
	"time"
)

// ManageLinkTTL is how long a management link a donor asks for on the fan page works.
const ManageLinkTTL = 7 * 24 * time.Hour

// ActiveMonthlyDonations lists the running monthly donations to a show from an address
// (compared without case), oldest first, for the links a donor asks for on the fan page.
func ActiveMonthlyDonations(ctx context.Context, db DBTX, showID int64, email string) ([]Donation, error) {
	return findAll[Donation](ctx, db, fmt.Sprintf("monthly donations of show %d", showID), `SELECT `+donationColumns+` FROM donations
		WHERE show_id = $1 AND monthly AND status = 'paid' AND lower(donor_email) = lower($2)
		ORDER BY created_at, id`, showID, email)
}

// AddManageLink records a link that manages a monthly donation until ManageLinkTTL from now,
// by the SHA-256 of its token; the receipt's own link keeps working beside it.
func AddManageLink(ctx context.Context, db DBTX, donationID int64, tokenHash []byte) error {
	_, err := db.Exec(ctx, `INSERT INTO donation_manage_links (token_hash, donation_id, expires_at)
		VALUES ($1, $2, now() + make_interval(secs => $3))`, tokenHash, donationID, ManageLinkTTL.Seconds())
	if err != nil {
		return fmt.Errorf("management link of donation %d: %w", donationID, dbError(err))
	}
	return nil
}
