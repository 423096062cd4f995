package billing

import (
	"context"
	"fmt"
	"strconv"
)

// Connection is a party's Stripe connected account and what Stripe lets it do, as the last
// account.updated event said.
type Connection struct {
	PartyID         int64   `db:"id"`
	Name            string  `db:"name"`
	Email           *string `db:"email"`
	StripeAccountID *string `db:"stripe_account_id"`
	ChargesEnabled  bool    `db:"charges_enabled"`
	PayoutsEnabled  bool    `db:"payouts_enabled"`
}

// ConnectionsOfAccount lists the parties linked to a login account (a creator's own party, or
// one whose invitation the account accepted), and for a partner account an operator made, whose
// address the operator vouches for (vouchedEmail), the parties with that address. Never a
// party by an address typed at sign-up.
func ConnectionsOfAccount(ctx context.Context, db DBTX, accountID int64, vouchedEmail string) ([]Connection, error) {
	return findAll[Connection](ctx, db, fmt.Sprintf("parties of account %d", accountID), `SELECT id, name, email, stripe_account_id, charges_enabled, payouts_enabled
		FROM parties WHERE kind <> 'distributor' AND (account_id = $1 OR ($2 <> '' AND lower(email) = lower($2))) ORDER BY id`,
		accountID, vouchedEmail)
}

// StartOnboarding gives a party a Stripe Express account (once) and returns the URL of its
// onboarding. In offline test mode the party gets a test account, enabled at once, and is sent
// straight to returnURL.
func (s *Service) StartOnboarding(ctx context.Context, c Connection, refreshURL, returnURL string) (string, error) {
	if s.Stripe == nil {
		_, err := s.DB.Exec(ctx, `UPDATE parties SET stripe_account_id = $2, charges_enabled = true, payouts_enabled = true
			WHERE id = $1 AND stripe_account_id IS NULL`, c.PartyID, "acct_test_fanseed_"+strconv.FormatInt(c.PartyID, 10))
		if err != nil {
			return "", fmt.Errorf("connect party %d: %w", c.PartyID, dbError(err))
		}
		return returnURL, nil
	}
	acct := ""
	if c.StripeAccountID != nil {
		acct = *c.StripeAccountID
	} else {
		email := ""
		if c.Email != nil {
			email = *c.Email
		}
		var err error
		if acct, err = s.Stripe.CreateExpressAccount(ctx, email, c.PartyID); err != nil {
			return "", err
		}
		if _, err := s.DB.Exec(ctx, `UPDATE parties SET stripe_account_id = $2 WHERE id = $1 AND stripe_account_id IS NULL`,
			c.PartyID, acct); err != nil {
			return "", fmt.Errorf("connect party %d: %w", c.PartyID, dbError(err))
		}
	}
	return s.Stripe.OnboardingLink(ctx, acct, refreshURL, returnURL)
}
