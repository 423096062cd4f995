package billing

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Donation is a fan's gift to a show, once or monthly, as started on the donate page.
type Donation struct {
	ID                int64      `db:"id"`
	ShowID            int64      `db:"show_id"`
	EpisodeID         *int64     `db:"episode_id"`
	Amount            int64      `db:"amount"`
	Currency          string     `db:"currency"`
	Monthly           bool       `db:"monthly"`
	DisplayName       string     `db:"display_name"`
	Message           string     `db:"message"`
	Anonymous         bool       `db:"anonymous"`
	Status            string     `db:"status"`
	CheckoutSessionID *string    `db:"checkout_session_id"`
	SubscriptionID    *string    `db:"subscription_id"`
	ChargeID          *string    `db:"charge_id"`
	CreatedAt         time.Time  `db:"created_at"`
	PaidAt            *time.Time `db:"paid_at"`
	ThanksToken       string     `db:"thanks_token"` // random; the thank-you page's address and cookie carry it
	DonorEmail        *string    `db:"donor_email"`  // where the receipt goes, if the donor gave it
}

const donationColumns = `id, show_id, episode_id, amount, currency, monthly, display_name, message, anonymous, status,
	checkout_session_id, subscription_id, charge_id, created_at, paid_at, thanks_token, donor_email`

// Money returns the donation's amount.
func (d Donation) Money() Money { return Money{Amount: d.Amount, Currency: d.Currency} }

// DonationLimits are the smallest and largest donation in a currency, in minor units, and the
// preset amounts the donate page offers: 1 to 10,000 units of the currency (100 to 1,000,000
// for zero-decimal currencies such as JPY, whose unit is small).
func DonationLimits(currency string) (minimum, maximum int64, presets []int64, err error) {
	cur, err := LookupCurrency(currency)
	if err != nil {
		return 0, 0, nil, err
	}
	unit := int64(1)
	for range cur.Exponent {
		unit *= 10
	}
	if cur.Exponent == 0 {
		unit = 100
	}
	return unit, 10000 * unit, []int64{5 * unit, 10 * unit, 25 * unit, 50 * unit}, nil
}

// DonationInput is a validated donation to record.
type DonationInput struct {
	ShowID      int64
	EpisodeID   int64 // 0 for none
	Amount      int64
	Currency    string
	Monthly     bool
	DisplayName string
	Message     string
	Anonymous   bool
	Email       string // the donor's, for the receipt; "" for none
}

// CreateDonation records a donation about to be paid. The amount must be within the
// currency's limits.
func CreateDonation(ctx context.Context, db DBTX, in DonationInput) (Donation, error) {
	lo, hi, _, err := DonationLimits(in.Currency)
	if err != nil {
		return Donation{}, err
	}
	if in.Amount < lo || in.Amount > hi {
		return Donation{}, fmt.Errorf("%w: donation of %d outside %d..%d", ErrInvalid, in.Amount, lo, hi)
	}
	if err := CheckStripeStep(in.Amount, in.Currency); err != nil {
		return Donation{}, err
	}
	var episode *int64
	if in.EpisodeID != 0 {
		episode = &in.EpisodeID
	}
	var email *string
	if e := strings.TrimSpace(in.Email); e != "" {
		email = &e
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO donations (show_id, episode_id, amount, currency, monthly, display_name, message, anonymous, donor_email)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+donationColumns,
		in.ShowID, episode, in.Amount, strings.ToUpper(in.Currency), in.Monthly,
		strings.TrimSpace(in.DisplayName), strings.TrimSpace(in.Message), in.Anonymous, email)
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Donation])
	if err != nil {
		return Donation{}, fmt.Errorf("create donation: %w", dbError(err))
	}
	return d, nil
}

// FindDonation loads a donation.
func FindDonation(ctx context.Context, db DBTX, id int64) (Donation, error) {
	return findOne[Donation](ctx, db, fmt.Sprintf("donation %d", id), `SELECT `+donationColumns+` FROM donations WHERE id = $1`, id)
}

// FindDonationByThanksToken loads the donation a thank-you page's token names.
func FindDonationByThanksToken(ctx context.Context, db DBTX, token string) (Donation, error) {
	return findOne[Donation](ctx, db, "donation of a thank-you token", `SELECT `+donationColumns+` FROM donations WHERE thanks_token = $1`, token)
}

// FindDonationBySession loads the donation a Checkout session pays.
func FindDonationBySession(ctx context.Context, db DBTX, sessionID string) (Donation, error) {
	return findOne[Donation](ctx, db, "donation of checkout session "+sessionID, `SELECT `+donationColumns+`
		FROM donations WHERE checkout_session_id = $1 ORDER BY id DESC LIMIT 1`, sessionID)
}

// RecentDonations lists a show's paid donations, newest first, for its pages.
func RecentDonations(ctx context.Context, db DBTX, showID int64, limit int) ([]Donation, error) {
	return findAll[Donation](ctx, db, fmt.Sprintf("donations of show %d", showID), `SELECT `+donationColumns+` FROM donations WHERE show_id = $1 AND status = 'paid'
		ORDER BY paid_at DESC, id DESC LIMIT $2`, showID, limit)
}

// openCheckout opens a checkout for c on page: a Stripe Checkout session, or in offline test
// mode a test session of Fanseed's, whose page completes the payment. It returns the session's
// id and where to send the payer.
func (s *Service) openCheckout(ctx context.Context, c Checkout, page CheckoutPage) (sessionID, url string, err error) {
	if s.Stripe == nil {
		sessionID = TestSessionPrefix + strings.ToLower(randomToken(""))
		return sessionID, strings.ReplaceAll(page.TestURL, "{session}", sessionID), nil
	}
	c.Name, c.SuccessURL, c.CancelURL = page.Title, page.SuccessURL, page.CancelURL
	return s.Stripe.CreateCheckout(ctx, c)
}

// CheckoutPage is where a payer is sent to pay, and the pages it returns to.
type CheckoutPage struct {
	Title      string // what the payer sees, such as "Donation to Night Signals"
	SuccessURL string
	CancelURL  string
	TestURL    string // offline test mode: Fanseed's test checkout page, given the session id
}

// StartDonation opens the checkout for a recorded donation and returns where to send the fan:
// Stripe Checkout, or in offline test mode Fanseed's own test checkout page.
func (s *Service) StartDonation(ctx context.Context, d Donation, page CheckoutPage) (string, error) {
	md := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(d.ShowID, 10),
		MetaDonationID: strconv.FormatInt(d.ID, 10)}
	if d.EpisodeID != nil {
		md[MetaEpisodeID] = strconv.FormatInt(*d.EpisodeID, 10)
	}
	sessionID, url, err := s.openCheckout(ctx, Checkout{
		Monthly: d.Monthly, Donate: true, Amount: d.Amount, Currency: d.Currency, Email: deref(d.DonorEmail),
		Reference: "donation-" + strconv.FormatInt(d.ID, 10), Metadata: md,
	}, page)
	if err != nil {
		return "", err
	}
	if _, err := s.DB.Exec(ctx, `UPDATE donations SET checkout_session_id = $2 WHERE id = $1`, d.ID, sessionID); err != nil {
		return "", fmt.Errorf("donation %d: %w", d.ID, dbError(err))
	}
	return url, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
