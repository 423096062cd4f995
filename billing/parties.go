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
// its stored name, kind and account: a second show naming the same person shares one balance,
// and naming an address never links anyone to its party (an invitation accepted by the
// address's owner does, see AcceptInvitation). accountID links a party created here: the
// caller's own verified account, when the address is theirs.
func EnsureParty(ctx context.Context, db DBTX, kind, name, email string, accountID *int64) (Party, error) {
	email = strings.TrimSpace(email)
	name = strings.TrimSpace(name)
	if kind != PartyCreator && kind != PartyCollaborator {
		return Party{}, fmt.Errorf("%w: party kind %q", ErrInvalid, kind)
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO parties (kind, name, email, account_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (lower(email)) WHERE kind <> 'distributor'
		DO UPDATE SET kind = parties.kind
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

// LinkOwnParty links an unlinked party to the account of the person acting, whose verified
// address is the party's: they are the one the address belongs to. A party linked to another
// account stays as it is.
func LinkOwnParty(ctx context.Context, db DBTX, partyID, accountID int64, verifiedEmail string) error {
	_, err := db.Exec(ctx, `UPDATE parties SET account_id = $2
		WHERE id = $1 AND account_id IS NULL AND kind <> 'distributor' AND lower(email) = lower($3)`, partyID, accountID, verifiedEmail)
	if err != nil {
		return fmt.Errorf("link party %d: %w", partyID, dbError(err))
	}
	return nil
}

// LinkOwnerParties links the account, once its address is verified, to the unlinked parties
// with that address on plans of the shows it owns: a creator who named themselves before
// verifying.
func LinkOwnerParties(ctx context.Context, db DBTX, accountID int64, verifiedEmail string) error {
	_, err := db.Exec(ctx, `UPDATE parties p SET account_id = $1
		WHERE p.account_id IS NULL AND p.kind <> 'distributor' AND lower(p.email) = lower($2) AND EXISTS (
			SELECT 1 FROM share_plan_lines l JOIN share_plans sp ON sp.id = l.plan_id JOIN shows s ON s.id = sp.show_id
			WHERE l.party_id = p.id AND s.owner_id = $1)`, accountID, verifiedEmail)
	if err != nil {
		return fmt.Errorf("link parties of account %d: %w", accountID, dbError(err))
	}
	return nil
}
