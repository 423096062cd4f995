package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann, err := CreateAccount(ctx, db, SignUp{Email: "ann@example.com", Name: "Ann", Password: "a long enough password", Role: RolePartner})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := CreateAccount(ctx, db, SignUp{Email: "bob@example.com", Name: "Bob", Password: "a long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := CreateToken(ctx, db, ann.ID, "  "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("blank name: %v, want ErrInvalid", err)
	}
	tok, secret, err := CreateToken(ctx, db, ann.ID, " export ")
	if err != nil || tok.Name != "export" || tok.Scope != "read" || !strings.HasPrefix(secret, TokenPrefix) || len(secret) < len(TokenPrefix)+26 { // 130 random bits
		t.Fatalf("CreateToken = %+v %q %v", tok, secret, err)
	}
	_, second, _ := CreateToken(ctx, db, ann.ID, "export")
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
