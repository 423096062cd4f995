package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DonationsPaidSince lists a show's paid donations made at or after since, oldest first: the
// donations of a live stream, for its overlay and goal bar.
func DonationsPaidSince(ctx context.Context, db DBTX, showID int64, since time.Time) ([]Donation, error) {
	rows, _ := db.Query(ctx, `SELECT `+donationColumns+` FROM donations
		WHERE show_id = $1 AND status = 'paid' AND created_at >= $2 ORDER BY paid_at, id LIMIT 10000`, showID, since)
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByName[Donation])
	if err != nil {
		return nil, fmt.Errorf("donations of show %d since %s: %w", showID, since, dbError(err))
	}
	return ds, nil
}

// LinkDonationsToEpisode links the show's donations made from from to to that name no episode
// to the episode (a stream's recording), and says how many it linked.
func LinkDonationsToEpisode(ctx context.Context, db DBTX, showID int64, from, to time.Time, episodeID int64) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE donations SET episode_id = $4
		WHERE show_id = $1 AND episode_id IS NULL AND created_at >= $2 AND created_at <= $3`, showID, from, to, episodeID)
	if err != nil {
		return 0, fmt.Errorf("link donations of show %d to episode %d: %w", showID, episodeID, dbError(err))
	}
	return tag.RowsAffected(), nil
}
