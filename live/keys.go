package live

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/catalog"
)

// Key is a show's stream key as stored: its SHA-256 only, and that of its overlay's secret.
type Key struct {
	ID        int64      `db:"id"`
	ShowID    int64      `db:"show_id"`
	CreatedAt time.Time  `db:"created_at"`
	RevokedAt *time.Time `db:"revoked_at"`
}

// NewKey is a key just made: the only moment its secrets exist outside the encoder and OBS.
type NewKey struct {
	Key
	StreamKey    string // goes into OBS's "Stream Key"
	OverlayToken string // the secret of the overlay's address
}

// Beginner is a DBTX that starts transactions (a pool).
type Beginner interface {
	DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

const keyColumns = `id, show_id, created_at, revoked_at`

// CreateKey makes a new stream key for a show, revoking the one it had (rotation), in one
// transaction. The key and the overlay's secret are returned once and stored as SHA-256 only.
func CreateKey(ctx context.Context, db Beginner, showID int64) (NewKey, error) {
	streamKey, keyHash := catalog.NewLinkToken()
	overlay, overlayHash := catalog.NewLinkToken()
	k := NewKey{StreamKey: streamKey, OverlayToken: overlay}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := RevokeKey(ctx, tx, showID); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `INSERT INTO live_keys (show_id, key_hash, overlay_hash) VALUES ($1, $2, $3)
			RETURNING `+keyColumns, showID, keyHash, overlayHash)
		var err error
		k.Key, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Key])
		return err
	})
	if err != nil {
		return NewKey{}, fmt.Errorf("create a stream key for show %d: %w", showID, err)
	}
	return k, nil
}

// RevokeKey stops the show's stream key from working; a stream live with it goes on until it
// ends, and the next connection with it is refused.
func RevokeKey(ctx context.Context, db DBTX, showID int64) error {
	if _, err := db.Exec(ctx, `UPDATE live_keys SET revoked_at = now() WHERE show_id = $1 AND revoked_at IS NULL`, showID); err != nil {
		return fmt.Errorf("revoke the stream key of show %d: %w", showID, err)
	}
	return nil
}

// ActiveKey is the show's working key (its creation time, for the creator's page).
func ActiveKey(ctx context.Context, db DBTX, showID int64) (Key, error) {
	rows, _ := db.Query(ctx, `SELECT `+keyColumns+` FROM live_keys WHERE show_id = $1 AND revoked_at IS NULL`, showID)
	k, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Key])
	return k, notFound(err, "stream key")
}

// FindKey is the working key a stream key names; a wrong or revoked one is ErrNotFound.
func FindKey(ctx context.Context, db DBTX, streamKey string) (Key, error) {
	rows, _ := db.Query(ctx, `SELECT `+keyColumns+` FROM live_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
		catalog.HashLinkToken(streamKey))
	k, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Key])
	return k, notFound(err, "stream key")
}

// FindOverlayKey is the working key whose overlay secret is token.
func FindOverlayKey(ctx context.Context, db DBTX, token string) (Key, error) {
	rows, _ := db.Query(ctx, `SELECT `+keyColumns+` FROM live_keys WHERE overlay_hash = $1 AND revoked_at IS NULL`,
		catalog.HashLinkToken(token))
	k, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Key])
	return k, notFound(err, "overlay")
}
