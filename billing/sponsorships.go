package billing

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sponsorship statuses.
const (
	SponsorshipOffered   = "offered"
	SponsorshipPaid      = "paid"
	SponsorshipCancelled = "cancelled"
	SponsorshipRefunded  = "refunded"
)

// Sponsorship is a deal a sponsor pays for through a payment link: a period of a show, or
// some of its episodes, for an amount. When paid it is split by the show's sponsorship plan,
// or its main plan when it has none.
type Sponsorship struct {
	ID                int64      `db:"id"`
	ShowID            int64      `db:"show_id"`
	SponsorName       string     `db:"sponsor_name"`
	ContactEmail      string     `db:"contact_email"`
	PeriodStart       *time.Time `db:"period_start"`
	PeriodEnd         *time.Time `db:"period_end"`
	Episodes          string     `db:"episodes"`
	Amount            int64      `db:"amount"`
	Currency          string     `db:"currency"`
	Status            string     `db:"status"`
	PayToken          string     `db:"pay_token"`
	CheckoutSessionID *string    `db:"checkout_session_id"`
	ChargeID          *string    `db:"charge_id"`
	CreatedBy         *int64     `db:"created_by"`
	CreatedAt         time.Time  `db:"created_at"`
	PaidAt            *time.Time `db:"paid_at"`
	Failure           string     `db:"failure"` // why the last payment failed; the deal stays offered
}

// Money returns the deal's amount.
func (s Sponsorship) Money() Money { return Money{Amount: s.Amount, Currency: s.Currency} }

const sponsorshipColumns = `id, show_id, sponsor_name, contact_email, period_start, period_end, episodes, amount, currency,
	status, pay_token, checkout_session_id, charge_id, created_by, created_at, paid_at, failure`

// SponsorshipInput is a validated deal to record.
type SponsorshipInput struct {
	SponsorName  string
	ContactEmail string
	PeriodStart  *time.Time
	PeriodEnd    *time.Time
	Episodes     string
	Amount       int64
	Currency     string
}

// CreateSponsorship records a deal offered to a sponsor, with the secret of its payment link.
func CreateSponsorship(ctx context.Context, db DBTX, showID int64, createdBy *int64, in SponsorshipInput) (Sponsorship, error) {
	if in.Amount <= 0 {
		return Sponsorship{}, fmt.Errorf("%w: sponsorship of %d", ErrInvalid, in.Amount)
	}
	cur, err := LookupCurrency(in.Currency)
	if err != nil {
		return Sponsorship{}, err
	}
	if err := CheckStripeStep(in.Amount, cur.Code); err != nil {
		return Sponsorship{}, err
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO sponsorships (show_id, sponsor_name, contact_email, period_start, period_end, episodes, amount,
			currency, pay_token, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+sponsorshipColumns,
		showID, strings.TrimSpace(in.SponsorName), strings.TrimSpace(in.ContactEmail), in.PeriodStart, in.PeriodEnd,
		strings.TrimSpace(in.Episodes), in.Amount, cur.Code, randomToken("sp_"), createdBy)
	sp, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Sponsorship])
	if err != nil {
		return Sponsorship{}, fmt.Errorf("create sponsorship: %w", dbError(err))
	}
	return sp, nil
}

// ListSponsorships lists a show's deals, newest first.
func ListSponsorships(ctx context.Context, db DBTX, showID int64) ([]Sponsorship, error) {
	return findAll[Sponsorship](ctx, db, fmt.Sprintf("sponsorships of show %d", showID), `SELECT `+sponsorshipColumns+` FROM sponsorships WHERE show_id = $1 ORDER BY created_at DESC, id DESC`, showID)
}

// FindSponsorshipByToken loads the deal a payment link is for.
func FindSponsorshipByToken(ctx context.Context, db DBTX, token string) (Sponsorship, error) {
	return findOne[Sponsorship](ctx, db, "sponsorship payment link", `SELECT `+sponsorshipColumns+` FROM sponsorships WHERE pay_token = $1`, token)
}

// CancelSponsorship withdraws an offered deal of a show; a paid deal is refunded through Stripe
// instead.
func CancelSponsorship(ctx context.Context, db DBTX, showID, id int64) error {
	tag, err := db.Exec(ctx, `UPDATE sponsorships SET status = 'cancelled' WHERE id = $1 AND show_id = $2 AND status = 'offered'`, id, showID)
	if err != nil {
		return fmt.Errorf("cancel sponsorship %d: %w", id, dbError(err))
	}
	if tag.RowsAffected() == 0 {
		var status string
		if err := db.QueryRow(ctx, `SELECT status FROM sponsorships WHERE id = $1 AND show_id = $2`, id, showID).Scan(&status); err != nil {
			return wrapNotFound(err, fmt.Sprintf("sponsorship %d of show %d", id, showID))
		}
		return fmt.Errorf("%w: sponsorship %d is %s, not an open offer", ErrConflict, id, status)
	}
	return nil
}

// StartSponsorship opens the checkout for an offered deal and returns where to send the
// sponsor.
func (s *Service) StartSponsorship(ctx context.Context, sp Sponsorship, page CheckoutPage) (string, error) {
	if sp.Status != SponsorshipOffered {
		return "", fmt.Errorf("%w: this sponsorship is %s", ErrConflict, sp.Status)
	}
	md := map[string]string{MetaKind: KindSponsorship, MetaShowID: strconv.FormatInt(sp.ShowID, 10),
		MetaSponsorshipID: strconv.FormatInt(sp.ID, 10)}
	sessionID, url, err := s.openCheckout(ctx, Checkout{
		Amount: sp.Amount, Currency: sp.Currency, Email: sp.ContactEmail,
		Reference: "sponsorship-" + strconv.FormatInt(sp.ID, 10), Metadata: md,
	}, page)
	if err != nil {
		return "", err
	}
	if _, err := s.DB.Exec(ctx, `UPDATE sponsorships SET checkout_session_id = $2 WHERE id = $1`, sp.ID, sessionID); err != nil {
		return "", fmt.Errorf("sponsorship %d: %w", sp.ID, dbError(err))
	}
	return url, nil
}
