package billing

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The email about money that goes out once per payment or payout: billing finds what is due
// and marks it done, in the caller's transaction, beside the outbox row the caller writes.

// DueReceipt is a paid donation whose donor gave an address and has no receipt yet.
type DueReceipt struct {
	DonationID int64     `db:"id"`
	ShowTitle  string    `db:"title"`
	ShowSlug   string    `db:"slug"`
	Amount     int64     `db:"amount"`
	Currency   string    `db:"currency"`
	Monthly    bool      `db:"monthly"`
	Email      string    `db:"donor_email"`
	PaidAt     time.Time `db:"paid_at"`
}

// Money is the donation's amount.
func (d DueReceipt) Money() Money { return Money{Amount: d.Amount, Currency: d.Currency} }

// DueReceipts locks up to limit donations due a receipt (others skip them).
func DueReceipts(ctx context.Context, tx pgx.Tx, limit int) ([]DueReceipt, error) {
	return findAll[DueReceipt](ctx, tx, "due receipts", `SELECT d.id, s.title, s.slug, d.amount, d.currency, d.monthly, d.donor_email, d.paid_at
		FROM donations d JOIN shows s ON s.id = d.show_id
		WHERE d.receipt_sent_at IS NULL AND d.donor_email IS NOT NULL AND d.status = 'paid' AND d.paid_at IS NOT NULL
		ORDER BY d.id LIMIT $1 FOR UPDATE OF d SKIP LOCKED`, limit)
}

// MarkReceiptSent records the receipt written; manageHash is the SHA-256 of the token of the
// link that manages a monthly donation (nil for a one-off).
func MarkReceiptSent(ctx context.Context, tx pgx.Tx, donationID int64, manageHash []byte) error {
	_, err := tx.Exec(ctx, `UPDATE donations SET receipt_sent_at = now(), manage_token_hash = coalesce($2, manage_token_hash)
		WHERE id = $1`, donationID, manageHash)
	if err != nil {
		return fmt.Errorf("receipt of donation %d: %w", donationID, dbError(err))
	}
	return nil
}

// DueSponsorship is a paid sponsorship whose show's owner has not been told yet.
type DueSponsorship struct {
	ID          int64     `db:"id"`
	ShowID      int64     `db:"show_id"`
	ShowTitle   string    `db:"title"`
	OwnerID     int64     `db:"owner_id"`
	SponsorName string    `db:"sponsor_name"`
	Amount      int64     `db:"amount"`
	Currency    string    `db:"currency"`
	PaidAt      time.Time `db:"paid_at"`
}

// Money is the sponsorship's amount.
func (d DueSponsorship) Money() Money { return Money{Amount: d.Amount, Currency: d.Currency} }

// DueSponsorships locks up to limit paid sponsorships due a notice.
func DueSponsorships(ctx context.Context, tx pgx.Tx, limit int) ([]DueSponsorship, error) {
	return findAll[DueSponsorship](ctx, tx, "due sponsorship notices", `SELECT sp.id, sp.show_id, s.title, s.owner_id, sp.sponsor_name, sp.amount, sp.currency, sp.paid_at
		FROM sponsorships sp JOIN shows s ON s.id = sp.show_id
		WHERE sp.notice_sent_at IS NULL AND sp.status = 'paid' AND sp.paid_at IS NOT NULL
		ORDER BY sp.id LIMIT $1 FOR UPDATE OF sp SKIP LOCKED`, limit)
}

// MarkSponsorshipNoticeSent records the notice written.
func MarkSponsorshipNoticeSent(ctx context.Context, tx pgx.Tx, id int64) error {
	if _, err := tx.Exec(ctx, `UPDATE sponsorships SET notice_sent_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("notice of sponsorship %d: %w", id, dbError(err))
	}
	return nil
}

// DuePayout is a payout Stripe made (transferred or paid) whose party has not been told.
type DuePayout struct {
	ID         int64   `db:"id"`
	PartyID    int64   `db:"party_id"`
	PartyName  string  `db:"name"`
	PartyEmail *string `db:"email"`
	AccountID  *int64  `db:"account_id"`
	Amount     int64   `db:"amount"`
	Currency   string  `db:"currency"`
	Period     string  `db:"period"`
}

// Money is the payout's amount.
func (d DuePayout) Money() Money { return Money{Amount: d.Amount, Currency: d.Currency} }

// DuePayouts locks up to limit payouts due a notice.
func DuePayouts(ctx context.Context, tx pgx.Tx, limit int) ([]DuePayout, error) {
	return findAll[DuePayout](ctx, tx, "due payout notices", `SELECT o.id, o.party_id, p.name, p.email, p.account_id, o.amount, o.currency, o.period
		FROM payouts o JOIN parties p ON p.id = o.party_id
		WHERE o.notice_sent_at IS NULL AND o.status IN ('transferred', 'paid')
		ORDER BY o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED`, limit)
}

// MarkPayoutNoticeSent records the notice written.
func MarkPayoutNoticeSent(ctx context.Context, tx pgx.Tx, id int64) error {
	if _, err := tx.Exec(ctx, `UPDATE payouts SET notice_sent_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("notice of payout %d: %w", id, dbError(err))
	}
	return nil
}

// ErrManageExpired is a donation management link that is wrong, or for a donation that is no
// longer a running monthly one.
var ErrManageExpired = errors.New("this link no longer manages a monthly donation")

// ManagedDonation is a monthly donation, as its management link shows it.
type ManagedDonation struct {
	Donation
	ShowTitle string `db:"title"`
	ShowSlug  string `db:"slug"`
}

// DonationByManageToken loads the monthly donation a management link is for: the receipt's,
// or one the donor asked for on the fan page that has not expired.
func DonationByManageToken(ctx context.Context, db DBTX, token string) (ManagedDonation, error) {
	sum := sha256.Sum256([]byte(token))
	rows, _ := db.Query(ctx, `SELECT `+prefixColumns("d.", donationColumns)+`, s.title, s.slug
		FROM donations d JOIN shows s ON s.id = d.show_id
		WHERE d.monthly AND (d.manage_token_hash = $1
			OR d.id = (SELECT donation_id FROM donation_manage_links WHERE token_hash = $1 AND expires_at > now()))`, sum[:])
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ManagedDonation])
	if errors.Is(err, pgx.ErrNoRows) {
		return ManagedDonation{}, ErrManageExpired
	}
	if err != nil {
		return ManagedDonation{}, fmt.Errorf("managed donation: %w", err)
	}
	return d, nil
}

// ManageDonation is where the donor goes to change or cancel a monthly donation: Stripe's
// customer portal for the subscription's customer. In offline test mode there is no portal
// ("" is returned): the management page itself cancels (CancelMonthlyOffline).
func (s *Service) ManageDonation(ctx context.Context, d Donation, returnURL string) (string, error) {
	if s.Stripe == nil {
		return "", nil
	}
	if d.SubscriptionID == nil {
		return "", fmt.Errorf("%w: donation %d has no subscription yet", ErrInvalid, d.ID)
	}
	return s.Stripe.PortalURL(ctx, *d.SubscriptionID, returnURL)
}

// CancelMonthlyOffline ends a monthly donation in offline test mode, as Stripe's
// customer.subscription.deleted does with a key.
func (s *Service) CancelMonthlyOffline(ctx context.Context, donationID int64) error {
	if s.Stripe != nil {
		return fmt.Errorf("%w: with Stripe, a monthly donation is cancelled in Stripe's portal", ErrInvalid)
	}
	_, err := s.DB.Exec(ctx, `UPDATE donations SET status = 'cancelled' WHERE id = $1 AND monthly AND status IN ('pending', 'paid')`, donationID)
	if err != nil {
		return fmt.Errorf("cancel donation %d: %w", donationID, dbError(err))
	}
	return nil
}

// ChangeMonthlyOffline is offline test mode's stand-in for changing a monthly donation's amount
// in Stripe's portal: a new monthly donation of amount, with the old one's donor details, that
// replaces the old one once its first payment completes (the old is cancelled then, so that a
// donor who leaves the checkout keeps the donation they had). Start its checkout as any other.
func (s *Service) ChangeMonthlyOffline(ctx context.Context, old Donation, amount int64) (Donation, error) {
	if s.Stripe != nil {
		return Donation{}, fmt.Errorf("%w: with Stripe, a monthly donation's amount is changed in Stripe's portal", ErrInvalid)
	}
	if !old.Monthly || (old.Status != "paid" && old.Status != "pending") {
		return Donation{}, fmt.Errorf("%w: only a monthly donation that is not cancelled can change its amount", ErrInvalid)
	}
	var episode int64
	if old.EpisodeID != nil {
		episode = *old.EpisodeID
	}
	var d Donation
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var err error
		d, err = CreateDonation(ctx, tx, DonationInput{ShowID: old.ShowID, EpisodeID: episode, Amount: amount, Currency: old.Currency,
			Monthly: true, DisplayName: old.DisplayName, Message: old.Message, Anonymous: old.Anonymous, Email: deref(old.DonorEmail)})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE donations SET replaces_donation_id = $2 WHERE id = $1`, d.ID, old.ID)
		return dbError(err)
	})
	return d, err
}

func prefixColumns(p, columns string) string {
	out := []byte{}
	start := true
	for i := 0; i < len(columns); i++ {
		c := columns[i]
		if start && c != ' ' && c != '\n' && c != '\t' {
			out = append(out, p...)
			start = false
		}
		out = append(out, c)
		if c == ',' {
			start = true
		}
	}
	return string(out)
}
