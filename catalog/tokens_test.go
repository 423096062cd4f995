package catalog

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann := signUp(t, db, "ann@example.com", "Ann", RolePartner)
	bob := signUp(t, db, "bob@example.com", "Bob", "")
	if _, _, err := CreateToken(ctx, db, ann.ID, TokenInput{Name: "  ", Scope: ScopeRead, Expiry: "none"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("blank name: %v, want ErrInvalid", err)
	}
	tok, secret, err := CreateToken(ctx, db, ann.ID, TokenInput{Name: " export ", Scope: ScopeRead, Expiry: "none"})
	if err != nil || tok.Name != "export" || tok.Scope != "read" || tok.ExpiresAt != nil || !strings.HasPrefix(secret, TokenPrefix) || len(secret) < len(TokenPrefix)+26 { // 130 random bits
		t.Fatalf("CreateToken = %+v %q %v", tok, secret, err)
	}
	_, second, _ := CreateToken(ctx, db, ann.ID, TokenInput{Name: "export", Scope: ScopeRead, Expiry: "none"})
	if second == secret {
		t.Fatal("two tokens with one secret")
	}
	a, got, err := AccountByToken(ctx, db, secret)
	if err != nil || a.ID != ann.ID || a.Role != RolePartner || got.ID != tok.ID {
		t.Fatalf("AccountByToken = %+v %+v %v", a, got, err)
	}
	for _, bad := range []string{"", "fst_", secret[:len(secret)-1], strings.TrimPrefix(secret, TokenPrefix)} {
		if _, _, err := AccountByToken(ctx, db, bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("AccountByToken(%q) = %v, want ErrUnauthorized", bad, err)
		}
	}
	if err := RevokeToken(ctx, db, bob.ID, tok.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another account revoking: %v, want ErrNotFound", err)
	}
	if err := RevokeToken(ctx, db, ann.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := RevokeToken(ctx, db, ann.ID, tok.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice: %v, want ErrNotFound", err)
	}
	if _, _, err := AccountByToken(ctx, db, secret); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoked token: %v, want ErrUnauthorized", err)
	}
	if _, _, err := AccountByToken(ctx, db, second); err != nil {
		t.Fatalf("the other token stopped working: %v", err)
	}
	list, err := ListTokens(ctx, db, ann.ID)
	if err != nil || len(list) != 2 || list[1].RevokedAt == nil || list[0].RevokedAt != nil || list[0].LastUsedAt == nil {
		t.Fatalf("ListTokens = %+v %v", list, err)
	}
}

// TestTokenScopesAndExpiry checks the scope and lifetime chosen for a token, and that an
// expired token is refused as expired.
func TestTokenScopesAndExpiry(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann := signUp(t, db, "ann@example.com", "Ann", RoleCreator)
	for _, bad := range []TokenInput{{Name: "x", Scope: "admin", Expiry: "30"}, {Name: "x", Scope: "write", Expiry: "7"}, {Name: "x", Scope: "", Expiry: ""}} {
		_, _, err := CreateToken(ctx, db, ann.ID, bad)
		var fe FieldErrors
		if !errors.As(err, &fe) || (bad.Scope != "write" && fe["scope"] == "") || (bad.Expiry != "30" && fe["expiry"] == "") {
			t.Errorf("CreateToken(%+v) = %v, want the bad fields named", bad, err)
		}
	}
	w, secret, err := CreateToken(ctx, db, ann.ID, TokenInput{Name: "deploy", Scope: ScopeWrite, Expiry: "90"})
	if err != nil || w.Scope != ScopeWrite || w.ExpiresAt == nil || w.ExpiresAt.Sub(w.CreatedAt) != 90*24*time.Hour {
		t.Fatalf("write token for 90 days = %+v %v", w, err)
	}
	if !w.Allows(ScopeRead) || !w.Allows(ScopeWrite) || (Token{Scope: ScopeRead}).Allows(ScopeWrite) {
		t.Error("write must cover read, and read not write")
	}
	if _, got, err := AccountByToken(ctx, db, secret); err != nil || got.Scope != ScopeWrite || got.ExpiresAt == nil {
		t.Fatalf("live write token: %+v %v", got, err)
	}
	if _, err := db.Exec(ctx, `UPDATE api_tokens SET created_at = now() - interval '91 days', expires_at = now() - interval '1 day' WHERE id = $1`, w.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = AccountByToken(ctx, db, secret)
	var expired *TokenExpiredError
	if !errors.As(err, &expired) || !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v, want TokenExpiredError", err)
	}
}

// TestIdempotent checks that calls with one key create once, however many run at once, that the
// same key with another request is refused, and that a failed create stores nothing.
func TestIdempotent(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann := signUp(t, db, "ann@example.com", "Ann", RoleCreator)
	create := func(tx pgx.Tx) (Answer, error) {
		s, err := CreateShow(ctx, tx, ann.ID, ShowInput{Slug: "once", Title: "Once", Currency: "USD"})
		return Answer{Status: 201, Body: []byte(strconv.FormatInt(s.ID, 10))}, err
	}
	var wg sync.WaitGroup
	answers := make([]Answer, 8)
	errs := make([]error, 8)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], _, errs[i] = Idempotent(ctx, db, ann.ID, "k1", []byte("same"), create)
		}()
	}
	wg.Wait()
	for i := range answers {
		if errs[i] != nil || string(answers[i].Body) != string(answers[0].Body) {
			t.Fatalf("call %d: %v %s, want the first answer %s", i, errs[i], answers[i].Body, answers[0].Body)
		}
	}
	var n int
	db.QueryRow(ctx, `SELECT count(*) FROM shows`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d shows from 8 calls with one key", n)
	}
	if _, _, err := Idempotent(ctx, db, ann.ID, "k1", []byte("other"), create); !errors.Is(err, ErrIdempotencyKeyReused) {
		t.Errorf("the key with another request: %v", err)
	}
	// A failed create (the slug is taken) stores nothing: the key stays free.
	if _, _, err := Idempotent(ctx, db, ann.ID, "k2", []byte("x"), create); !errors.Is(err, ErrConflict) {
		t.Fatalf("a create that fails: %v", err)
	}
	db.QueryRow(ctx, `SELECT count(*) FROM api_idempotency WHERE key = 'k2'`).Scan(&n)
	if n != 0 {
		t.Error("a failed create stored its key")
	}
}

// signUp makes an account as sign-up does, with role ("" for sign-up's own).
func signUp(t *testing.T, db DBTX, email, name, role string) Account {
	t.Helper()
	a, err := CreateAccount(context.Background(), db, SignUp{Email: email, Name: name, Password: "a long enough password", Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
