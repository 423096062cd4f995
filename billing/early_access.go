package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EarlyEpisode is an episode a campaign funded: its backers of an early-access tier get it over
// a private torrent before its release date, when it becomes public.
type EarlyEpisode struct {
	CampaignID      int64     `db:"campaign_id"`
	EpisodeID       int64     `db:"episode_id"`
	ReleaseAt       time.Time `db:"release_at"`
	PrivateInfoHash []byte    `db:"private_infohash"`
}

// AddEarlyEpisode marks an episode of the campaign's show as the campaign's, released publicly
// at releaseAt. (The caller also sets the episode's release date in catalog.)
func AddEarlyEpisode(ctx context.Context, db DBTX, campaignID, episodeID int64, releaseAt time.Time) error {
	if releaseAt.IsZero() {
		return fmt.Errorf("%w: release date: required", ErrInvalid)
	}
	tag, err := db.Exec(ctx, `INSERT INTO campaign_episodes (campaign_id, episode_id, release_at)
		SELECT c.id, e.id, $3 FROM campaigns c JOIN episodes e ON e.show_id = c.show_id WHERE c.id = $1 AND e.id = $2
		ON CONFLICT (episode_id) DO UPDATE SET release_at = excluded.release_at WHERE campaign_episodes.campaign_id = excluded.campaign_id`,
		campaignID, episodeID, releaseAt)
	if err != nil {
		return fmt.Errorf("early episode %d: %w", episodeID, dbError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("episode: %d is not an episode of the campaign's show, or another campaign's: %w", episodeID, ErrNotFound)
	}
	return nil
}

// EarlyEpisodes lists a campaign's early-access episodes.
func EarlyEpisodes(ctx context.Context, db DBTX, campaignID int64) ([]EarlyEpisode, error) {
	rows, _ := db.Query(ctx, `SELECT campaign_id, episode_id, release_at, private_infohash FROM campaign_episodes
		WHERE campaign_id = $1 ORDER BY release_at, episode_id`, campaignID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[EarlyEpisode])
	if err != nil {
		return nil, fmt.Errorf("early episodes of campaign %d: %w", campaignID, dbError(err))
	}
	return list, nil
}

// SetPrivateInfoHash records the infohash of an early episode's private torrent, the same for
// every backer (its info dict is the public torrent's with private=1).
func SetPrivateInfoHash(ctx context.Context, db DBTX, episodeID int64, ih [20]byte) error {
	_, err := db.Exec(ctx, `UPDATE campaign_episodes SET private_infohash = $2 WHERE episode_id = $1
		AND private_infohash IS DISTINCT FROM $2`, episodeID, ih[:])
	return dbError(err)
}

// EarlyAccess is a backer entitled to an early episode.
type EarlyAccess struct {
	PledgeID    int64  `db:"pledge_id"`
	BackerName  string `db:"backer_name"`
	BackerEmail string `db:"backer_email"`
	Passkey     string `db:"passkey"`
	EpisodeID   int64  `db:"episode_id"`
}

// ErrNotEntitled is a passkey or pledge that gives no early access to an episode.
var ErrNotEntitled = fmt.Errorf("%w: this pledge gives no early access to this episode", ErrNotFound)

// earlyAccessWhere entitles a pledge to an episode: collected, of a tier with early access,
// of the campaign that funded it.
const earlyAccessWhere = `p.status = 'collected' AND t.early_access`

// EarlyAccessByPledge is what a backer's pledge (by its token) entitles them to for an episode.
func EarlyAccessByPledge(ctx context.Context, db DBTX, token string, episodeID int64) (EarlyAccess, error) {
	return earlyAccess(ctx, db, `p.token = $1 AND ce.episode_id = $2`, token, episodeID)
}

// EarlyAccessByPasskey is what a passkey (in a private torrent's tracker or web seed URL)
// entitles its holder to for the private torrent of infohash.
func EarlyAccessByPasskey(ctx context.Context, db DBTX, passkey string, infohash []byte) (EarlyAccess, error) {
	return earlyAccess(ctx, db, `p.passkey = $1 AND ce.private_infohash = $2`, passkey, infohash)
}

func earlyAccess(ctx context.Context, db DBTX, where string, args ...any) (EarlyAccess, error) {
	rows, _ := db.Query(ctx, `SELECT p.id AS pledge_id, p.backer_name, p.backer_email, p.passkey, ce.episode_id
		FROM pledges p JOIN campaign_tiers t ON t.id = p.tier_id JOIN campaign_episodes ce ON ce.campaign_id = p.campaign_id
		WHERE `+earlyAccessWhere+` AND `+where, args...)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[EarlyAccess])
	if err != nil {
		if err == pgx.ErrNoRows {
			return EarlyAccess{}, ErrNotEntitled
		}
		return EarlyAccess{}, dbError(err)
	}
	return a, nil
}

// EpisodeCredits lists the names backers chose for the credits of the campaign that funded an
// episode; none for an episode no campaign funded.
func EpisodeCredits(ctx context.Context, db DBTX, episodeID int64) ([]string, error) {
	var campaign int64
	err := db.QueryRow(ctx, `SELECT campaign_id FROM campaign_episodes WHERE episode_id = $1`, episodeID).Scan(&campaign)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, dbError(err)
	}
	return Credits(ctx, db, campaign)
}
