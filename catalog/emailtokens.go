package catalog

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrLinkExpired is a one-time link that is wrong, used already or past its time.
var ErrLinkExpired = errors.New("this link has expired or was already used")

// Purposes of the one-time links sent by email, and how long each is good for.
const (
	PurposeVerify = "verify"
	PurposeReset  = "reset"

	VerifyTTL = 7 * 24 * time.Hour
	ResetTTL  = time.Hour
)

// NewLinkToken makes a random token for a one-time link and its SHA-256, the only form stored.
func NewLinkToken() (token string, hash []byte) {
	token = rand.Text()
	return token, tokenHash(token)
}

// HashLinkToken is the stored form of a link token.
func HashLinkToken(token string) []byte { return tokenHash(token) }

// CreateAccountToken makes a one-time link token for the account's current address: a
// verification or a password reset. Earlier unused tokens of the same purpose stop working.
func CreateAccountToken(ctx context.Context, db DBTX, a Account, purpose string) (string, error) {
	ttl := VerifyTTL
	if purpose == PurposeReset {
		ttl = ResetTTL
	}
	token, hash := NewLinkToken()
	if _, err := db.Exec(ctx, `UPDATE account_tokens SET used_at = now()
		WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL`, a.ID, purpose); err != nil {
		return "", fmt.Errorf("retire %s tokens: %w", purpose, err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO account_tokens (token_hash, account_id, purpose, email, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, hash, a.ID, purpose, a.Email, time.Now().Add(ttl)); err != nil {
		return "", fmt.Errorf("create %s token: %w", purpose, err)
	}
	return token, nil
}

// CheckAccountToken returns the account a live token belongs to, without using it (for the
// page the link opens).
func CheckAccountToken(ctx context.Context, db DBTX, token, purpose string) (Account, error) {
	rows, _ := db.Query(ctx, `SELECT `+prefixed("a.", accountColumns)+` FROM account_tokens t JOIN accounts a ON a.id = t.account_id
		WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > now()
		  AND lower(t.email) = lower(a.email)`, tokenHash(token), purpose)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Account])
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, ErrLinkExpired
	}
	return a, err
}

// useAccountToken spends a token: it works once, before it expires, and only while the
// account still has the address it was sent to.
func useAccountToken(ctx context.Context, db DBTX, token, purpose string) (int64, error) {
	var id int64
	err := db.QueryRow(ctx, `UPDATE account_tokens t SET used_at = now() FROM accounts a
		WHERE a.id = t.account_id AND t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > now()
		  AND lower(t.email) = lower(a.email)
		RETURNING t.account_id`, tokenHash(token), purpose).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrLinkExpired
	}
	if err != nil {
		return 0, fmt.Errorf("use %s token: %w", purpose, err)
	}
	return id, nil
}

// VerifyEmail spends a verification token and marks the account's address proved.
func VerifyEmail(ctx context.Context, db DBTX, token string) (Account, error) {
	id, err := useAccountToken(ctx, db, token, PurposeVerify)
	if err != nil {
		return Account{}, err
	}
	rows, _ := db.Query(ctx, `UPDATE accounts SET email_verified_at = coalesce(email_verified_at, now())
		WHERE id = $1 RETURNING `+accountColumns, id)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Account])
	return a, notFound(err, "account")
}

// ResetPassword spends a reset token and sets a new password. Every session of the account
// ends.
func ResetPassword(ctx context.Context, db DBTX, token, password string) (Account, error) {
	if msg := checkPassword(password); msg != "" {
		return Account{}, FieldErrors{"password": msg}
	}
	id, err := useAccountToken(ctx, db, token, PurposeReset)
	if err != nil {
		return Account{}, err
	}
	return setPassword(ctx, db, id, password)
}

// ChangePassword sets a new password when the current one is right. Every session of the
// account ends; the caller starts a new one for the browser that asked.
func ChangePassword(ctx context.Context, db DBTX, accountID int64, current, password string) (Account, error) {
	fe := FieldErrors{}
	var hash string
	if err := db.QueryRow(ctx, `SELECT password_hash FROM accounts WHERE id = $1`, accountID).Scan(&hash); err != nil {
		return Account{}, notFound(err, "account")
	}
	if !passwordMatches(hash, current) {
		fe["current_password"] = "Current password is wrong."
	}
	if msg := checkPassword(password); msg != "" {
		fe["password"] = msg
	}
	if len(fe) > 0 {
		return Account{}, fe
	}
	return setPassword(ctx, db, accountID, password)
}

func setPassword(ctx context.Context, db DBTX, id int64, password string) (Account, error) {
	rows, _ := db.Query(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1 RETURNING `+accountColumns, id, hashPassword(password))
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Account])
	if err != nil {
		return Account{}, notFound(err, "account")
	}
	if _, err := db.Exec(ctx, `DELETE FROM sessions WHERE account_id = $1`, id); err != nil {
		return Account{}, fmt.Errorf("end sessions: %w", err)
	}
	if _, err := db.Exec(ctx, `UPDATE account_tokens SET used_at = now() WHERE account_id = $1 AND purpose = 'reset' AND used_at IS NULL`, id); err != nil {
		return Account{}, fmt.Errorf("retire reset tokens: %w", err)
	}
	return a, nil
}

// FindAccountByEmail loads the account with this address (any case).
func FindAccountByEmail(ctx context.Context, db DBTX, email string) (Account, error) {
	rows, _ := db.Query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE lower(email) = lower($1)`, strings.TrimSpace(email))
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Account])
	return a, notFound(err, "account")
}

// CheckEmail reports what is wrong with an address typed in a form, or "".
func CheckEmail(email string) string { return checkEmail(strings.TrimSpace(email)) }

func prefixed(p, columns string) string {
	parts := strings.Split(columns, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}
