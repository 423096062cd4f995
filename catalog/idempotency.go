package catalog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// IdempotencyWindow is how long the answer to a create made with an Idempotency-Key is replayed
// to a retry with that key.
const IdempotencyWindow = 24 * time.Hour

// Beginner starts transactions: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Answer is a stored HTTP answer: its status and body.
type Answer struct {
	Status int
	Body   []byte
}

// ErrIdempotencyKeyReused is a key sent again with a different request.
var ErrIdempotencyKeyReused = fmt.Errorf("%w: %w", ErrConflict, FieldErrors{"Idempotency-Key": "This key was used for a different request; use a new key for each new request."})

// Idempotent runs create in a transaction at most once per account and key: the answer it
// returns is stored with the key in that transaction, and a later call with the same key and
// the same request (its SHA-256) gets that answer back (replayed true) without running create.
// A call with the key and another request is ErrIdempotencyKeyReused. Calls with one key wait
// for each other. An error from create stores nothing, so the request can be retried.
func Idempotent(ctx context.Context, db Beginner, accountID int64, key string, request []byte,
	create func(tx pgx.Tx) (Answer, error)) (ans Answer, replayed bool, err error) {
	if n := utf8.RuneCountInString(key); n < 1 || n > 255 {
		return Answer{}, false, fmt.Errorf("%w: %w", ErrInvalid, FieldErrors{"Idempotency-Key": "Idempotency-Key must be 1 to 255 characters."})
	}
	sum := sha256.Sum256(request)
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 7))`, fmt.Sprint(accountID), key); err != nil {
			return fmt.Errorf("idempotency lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM api_idempotency WHERE account_id = $1 AND created_at < now() - $2::interval`,
			accountID, IdempotencyWindow.String()); err != nil {
			return fmt.Errorf("idempotency expiry: %w", err)
		}
		var hash []byte
		err := tx.QueryRow(ctx, `SELECT request_hash, status, body FROM api_idempotency WHERE account_id = $1 AND key = $2`,
			accountID, key).Scan(&hash, &ans.Status, &ans.Body)
		switch {
		case err == nil && string(hash) != string(sum[:]):
			return ErrIdempotencyKeyReused
		case err == nil:
			replayed = true
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("idempotency key: %w", err)
		}
		if ans, err = create(tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO api_idempotency (account_id, key, request_hash, status, body) VALUES ($1, $2, $3, $4, $5)`,
			accountID, key, sum[:], ans.Status, ans.Body); err != nil {
			return fmt.Errorf("store idempotent answer: %w", err)
		}
		return nil
	})
	return ans, replayed, err
}
