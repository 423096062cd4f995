package billing

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// InvitationTTL is how long an invitation link is good for.
const InvitationTTL = 14 * 24 * time.Hour

// ErrInvitationExpired is an invitation link that is wrong, used already or past its time.
var ErrInvitationExpired = errors.New("this invitation has expired or was already used")

// ErrInvitationElsewhere is an invitation opened by an account whose address is not the one
// invited.
var ErrInvitationElsewhere = errors.New("this invitation was sent to another address")

// Party invitation states, as a show's creator sees them.
const (
	PartyAccepted   = "accepted"    // linked to the account of the person behind it
	PartyInvited    = "invited"     // an invitation is out and still good
	PartyExpired    = "expired"     // the last invitation was not accepted in time
	PartyNotInvited = "not invited" // nobody was invited (yet)
)

// Invitation is an invitation to take a party's share, as its link's page shows it.
type Invitation struct {
	ID        int64     `db:"id"`
	PartyID   int64     `db:"party_id"`
	PartyName string    `db:"party_name"`
	Email     string    `db:"email"`
	ShowTitle *string   `db:"show_title"`
	Inviter   *string   `db:"inviter"`
	ExpiresAt time.Time `db:"expires_at"`
}

// CreateInvitation makes an invitation link token for the party, sent to its address. Earlier
// unaccepted invitations of the party stop working. A party already linked is not invited.
func CreateInvitation(ctx context.Context, db DBTX, partyID, showID, invitedBy int64) (string, Party, error) {
	p, err := FindParty(ctx, db, partyID)
	if err != nil {
		return "", Party{}, err
	}
	if p.Kind == PartyDistributor || p.Email == nil {
		return "", Party{}, fmt.Errorf("%w: the distributor is not invited", ErrInvalid)
	}
	if p.AccountID != nil {
		return "", Party{}, fmt.Errorf("%w: %s already accepted", ErrConflict, p.Name)
	}
	token := rand.Text()
	if _, err := db.Exec(ctx, `UPDATE party_invitations SET expires_at = least(expires_at, now())
		WHERE party_id = $1 AND accepted_at IS NULL AND expires_at > now()`, partyID); err != nil {
		return "", Party{}, fmt.Errorf("retire invitations: %w", dbError(err))
	}
	sum := sha256.Sum256([]byte(token))
	if _, err := db.Exec(ctx, `INSERT INTO party_invitations (party_id, email, show_id, invited_by, token_hash, expires_at)
		VALUES ($1, $2, $3, $4, $5, now() + $6::interval)`, partyID, *p.Email, showID, invitedBy, sum[:],
		fmt.Sprintf("%d seconds", int(InvitationTTL.Seconds()))); err != nil {
		return "", Party{}, fmt.Errorf("create invitation: %w", dbError(err))
	}
	return token, p, nil
}

// FindInvitation loads the live invitation a link token is for.
func FindInvitation(ctx context.Context, db DBTX, token string) (Invitation, error) {
	sum := sha256.Sum256([]byte(token))
	rows, _ := db.Query(ctx, `SELECT i.id, i.party_id, p.name AS party_name, i.email, s.title AS show_title,
			a.name AS inviter, i.expires_at
		FROM party_invitations i JOIN parties p ON p.id = i.party_id
		LEFT JOIN shows s ON s.id = i.show_id LEFT JOIN accounts a ON a.id = i.invited_by
		WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > now() AND p.account_id IS NULL`, sum[:])
	inv, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Invitation])
	if errors.Is(err, pgx.ErrNoRows) {
		return Invitation{}, ErrInvitationExpired
	}
	return inv, err
}

// AcceptInvitation links the party to the account, once: the account's address must be the
// invited one (any case) and verified, which the caller vouches for by passing it.
func AcceptInvitation(ctx context.Context, db DBTX, token string, accountID int64, verifiedEmail string) (Party, error) {
	var p Party
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		sum := sha256.Sum256([]byte(token))
		var id, partyID int64
		var email string
		err := tx.QueryRow(ctx, `SELECT i.id, i.party_id, i.email FROM party_invitations i JOIN parties p ON p.id = i.party_id
			WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > now() AND p.account_id IS NULL
			FOR UPDATE OF i, p`, sum[:]).Scan(&id, &partyID, &email)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrInvitationExpired
		}
		if err != nil {
			return fmt.Errorf("find invitation: %w", err)
		}
		if !strings.EqualFold(email, verifiedEmail) {
			return ErrInvitationElsewhere
		}
		if _, err := tx.Exec(ctx, `UPDATE party_invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1`, id, accountID); err != nil {
			return fmt.Errorf("accept invitation: %w", dbError(err))
		}
		rows, _ := tx.Query(ctx, `UPDATE parties SET account_id = $2 WHERE id = $1 AND account_id IS NULL RETURNING `+partyColumns, partyID, accountID)
		p, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Party])
		if err != nil {
			return fmt.Errorf("link party %d: %w", partyID, dbError(err))
		}
		return nil
	})
	return p, err
}

// PartyOnShow reports whether the party is on any plan of the show (so the show's creator may
// invite it again).
func PartyOnShow(ctx context.Context, db DBTX, partyID, showID int64) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM share_plan_lines l JOIN share_plans sp ON sp.id = l.plan_id
		WHERE l.party_id = $1 AND sp.show_id = $2)`, partyID, showID).Scan(&ok)
	return ok, err
}

// ShowParty is a party named on a plan of a show, with its invitation state.
type ShowParty struct {
	PartyID int64   `db:"party_id"`
	Name    string  `db:"name"`
	Email   *string `db:"email"`
	State   string  `db:"state"`
}

// ShowParties lists the parties (not the distributor) on any plan of the show, with where
// each one's invitation stands, by name.
func ShowParties(ctx context.Context, db DBTX, showID int64) ([]ShowParty, error) {
	return findAll[ShowParty](ctx, db, fmt.Sprintf("parties of show %d", showID), `SELECT p.id AS party_id, p.name, p.email, CASE
			WHEN p.account_id IS NOT NULL THEN 'accepted'
			WHEN i.expires_at > now() THEN 'invited'
			WHEN i.id IS NOT NULL THEN 'expired'
			ELSE 'not invited' END AS state
		FROM parties p LEFT JOIN LATERAL (
			SELECT id, expires_at FROM party_invitations WHERE party_id = p.id AND accepted_at IS NULL
			ORDER BY created_at DESC, id DESC LIMIT 1) i ON true
		WHERE p.kind <> 'distributor' AND p.id IN (
			SELECT l.party_id FROM share_plan_lines l JOIN share_plans sp ON sp.id = l.plan_id WHERE sp.show_id = $1)
		ORDER BY lower(p.name), p.id`, showID)
}
