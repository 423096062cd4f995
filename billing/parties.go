package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Party is a payee: a show's creator, the distributor (the platform) or a collaborator.
type Party struct {
	ID              int64   `db:"id"`
	Kind            string  `db:"kind"`
	Name            string  `db:"name"`
	Email           *string `db:"email"`
	AccountID       *int64  `db:"account_id"`
	StripeAccountID *string `db:"stripe_account_id"`
}

// Party kinds.
const (
	PartyCreator      = "creator"
	PartyDistributor  = "distributor"
	PartyCollaborator = "collaborator"
)

const partyColumns = `id, kind, name, email, account_id, stripe_account_id`

// DistributorParty returns the platform's own party, created by the first migration.
func DistributorParty(ctx context.Context, db DBTX) (Party, error) {
	rows, _ := db.Query(ctx, `SELECT `+partyColumns+` FROM parties WHERE kind = 'distributor'`)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Party])
	if err != nil {
		return Party{}, fmt.Errorf("distributor party: %w", err)
	}
	return p, nil
}

// EnsureParty finds the party with this email, or creates it. A party found by email keeps
// its stored name and kind: a second show naming the same person shares one balance.
func EnsureParty(ctx context.Context, db DBTX, kind, name, email string, accountID *int64) (Party, error) {
	email = strings.TrimSpace(email)
	name = strings.TrimSpace(name)
	if kind != PartyCreator && kind != PartyCollaborator {
		return Party{}, fmt.Errorf("%w: party kind %q", ErrInvalid, kind)
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO parties (kind, name, email, account_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (lower(email)) WHERE kind <> 'distributor'
		DO UPDATE SET account_id = coalesce(parties.account_id, EXCLUDED.account_id)
		RETURNING `+partyColumns, kind, name, email, accountID)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Party])
	if err != nil {
		return Party{}, fmt.Errorf("ensure party %s: %w", email, err)
	}
	return p, nil
}

// FindParty loads one party.
func FindParty(ctx context.Context, db DBTX, id int64) (Party, error) {
	rows, _ := db.Query(ctx, `SELECT `+partyColumns+` FROM parties WHERE id = $1`, id)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Party])
	if errors.Is(err, pgx.ErrNoRows) {
		return Party{}, fmt.Errorf("party %d: %w", id, ErrNotFound)
	}
	return p, err
}
