package catalog

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// TokenPrefix starts every API token, so that a leaked one is recognisable (secret scanners,
// logs) and a session cookie is never mistaken for one.
const TokenPrefix = "fst_"

// Token is an API token as its owner sees it in the portal: never the secret itself.
type Token struct {
	ID         int64      `db:"id"`
	AccountID  int64      `db:"account_id"`
	Name       string     `db:"name"`
	Scope      string     `db:"scope"`
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

const tokenColumns = `id, account_id, name, scope, created_at, last_used_at, revoked_at`

// CreateToken makes a read-only API token for an account and returns it with its secret, which
// is not stored (only its SHA-256 is) and so can be shown only now.
func CreateToken(ctx context.Context, db DBTX, accountID int64, name string) (Token, string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 1 || n > 100 {
		return Token{}, "", fmt.Errorf("%w: %w", ErrInvalid, FieldErrors{"name": "Give the token a name of 1 to 100 characters."})
	}
	secret := TokenPrefix + rand.Text()
	rows, _ := db.Query(ctx, `INSERT INTO api_tokens (account_id, name, token_hash) VALUES ($1, $2, $3)
		RETURNING `+tokenColumns, accountID, name, tokenHash(secret))
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Token])
	if err != nil {
		return Token{}, "", fmt.Errorf("create token: %w", err)
	}
	return t, secret, nil
}

// ListTokens returns an account's tokens, newest first, revoked ones included.
func ListTokens(ctx context.Context, db DBTX, accountID int64) ([]Token, error) {
	rows, _ := db.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE account_id = $1
		ORDER BY created_at DESC, id DESC`, accountID)
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByName[Token])
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken ends one of the account's tokens for good. Another account's token, or one
// revoked already, is ErrNotFound.
func RevokeToken(ctx context.Context, db DBTX, accountID, id int64) error {
	tag, err := db.Exec(ctx, `UPDATE api_tokens SET revoked_at = now()
		WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL`, id, accountID)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token %d: %w", id, ErrNotFound)
	}
	return nil
}

// tokenTouchEvery bounds how often a token's last use is written: once a minute is precise
// enough for the portal and keeps a busy client from writing a row per request.
const tokenTouchEvery = time.Minute

// AccountByToken returns the account a live (not revoked) API token belongs to, and the token,
// recording its use. A wrong or revoked token is ErrUnauthorized.
func AccountByToken(ctx context.Context, db DBTX, secret string) (Account, Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Account{}, Token{}, fmt.Errorf("api token: %w", ErrUnauthorized)
	}
	var a Account
	var t Token
	err := db.QueryRow(ctx, `
		SELECT a.id, a.email, a.name, a.role, a.created_at, a.email_verified_at, t.id, t.account_id, t.name, t.scope, t.created_at, t.last_used_at
		FROM api_tokens t JOIN accounts a ON a.id = t.account_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL`, tokenHash(secret)).
		Scan(&a.ID, &a.Email, &a.Name, &a.Role, &a.CreatedAt, &a.VerifiedAt, &t.ID, &t.AccountID, &t.Name, &t.Scope, &t.CreatedAt, &t.LastUsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, Token{}, fmt.Errorf("api token: %w", ErrUnauthorized)
	}
	if err != nil {
		return Account{}, Token{}, fmt.Errorf("api token: %w", err)
	}
	if t.LastUsedAt == nil || time.Since(*t.LastUsedAt) > tokenTouchEvery {
		if _, err := db.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() WHERE id = $1`, t.ID); err != nil {
			return Account{}, Token{}, fmt.Errorf("api token use: %w", err)
		}
	}
	return a, t, nil
}
