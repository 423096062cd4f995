package live

import (
	"context"
	"errors"
	"testing"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// A key works until it is rotated or revoked; rotating gives a new key and overlay secret, and
// only their SHA-256 is stored.
func TestKeysRotateAndRevoke(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	show := newShow(t, db, "keys")
	first, err := CreateKey(ctx, db, show)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := FindKey(ctx, db, first.StreamKey); err != nil || k.ShowID != show {
		t.Fatalf("FindKey of a new key: %+v, %v", k, err)
	}
	var plain int
	db.QueryRow(ctx, `SELECT count(*) FROM live_keys WHERE position(convert_to($1, 'UTF8') IN key_hash) > 0 OR position(convert_to($2, 'UTF8') IN overlay_hash) > 0`,
		first.StreamKey, first.OverlayToken).Scan(&plain)
	if plain != 0 {
		t.Error("a secret is stored as it is")
	}
	second, err := CreateKey(ctx, db, show) // rotation
	if err != nil {
		t.Fatal(err)
	}
	if second.StreamKey == first.StreamKey || second.OverlayToken == first.OverlayToken {
		t.Fatal("rotation gave the same secrets")
	}
	if _, err := FindKey(ctx, db, first.StreamKey); !errors.Is(err, ErrNotFound) {
		t.Errorf("the rotated-out key: %v, want ErrNotFound", err)
	}
	if _, err := FindOverlayKey(ctx, db, first.OverlayToken); !errors.Is(err, ErrNotFound) {
		t.Errorf("the rotated-out overlay: %v, want ErrNotFound", err)
	}
	if _, err := FindKey(ctx, db, second.StreamKey); err != nil {
		t.Errorf("the new key: %v", err)
	}
	if err := RevokeKey(ctx, db, show); err != nil {
		t.Fatal(err)
	}
	if _, err := FindKey(ctx, db, second.StreamKey); !errors.Is(err, ErrNotFound) {
		t.Errorf("a revoked key: %v, want ErrNotFound", err)
	}
	if _, err := ActiveKey(ctx, db, show); !errors.Is(err, ErrNotFound) {
		t.Errorf("ActiveKey after revoking: %v, want ErrNotFound", err)
	}
}

func TestModerate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		s            Settings
		donor, msg   string
		wantN, wantM string
	}{
		{"OK", Settings{MessageLimit: 200}, "Ana", "Great show", "Ana", "Great show"},
		{"Cut", Settings{MessageLimit: 5}, "Ana", "Great show", "Ana", "Great…"},
		{"Hidden", Settings{MessageLimit: 200, HideMessages: true}, "Ana", "Great show", "Ana", ""},
		{"Blocked", Settings{MessageLimit: 200, Blocklist: "rotten, Bad word\nidiot"}, "Idiot King", "ROTTEN and bad words", "***** King", "****** and ********s"},
		{"LimitZero", Settings{MessageLimit: 0}, "Ana", "Hi", "Ana", ""},
		{"Unicode", Settings{MessageLimit: 3, Blocklist: "ÉTÉ"}, "été", "日本語です", "***", "日本語…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, m := tc.s.Moderate(tc.donor, tc.msg)
			if n != tc.wantN || m != tc.wantM {
				t.Errorf("Moderate(%q, %q) = %q, %q; want %q, %q", tc.donor, tc.msg, n, m, tc.wantN, tc.wantM)
			}
		})
	}
}
