package catalog

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/argon2"
)

// Roles an account can have.
const (
	RoleCreator = "creator"
	RoleAdmin   = "admin"
	RolePartner = "partner"
)

// Account is a person who logs in: a creator, the distributor's admin or a partner.
type Account struct {
	ID        int64     `db:"id"`
	Email     string    `db:"email"`
	Name      string    `db:"name"`
	Role      string    `db:"role"`
	CreatedAt time.Time `db:"created_at"`
	// VerifiedAt is when the address was proved by a verification link (nil: not yet). An
	// unverified account logs in, but is linked to no money.
	VerifiedAt *time.Time `db:"email_verified_at"`
}

const accountColumns = `id, email, name, role, created_at, email_verified_at`

// Verified reports whether the account proved its email address.
func (a Account) Verified() bool { return a.VerifiedAt != nil }

// IsAdmin reports whether the account acts for the distributor.
func (a Account) IsAdmin() bool { return a.Role == RoleAdmin }

// CanManageShows reports whether the account may create shows (partners only read).
func (a Account) CanManageShows() bool { return a.Role == RoleCreator || a.Role == RoleAdmin }

// SignUp is what the sign-up form sends.
type SignUp struct {
	Email, Name, Password string
	Role                  string
	// Verified marks the address as proved: for accounts an operator makes, who vouches for it.
	Verified bool
}

// Validate checks every field and reports all problems at once.
func (s *SignUp) Validate() error {
	fe := FieldErrors{}
	s.Email = strings.TrimSpace(s.Email)
	s.Name = strings.TrimSpace(s.Name)
	if msg := checkEmail(s.Email); msg != "" {
		fe["email"] = msg
	}
	switch n := utf8.RuneCountInString(s.Name); {
	case n == 0:
		fe["name"] = "Name is required."
	case n > 100:
		fe["name"] = "Name must be at most 100 characters."
	}
	if msg := checkPassword(s.Password); msg != "" {
		fe["password"] = msg
	}
	if s.Role == "" {
		s.Role = RoleCreator
	}
	if s.Role != RoleCreator && s.Role != RoleAdmin && s.Role != RolePartner {
		fe["role"] = "Role must be creator, admin or partner."
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

func checkPassword(pw string) string {
	switch n := utf8.RuneCountInString(pw); {
	case n < 10:
		return "Password must be at least 10 characters."
	case n > 200:
		return "Password must be at most 200 characters."
	}
	return ""
}

func checkEmail(email string) string {
	if email == "" {
		return "Email is required."
	}
	if len(email) > 254 {
		return "Email must be at most 254 characters."
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || !strings.Contains(email[strings.IndexByte(email, '@')+1:], ".") {
		return "Email must look like name@example.com."
	}
	return ""
}

// CreateAccount stores a new account with a hashed password.
func CreateAccount(ctx context.Context, db DBTX, s SignUp) (Account, error) {
	if err := s.Validate(); err != nil {
		return Account{}, err
	}
	rows, err := db.Query(ctx, `
		INSERT INTO accounts (email, name, password_hash, role, email_verified_at)
		VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END)
		RETURNING `+accountColumns,
		s.Email, s.Name, hashPassword(s.Password), s.Role, s.Verified)
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Account])
	if err != nil {
		return Account{}, conflictField(err, "accounts_email_key", "email", "An account with this email already exists.")
	}
	return a, nil
}

// FindAccountByID loads one account.
func FindAccountByID(ctx context.Context, db DBTX, id int64) (Account, error) {
	rows, _ := db.Query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Account])
	return a, notFound(err, "account")
}

// Argon2id parameters as OWASP recommends (19 MiB, two passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

var dummyHash = hashPassword("not a real password, only for timing")

func hashPassword(pw string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

func passwordMatches(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
