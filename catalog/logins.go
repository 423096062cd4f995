package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Login throttling. Each failed login adds to a count per account (by email) and per client
// address; once a count passes its free failures, the next attempt with that key must wait, and
// the wait doubles with each further failure, up to LoginMaxDelay. Attempts made while waiting are
// refused without a password check and add nothing, so a stranger cannot grow the wait faster
// than the delays allow, and never locks the account for good. A browser the account has logged in
// from before (its device cookie) is counted on its own key instead, so the owner's right password
// works there whatever strangers did. Counts are forgotten a day after the last failure.
const (
	LoginFreeFailuresPerEmail  = 5
	LoginFreeFailuresPerAddr   = 20
	LoginFreeFailuresPerDevice = 5
	LoginFirstDelay            = 30 * time.Second
	LoginMaxDelay              = 15 * time.Minute
	loginForgetAfter           = 24 * time.Hour
)

// DeviceTTL is how long a browser stays known to an account after its last login there.
const DeviceTTL = 365 * 24 * time.Hour

// ThrottledError is ErrRateLimited with how long until the next attempt may be made.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v: next attempt allowed in %s", ErrRateLimited, e.Wait.Round(time.Second))
}

func (e *ThrottledError) Unwrap() error { return ErrRateLimited }

// LoginDelay is how long the next attempt waits after failures failures in a row, given the
// number of failures that cost nothing.
func LoginDelay(failures, free int) time.Duration {
	n := failures - free
	if n < 0 {
		return 0
	}
	if n >= 20 { // far above the cap, and no shift overflows
		return LoginMaxDelay
	}
	return min(LoginFirstDelay<<n, LoginMaxDelay)
}

// Login is one attempt to log in.
type Login struct {
	Email, Password string
	Addr            string // the client's address
	Device          string // the browser's device cookie, if any
}

// TxDBTX is a DBTX that can begin a transaction: a pool, a connection or a transaction.
type TxDBTX interface {
	DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Authenticate checks an email and password, throttled as described above: a *ThrottledError
// when the attempt must wait, ErrUnauthorized for a wrong email or password.
func Authenticate(ctx context.Context, db TxDBTX, in Login) (Account, error) {
	email := strings.TrimSpace(in.Email)
	var a Account
	var hash string
	err := db.QueryRow(ctx, `SELECT id, email, name, role, created_at, email_verified_at, password_hash FROM accounts WHERE lower(email) = lower($1)`, email).
		Scan(&a.ID, &a.Email, &a.Name, &a.Role, &a.CreatedAt, &a.VerifiedAt, &hash)
	known := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Account{}, fmt.Errorf("find account: %w", err)
	}
	emailKey := strings.ToLower(email)
	if len(emailKey) > 254 { // longer than any address an account can have
		emailKey = emailKey[:254]
	}
	keys := map[string]int{"email:" + emailKey: LoginFreeFailuresPerEmail, "ip:" + in.Addr: LoginFreeFailuresPerAddr}
	if known && in.Device != "" {
		var device bool
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM login_devices WHERE token_hash = $1 AND account_id = $2
			AND last_login_at > now() - $3::interval)`, tokenHash(in.Device), a.ID, interval(DeviceTTL)).Scan(&device); err != nil {
			return Account{}, fmt.Errorf("find login device: %w", err)
		}
		if device {
			keys = map[string]int{"device:" + strconv.FormatInt(a.ID, 10) + ":" + hex.EncodeToString(tokenHash(in.Device)): LoginFreeFailuresPerDevice}
		}
	}
	started, err := takeLoginAttempt(ctx, db, keys)
	if err != nil {
		return Account{}, err
	}
	if !known {
		hash = dummyHash // spend the same time as a real check
	}
	if !passwordMatches(hash, in.Password) || !known {
		return Account{}, ErrUnauthorized // the attempt stays counted as a failure
	}
	// The right password: the attempt was no failure. The account's and the device's counts
	// start again; the address's only loses this attempt, so logging in to one's own account
	// does not reset the count of failures the address made on others.
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	if _, err := db.Exec(ctx, `
		WITH gone AS (DELETE FROM login_throttle WHERE key = ANY($1) AND key NOT LIKE 'ip:%'
			OR updated_at < now() - $3::interval)
		UPDATE login_throttle SET failures = greatest(failures - 1, 0), next_at = least(next_at, $2)
		WHERE key = ANY($1) AND key LIKE 'ip:%'`, names, started, interval(loginForgetAfter)); err != nil {
		return Account{}, fmt.Errorf("clear login failures: %w", err)
	}
	return a, nil
}

// takeLoginAttempt refuses the attempt when a key must still wait, and otherwise counts it as a
// failure in advance (so that attempts sent at once cannot all pass before the first fails),
// setting when the next may come. It returns the database's time of the attempt.
func takeLoginAttempt(ctx context.Context, db TxDBTX, keys map[string]int) (time.Time, error) {
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names) // lock rows in one order, so concurrent attempts cannot deadlock
	var now time.Time
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO login_throttle (key) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING`, names); err != nil {
			return err
		}
		type row struct {
			key                string
			failures           int
			next, updated, now time.Time
		}
		var rs []row
		var r row
		rows, _ := tx.Query(ctx, `SELECT key, failures, next_at, updated_at, now() FROM login_throttle
			WHERE key = ANY($1) ORDER BY key FOR UPDATE`, names)
		if _, err := pgx.ForEachRow(rows, []any{&r.key, &r.failures, &r.next, &r.updated, &r.now}, func() error {
			rs = append(rs, r)
			return nil
		}); err != nil {
			return err
		}
		var wait time.Duration
		for i := range rs {
			now = rs[i].now
			if rs[i].updated.Before(now.Add(-loginForgetAfter)) {
				rs[i].failures, rs[i].next = 0, now
			}
			wait = max(wait, rs[i].next.Sub(now))
		}
		if wait > 0 {
			return &ThrottledError{Wait: wait}
		}
		for _, r := range rs {
			failures := r.failures + 1
			if _, err := tx.Exec(ctx, `UPDATE login_throttle SET failures = $2, next_at = $3, updated_at = $4 WHERE key = $1`,
				r.key, failures, now.Add(LoginDelay(failures, keys[r.key])), now); err != nil {
				return err
			}
		}
		return nil
	})
	var te *ThrottledError
	if errors.As(err, &te) {
		return now, err
	}
	if err != nil {
		return now, fmt.Errorf("count login attempt: %w", err)
	}
	return now, nil
}

// RememberDevice records that the account logged in from this browser and returns the device
// token for its cookie: a new one each time, the rows of the browser's old token (current, if
// any) moving to it, so a token seen by anyone else stops working at the next login.
func RememberDevice(ctx context.Context, db DBTX, accountID int64, current string) (string, error) {
	token := rand.Text()
	if current != "" {
		if _, err := db.Exec(ctx, `UPDATE login_devices SET token_hash = $2 WHERE token_hash = $1`, tokenHash(current), tokenHash(token)); err != nil {
			return "", fmt.Errorf("move login device: %w", err)
		}
	}
	if _, err := db.Exec(ctx, `
		WITH old AS (DELETE FROM login_devices WHERE last_login_at < now() - $3::interval)
		INSERT INTO login_devices (token_hash, account_id) VALUES ($1, $2)
		ON CONFLICT (token_hash, account_id) DO UPDATE SET last_login_at = now()`, tokenHash(token), accountID, interval(DeviceTTL)); err != nil {
		return "", fmt.Errorf("remember login device: %w", err)
	}
	return token, nil
}

func interval(d time.Duration) string { return fmt.Sprintf("%d seconds", int64(d.Seconds())) }
