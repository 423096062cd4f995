package catalog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SessionTTL is how long a login lasts.
const SessionTTL = 30 * 24 * time.Hour

// CreateSession starts a server-side session and returns the token for the cookie. Only the
// token's SHA-256 is stored, so a copy of the database cannot be used to log in.
func CreateSession(ctx context.Context, db DBTX, accountID int64) (string, error) {
	return StartSession(ctx, db, accountID, "")
}

// StartSession is CreateSession recording the browser (its User-Agent), for the account's
// list of sessions.
func StartSession(ctx context.Context, db DBTX, accountID int64, userAgent string) (string, error) {
	token := rand.Text()
	userAgent = strings.ToValidUTF8(strings.ReplaceAll(userAgent, "\x00", ""), "")
	if r := []rune(userAgent); len(r) > 300 {
		userAgent = string(r[:300])
	}
	_, err := db.Exec(ctx, `INSERT INTO sessions (token_hash, account_id, expires_at, user_agent) VALUES ($1, $2, $3, $4)`,
		tokenHash(token), accountID, time.Now().Add(SessionTTL), userAgent)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return token, nil
}

// AccountBySession returns the account a live session token belongs to.
func AccountBySession(ctx context.Context, db DBTX, token string) (Account, error) {
	rows, _ := db.Query(ctx, `
		SELECT a.id, a.email, a.name, a.role, a.created_at, a.email_verified_at
		FROM sessions s JOIN accounts a ON a.id = s.account_id
		WHERE s.token_hash = $1 AND s.expires_at > now()`, tokenHash(token))
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Account])
	return a, notFound(err, "session")
}

// DeleteSession ends a session (log out); expired sessions go with it.
func DeleteSession(ctx context.Context, db DBTX, token string) error {
	_, err := db.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1 OR expires_at < now()`, tokenHash(token))
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Session is one live login of an account, as its session list shows it.
type Session struct {
	ID        int64     `db:"id"`
	CreatedAt time.Time `db:"created_at"`
	ExpiresAt time.Time `db:"expires_at"`
	UserAgent string    `db:"user_agent"`
	Current   bool      `db:"current"` // the session of the browser asking
}

// ListSessions lists the account's live sessions, newest first, marking the one whose token
// is current.
func ListSessions(ctx context.Context, db DBTX, accountID int64, current string) ([]Session, error) {
	rows, _ := db.Query(ctx, `SELECT id, created_at, expires_at, user_agent, token_hash = $2 AS current
		FROM sessions WHERE account_id = $1 AND expires_at > now() ORDER BY created_at DESC, id DESC`, accountID, tokenHash(current))
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[Session])
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return list, nil
}

// EndSessions ends every session of the account (log out everywhere).
func EndSessions(ctx context.Context, db DBTX, accountID int64) error {
	if _, err := db.Exec(ctx, `DELETE FROM sessions WHERE account_id = $1`, accountID); err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	return nil
}

// EndSession ends one of the account's sessions by its id; another account's is not found.
func EndSession(ctx context.Context, db DBTX, accountID, id int64) error {
	tag, err := db.Exec(ctx, `DELETE FROM sessions WHERE account_id = $1 AND id = $2`, accountID, id)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("session %d: %w", id, ErrNotFound)
	}
	return nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
