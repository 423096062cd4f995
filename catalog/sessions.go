package catalog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SessionTTL is how long a login lasts.
const SessionTTL = 30 * 24 * time.Hour

// CreateSession starts a server-side session and returns the token for the cookie. Only the
// token's SHA-256 is stored, so a copy of the database cannot be used to log in.
func CreateSession(ctx context.Context, db DBTX, accountID int64) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	_, err := db.Exec(ctx, `INSERT INTO sessions (token_hash, account_id, expires_at) VALUES ($1, $2, $3)`,
		tokenHash(token), accountID, time.Now().Add(SessionTTL))
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return token, nil
}

// AccountBySession returns the account a live session token belongs to.
func AccountBySession(ctx context.Context, db DBTX, token string) (Account, error) {
	rows, _ := db.Query(ctx, `
		SELECT a.id, a.email, a.name, a.role, a.created_at
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

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
