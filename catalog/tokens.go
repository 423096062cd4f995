package catalog

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
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
	Scope      string     `db:"scope"` // ScopeRead or ScopeWrite
	CreatedAt  time.Time  `db:"created_at"`
	ExpiresAt  *time.Time `db:"expires_at"` // nil: never
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

const tokenColumns = `id, account_id, name, scope, created_at, expires_at, last_used_at, revoked_at`

// Token scopes: a read token reads; a write token also creates and changes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Allows says whether the token's scope covers scope: write covers read.
func (t Token) Allows(scope string) bool {
	return t.Scope == scope || t.Scope == ScopeWrite
}

// Expired says whether the token's expiry has passed at now.
func (t Token) Expired(now time.Time) bool { return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) }

// TokenExpiries are the lifetimes offered for a new token, in days; "none" never expires.
var TokenExpiries = []string{"30", "90", "365", "none"}

// TokenInput is what the token form sends, as typed: a name, the scope and the lifetime in
// days (one of TokenExpiries).
type TokenInput struct {
	Name, Scope, Expiry string
}

// CreateToken makes an API token for an account and returns it with its secret, which is not
// stored (only its SHA-256 is) and so can be shown only now.
func CreateToken(ctx context.Context, db DBTX, accountID int64, in TokenInput) (Token, string, error) {
	fe := FieldErrors{}
	name := strings.TrimSpace(in.Name)
	if n := utf8.RuneCountInString(name); n < 1 || n > 100 {
		fe["name"] = "Give the token a name of 1 to 100 characters."
	}
	if in.Scope != ScopeRead && in.Scope != ScopeWrite {
		fe["scope"] = "Scope must be read or write."
	}
	var days *int
	switch in.Expiry {
	case "none":
	case "30", "90", "365":
		d, _ := strconv.Atoi(in.Expiry)
		days = &d
	default:
		fe["expiry"] = "Expiry must be 30, 90 or 365 days, or none."
	}
	if len(fe) > 0 {
		return Token{}, "", fmt.Errorf("%w: %w", ErrInvalid, fe)
	}
	secret := TokenPrefix + rand.Text()
	rows, _ := db.Query(ctx, `INSERT INTO api_tokens (account_id, name, token_hash, scope, expires_at)
		VALUES ($1, $2, $3, $4, now() + make_interval(days => $5::int)) RETURNING `+tokenColumns,
		accountID, name, tokenHash(secret), in.Scope, days)
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
// recording its use. A wrong or revoked token is ErrUnauthorized; an expired one is
// ErrTokenExpired (an ErrUnauthorized too).
func AccountByToken(ctx context.Context, db DBTX, secret string) (Account, Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Account{}, Token{}, fmt.Errorf("api token: %w", ErrUnauthorized)
	}
	var a Account
	var t Token
	var now time.Time
	err := db.QueryRow(ctx, `
		SELECT a.id, a.email, a.name, a.role, a.created_at, a.email_verified_at, t.id, t.account_id, t.name, t.scope,
			t.created_at, t.expires_at, t.last_used_at, now()
		FROM api_tokens t JOIN accounts a ON a.id = t.account_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL`, tokenHash(secret)).
		Scan(&a.ID, &a.Email, &a.Name, &a.Role, &a.CreatedAt, &a.VerifiedAt, &t.ID, &t.AccountID, &t.Name, &t.Scope,
			&t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, Token{}, fmt.Errorf("api token: %w", ErrUnauthorized)
	}
	if err != nil {
		return Account{}, Token{}, fmt.Errorf("api token: %w", err)
	}
	if t.Expired(now) {
		return Account{}, t, &TokenExpiredError{At: *t.ExpiresAt}
	}
	if t.LastUsedAt == nil || time.Since(*t.LastUsedAt) > tokenTouchEvery {
		if _, err := db.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() WHERE id = $1`, t.ID); err != nil {
			return Account{}, Token{}, fmt.Errorf("api token use: %w", err)
		}
	}
	return a, t, nil
}

// TokenExpiredError is a token used after its expiry: a 401 that says so, with the time.
type TokenExpiredError struct{ At time.Time }

func (e *TokenExpiredError) Error() string {
	return "api token expired at " + e.At.UTC().Format(time.RFC3339)
}

// Is makes an expired token ErrUnauthorized.
func (e *TokenExpiredError) Is(target error) bool { return target == ErrUnauthorized }
