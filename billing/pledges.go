package billing

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"
)

// Pledge states; see the pledges table.
const (
	PledgePending     = "pending"
	PledgeActive      = "active"
	PledgeCharging    = "charging"
	PledgeCollected   = "collected"
	PledgeNeedsAction = "needs_action"
	PledgeDropped     = "dropped"
	PledgeReleased    = "released"
	PledgeCancelled   = "cancelled"
	PledgeRefunded    = "refunded"
)

// NeedsActionFor is how long a backer whose charge needs action has to pay on-session before
// the pledge is dropped; reminders go out daily until then.
const NeedsActionFor = 7 * 24 * time.Hour

// PendingPledgeFor is how long a pledge whose checkout never completed holds its tier.
const PendingPledgeFor = time.Hour

// Pledge is a backer's promise to pay toward a campaign, charged off-session at its close.
type Pledge struct {
	ID               int64      `db:"id"`
	CampaignID       int64      `db:"campaign_id"`
	TierID           *int64     `db:"tier_id"` // nil: no reward
	Amount           int64      `db:"amount"`
	Currency         string     `db:"currency"`
	BackerEmail      string     `db:"backer_email"`
	BackerName       string     `db:"backer_name"`
	CreditName       *string    `db:"credit_name"` // the name in the credits, if the backer chose to be named
	Status           string     `db:"status"`
	Token            string     `db:"token"`
	Passkey          string     `db:"passkey"`
	CustomerID       *string    `db:"customer_id"`
	PaymentMethodID  *string    `db:"payment_method_id"`
	PaymentIntentID  *string    `db:"payment_intent_id"`
	ChargeID         *string    `db:"charge_id"`
	Failure          string     `db:"failure"`
	NeedsActionSince *time.Time `db:"needs_action_since"`
	Reminders        int32      `db:"reminders"`
	DetachedAt       *time.Time `db:"detached_at"`
	CreatedAt        time.Time  `db:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at"`
	CollectedAt      *time.Time `db:"collected_at"`
}

const pledgeColumns = `id, campaign_id, tier_id, amount, currency, backer_email, backer_name, credit_name, status, token, passkey,
	customer_id, payment_method_id, payment_intent_id, charge_id, failure, needs_action_since, reminders, detached_at,
	created_at, updated_at, collected_at`

// Money is the pledge's amount.
func (p Pledge) Money() Money { return Money{Amount: p.Amount, Currency: p.Currency} }

// Stands reports whether the pledge counts toward its campaign.
func (p Pledge) Stands() bool {
	switch p.Status {
	case PledgeActive, PledgeCharging, PledgeCollected, PledgeNeedsAction:
		return true
	}
	return false
}

// PledgeInput is a pledge as a backer makes it.
type PledgeInput struct {
	CampaignID int64
	TierID     int64 // 0: no reward
	Amount     int64
	Email      string
	Name       string
	CreditName string // "" not to be named in the credits
	AccountID  int64  // the signed-in fan, if any
}

// CreatePledge records a pending pledge and holds its tier: the tier's count is taken in one
// guarded statement, so a limited tier is never oversold however many pledge at once (and the
// schema refuses a count beyond the quantity).
func (s *Service) CreatePledge(ctx context.Context, in PledgeInput) (Pledge, error) {
	in.Email, in.Name, in.CreditName = strings.TrimSpace(in.Email), strings.TrimSpace(in.Name), strings.TrimSpace(in.CreditName)
	switch {
	case len(in.Email) < 3 || len(in.Email) > 254 || !strings.Contains(strings.TrimLeft(in.Email, "@"), "@"):
		return Pledge{}, fmt.Errorf("%w: email: an address is required, to reach you when the campaign closes", ErrInvalid)
	case len(in.Name) > 100:
		return Pledge{}, fmt.Errorf("%w: name: at most 100 characters", ErrInvalid)
	case len(in.CreditName) > 100:
		return Pledge{}, fmt.Errorf("%w: name in the credits: at most 100 characters", ErrInvalid)
	case in.Amount <= 0:
		return Pledge{}, fmt.Errorf("%w: amount: must be more than zero", ErrInvalid)
	}
	var p Pledge
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		c, err := s.pledgeable(ctx, tx, in.CampaignID)
		if err != nil {
			return err
		}
		if err := checkPledgeAmount(in.Amount, c.Currency); err != nil {
			return err
		}
		if in.TierID != 0 {
			if err := holdTier(ctx, tx, c.ID, in.TierID, in.Amount, c.Currency); err != nil {
				return err
			}
		}
		var credit *string
		if in.CreditName != "" {
			credit = &in.CreditName
		}
		rows, _ := tx.Query(ctx, `INSERT INTO pledges (campaign_id, tier_id, amount, currency, backer_email, backer_name, credit_name,
				account_id, token, passkey)
			VALUES ($1, NULLIF($2, 0), $3, $4, $5, $6, $7, NULLIF($8, 0), $9, $10) RETURNING `+pledgeColumns,
			c.ID, in.TierID, in.Amount, c.Currency, in.Email, in.Name, credit, in.AccountID,
			randomToken("pl_"), strings.ToLower(rand40()))
		p, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pledge])
		return dbError(err)
	})
	if err != nil {
		return Pledge{}, fmt.Errorf("pledge to campaign %d: %w", in.CampaignID, err)
	}
	return p, nil
}

// rand40 is a passkey: 40 characters of crypto/rand's Text alphabet, 200 bits.
func rand40() string { return (randomToken("") + randomToken(""))[:40] }

func checkPledgeAmount(amount int64, currency string) error {
	lo, hi, _, err := DonationLimits(currency)
	if err != nil {
		return err
	}
	if amount < lo {
		return fmt.Errorf("%w: amount: at least %s", ErrInvalid, Money{Amount: lo, Currency: currency})
	}
	if amount > hi*10 {
		return fmt.Errorf("%w: amount: at most %s", ErrInvalid, Money{Amount: hi * 10, Currency: currency})
	}
	if err := CheckStripeStep(amount, currency); err != nil {
		return fmt.Errorf("amount: %w", err)
	}
	return nil
}

// pledgeable locks a campaign shared (closing it waits) and checks it takes pledges now.
func (s *Service) pledgeable(ctx context.Context, tx pgx.Tx, id int64) (Campaign, error) {
	rows, _ := tx.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = $1 FOR SHARE`, id)
	c, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Campaign])
	if err != nil {
		return Campaign{}, wrapNotFound(err, fmt.Sprintf("campaign %d", id))
	}
	if c.Status != CampaignLive {
		return Campaign{}, fmt.Errorf("%w: the campaign is %s and takes no pledges", ErrConflict, c.Status)
	}
	if !s.now().Before(c.Deadline) {
		return Campaign{}, fmt.Errorf("%w: the campaign's deadline has passed", ErrConflict)
	}
	return c, nil
}

// holdTier takes one of a tier for a pledge of amount: refused when the amount is below its
// minimum or none is left.
func holdTier(ctx context.Context, tx pgx.Tx, campaignID, tierID, amount int64, currency string) error {
	var minimum int64
	err := tx.QueryRow(ctx, `SELECT minimum FROM campaign_tiers WHERE id = $1 AND campaign_id = $2`, tierID, campaignID).Scan(&minimum)
	if err != nil {
		return wrapNotFound(err, fmt.Sprintf("tier %d", tierID))
	}
	if amount < minimum {
		return fmt.Errorf("%w: amount: this reward needs a pledge of at least %s", ErrInvalid, Money{Amount: minimum, Currency: currency})
	}
	tag, err := tx.Exec(ctx, `UPDATE campaign_tiers SET taken = taken + 1
		WHERE id = $1 AND (quantity IS NULL OR taken < quantity)`, tierID)
	if err != nil {
		return dbError(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: tier: this reward is sold out", ErrConflict)
	}
	return nil
}

func releaseTier(ctx context.Context, tx pgx.Tx, tierID *int64) error {
	if tierID == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE campaign_tiers SET taken = taken - 1 WHERE id = $1`, *tierID)
	return dbError(err)
}

// StartPledge opens the checkout that saves the backer's payment method (setup mode: nothing
// is charged) and returns where to send the backer.
func (s *Service) StartPledge(ctx context.Context, p Pledge, page CheckoutPage) (string, error) {
	md := map[string]string{MetaKind: KindPledge, MetaPledgeID: strconv.FormatInt(p.ID, 10),
		MetaCampaignID: strconv.FormatInt(p.CampaignID, 10)}
	var sessionID, url, customer string
	var err error
	if s.Stripe == nil {
		sessionID = TestSessionPrefix + strings.ToLower(randomToken(""))
		url = strings.ReplaceAll(page.TestURL, "{session}", sessionID)
	} else if sessionID, url, customer, err = s.Stripe.CreateSetupCheckout(ctx, SetupCheckout{
		Email: p.BackerEmail, Currency: p.Currency, SuccessURL: page.SuccessURL, CancelURL: page.CancelURL,
		Reference: "pledge-" + strconv.FormatInt(p.ID, 10), Metadata: md,
	}); err != nil {
		return "", err
	}
	if _, err := s.DB.Exec(ctx, `UPDATE pledges SET checkout_session_id = $2, customer_id = NULLIF($3, ''), updated_at = now()
		WHERE id = $1`, p.ID, sessionID, customer); err != nil {
		return "", fmt.Errorf("pledge %d: %w", p.ID, dbError(err))
	}
	return url, nil
}

// applySetupSession saves the payment method of a completed setup-mode session: the pledge
// stands. A campaign closed meanwhile takes no pledge, and the method is detached.
func (s *Service) applySetupSession(ctx context.Context, tx pgx.Tx, ev *event) ([]string, error) {
	sess := ev.session
	id := metaInt(sess.Metadata, MetaPledgeID)
	if id == 0 || sess.SetupIntent == nil {
		return nil, nil
	}
	pm, customer := "", ""
	if sess.SetupIntent.PaymentMethod != nil {
		pm = sess.SetupIntent.PaymentMethod.ID
	}
	if sess.SetupIntent.Customer != nil {
		customer = sess.SetupIntent.Customer.ID
	}
	if customer == "" && sess.Customer != nil {
		customer = sess.Customer.ID
	}
	if pm == "" {
		return nil, fmt.Errorf("%w: setup session %s carries no payment method", ErrInvalid, sess.ID)
	}
	var status, campaignStatus string
	var tier *int64
	var saved *string
	var deadline time.Time
	err := tx.QueryRow(ctx, `SELECT p.status, p.tier_id, p.payment_method_id, c.status, c.deadline
		FROM pledges p JOIN campaigns c ON c.id = p.campaign_id
		WHERE p.id = $1 FOR UPDATE OF p`, id).Scan(&status, &tier, &saved, &campaignStatus, &deadline)
	if err != nil {
		return nil, wrapNotFound(err, fmt.Sprintf("pledge %d", id))
	}
	if status != PledgePending {
		if saved == nil && (status == PledgeCancelled || status == PledgeReleased) {
			// Cancelled (or its campaign closed) before the card was saved: the card is forgotten.
			if _, err := tx.Exec(ctx, `UPDATE pledges SET payment_method_id = $2 WHERE id = $1`, id, pm); err != nil {
				return nil, dbError(err)
			}
			_, err := s.Jobs.InsertTx(ctx, tx, DetachPledgeArgs{PledgeID: id}, nil)
			return nil, err
		}
		return nil, nil // applied before
	}
	if campaignStatus == CampaignLive && ev.Created.Before(deadline) {
		_, err = tx.Exec(ctx, `UPDATE pledges SET status = 'active', payment_method_id = $2, customer_id = coalesce(NULLIF($3, ''), customer_id),
			updated_at = now() WHERE id = $1`, id, pm, customer)
		return nil, dbError(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE pledges SET status = 'cancelled', payment_method_id = $2, failure = 'The campaign closed before the card was saved.',
		updated_at = now() WHERE id = $1`, id, pm); err != nil {
		return nil, dbError(err)
	}
	if err := releaseTier(ctx, tx, tier); err != nil {
		return nil, err
	}
	_, err = s.Jobs.InsertTx(ctx, tx, DetachPledgeArgs{PledgeID: id}, nil)
	return nil, err
}

// gatherSetupIntent fetches the setup intent of a setup-mode session whose payload names it
// only by id.
func (s *Service) gatherSetupIntent(ctx context.Context, ev *event, fetch bool) error {
	si := ev.session.SetupIntent
	if si == nil || si.ID == "" || si.PaymentMethod != nil || s.Stripe == nil {
		return nil
	}
	if !fetch {
		return errFetchLater
	}
	got, err := s.Stripe.setupIntent(ctx, si.ID)
	if err != nil {
		return err
	}
	ev.session.SetupIntent = got
	return nil
}

// FindPledgeByToken loads the pledge a backer's link names.
func FindPledgeByToken(ctx context.Context, db DBTX, token string) (Pledge, error) {
	rows, _ := db.Query(ctx, `SELECT `+pledgeColumns+` FROM pledges WHERE token = $1`, token)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pledge])
	if err != nil {
		return Pledge{}, wrapNotFound(err, "pledge")
	}
	return p, nil
}

// FindPledge loads a pledge.
func FindPledge(ctx context.Context, db DBTX, id int64) (Pledge, error) {
	rows, _ := db.Query(ctx, `SELECT `+pledgeColumns+` FROM pledges WHERE id = $1`, id)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pledge])
	if err != nil {
		return Pledge{}, wrapNotFound(err, fmt.Sprintf("pledge %d", id))
	}
	return p, nil
}

// CampaignPledges lists a campaign's pledges, the newest first, for its creator.
func CampaignPledges(ctx context.Context, db DBTX, campaignID int64) ([]Pledge, error) {
	rows, _ := db.Query(ctx, `SELECT `+pledgeColumns+` FROM pledges WHERE campaign_id = $1 AND status <> 'pending' ORDER BY id DESC`, campaignID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[Pledge])
	if err != nil {
		return nil, fmt.Errorf("pledges of campaign %d: %w", campaignID, dbError(err))
	}
	return list, nil
}

// ChangePledge changes a standing pledge's amount and reward until the deadline: the new tier
// is taken (or refused) and the old one given back in one transaction.
func (s *Service) ChangePledge(ctx context.Context, token string, tierID, amount int64, creditName string) (Pledge, error) {
	creditName = strings.TrimSpace(creditName)
	if amount <= 0 {
		return Pledge{}, fmt.Errorf("%w: amount: must be more than zero", ErrInvalid)
	}
	if len(creditName) > 100 {
		return Pledge{}, fmt.Errorf("%w: name in the credits: at most 100 characters", ErrInvalid)
	}
	var p Pledge
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		old, err := lockPledge(ctx, tx, token)
		if err != nil {
			return err
		}
		c, err := s.pledgeable(ctx, tx, old.CampaignID)
		if err != nil {
			return err
		}
		if old.Status != PledgeActive {
			return fmt.Errorf("%w: the pledge is %s and cannot change", ErrConflict, old.Status)
		}
		if err := checkPledgeAmount(amount, c.Currency); err != nil {
			return err
		}
		same := old.TierID != nil && *old.TierID == tierID
		if tierID != 0 && !same {
			if err := holdTier(ctx, tx, c.ID, tierID, amount, c.Currency); err != nil {
				return err
			}
		} else if same {
			var minimum int64
			if err := tx.QueryRow(ctx, `SELECT minimum FROM campaign_tiers WHERE id = $1`, tierID).Scan(&minimum); err != nil {
				return dbError(err)
			}
			if amount < minimum {
				return fmt.Errorf("%w: amount: this reward needs a pledge of at least %s", ErrInvalid, Money{Amount: minimum, Currency: c.Currency})
			}
		}
		if !same {
			if err := releaseTier(ctx, tx, old.TierID); err != nil {
				return err
			}
		}
		rows, _ := tx.Query(ctx, `UPDATE pledges SET tier_id = NULLIF($2, 0), amount = $3, credit_name = NULLIF($4, ''), updated_at = now()
			WHERE id = $1 RETURNING `+pledgeColumns, old.ID, tierID, amount, creditName)
		p, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pledge])
		return dbError(err)
	})
	if err != nil {
		return Pledge{}, fmt.Errorf("change pledge: %w", err)
	}
	return p, nil
}

func lockPledge(ctx context.Context, tx pgx.Tx, token string) (Pledge, error) {
	rows, _ := tx.Query(ctx, `SELECT `+pledgeColumns+` FROM pledges WHERE token = $1 FOR UPDATE`, token)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pledge])
	if err != nil {
		return Pledge{}, wrapNotFound(err, "pledge")
	}
	return p, nil
}

// CancelPledge withdraws a pledge before the deadline: its tier is given back and its saved
// payment method detached.
func (s *Service) CancelPledge(ctx context.Context, token string) (Pledge, error) {
	var p Pledge
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		old, err := lockPledge(ctx, tx, token)
		if err != nil {
			return err
		}
		if _, err := s.pledgeable(ctx, tx, old.CampaignID); err != nil {
			return err
		}
		if old.Status != PledgeActive && old.Status != PledgePending {
			return fmt.Errorf("%w: the pledge is %s", ErrConflict, old.Status)
		}
		if p, err = s.endPledge(ctx, tx, old, PledgeCancelled, "Cancelled by the backer."); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return Pledge{}, fmt.Errorf("cancel pledge: %w", err)
	}
	return p, nil
}

// endPledge ends a pledge that will never be charged: its tier back, its method detached.
func (s *Service) endPledge(ctx context.Context, tx pgx.Tx, old Pledge, status, why string) (Pledge, error) {
	rows, _ := tx.Query(ctx, `UPDATE pledges SET status = $2, failure = $3, updated_at = now() WHERE id = $1 RETURNING `+pledgeColumns,
		old.ID, status, why)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pledge])
	if err != nil {
		return Pledge{}, dbError(err)
	}
	if err := releaseTier(ctx, tx, old.TierID); err != nil {
		return Pledge{}, err
	}
	if old.PaymentMethodID != nil {
		if _, err := s.Jobs.InsertTx(ctx, tx, DetachPledgeArgs{PledgeID: old.ID}, nil); err != nil {
			return Pledge{}, err
		}
	}
	return p, nil
}

// PayPledgeOnSession opens a payment-mode checkout for a pledge whose off-session charge
// needs the backer (authentication, or a declined card), and returns where to send them.
func (s *Service) PayPledgeOnSession(ctx context.Context, token string, page CheckoutPage) (string, error) {
	p, err := FindPledgeByToken(ctx, s.DB, token)
	if err != nil {
		return "", err
	}
	if p.Status != PledgeNeedsAction {
		return "", fmt.Errorf("%w: the pledge is %s, not waiting for a payment", ErrConflict, p.Status)
	}
	c, err := FindCampaign(ctx, s.DB, p.CampaignID)
	if err != nil {
		return "", err
	}
	md := map[string]string{MetaKind: KindPledge, MetaPledgeID: strconv.FormatInt(p.ID, 10),
		MetaCampaignID: strconv.FormatInt(p.CampaignID, 10), MetaShowID: strconv.FormatInt(c.ShowID, 10)}
	sessionID, url, err := s.openCheckout(ctx, Checkout{Amount: p.Amount, Currency: p.Currency, Customer: deref(p.CustomerID),
		Email: p.BackerEmail, Reference: "pledge-" + strconv.FormatInt(p.ID, 10), Metadata: md}, page)
	if err != nil {
		return "", err
	}
	if _, err := s.DB.Exec(ctx, `UPDATE pledges SET pay_session_id = $2, updated_at = now() WHERE id = $1`, p.ID, sessionID); err != nil {
		return "", fmt.Errorf("pledge %d: %w", p.ID, dbError(err))
	}
	return url, nil
}

// pledgeIncoming is the payment a pledge's charge posts, split by its campaign's plan.
func pledgeIncoming(eventID string, md map[string]string, charge *stripe.Charge, paymentIntent string) *incoming {
	return &incoming{eventID: eventID, showID: metaInt(md, MetaShowID), source: SourceCampaigns, what: "Pledge",
		pledgeID: metaInt(md, MetaPledgeID), charge: charge, paymentIntent: paymentIntent}
}

// BackerPledge is one of a backer's pledges with its campaign and reward, for the backer's page.
type BackerPledge struct {
	Pledge
	CampaignTitle  string  `db:"campaign_title"`
	CampaignStatus string  `db:"campaign_status"`
	ShowSlug       string  `db:"show_slug"`
	TierTitle      *string `db:"tier_title"`
	EarlyAccess    bool    `db:"early_access"`
	Credits        bool    `db:"credits"`
	Download       bool    `db:"download"`
}

// BackerPledges lists the pledges made from an address or by an account, the newest first.
func BackerPledges(ctx context.Context, db DBTX, email string, accountID int64) ([]BackerPledge, error) {
	rows, _ := db.Query(ctx, `SELECT `+prefixed("p.", pledgeColumns)+`, c.title AS campaign_title, c.status AS campaign_status,
			s.slug AS show_slug, t.title AS tier_title, coalesce(t.early_access, false) AS early_access,
			coalesce(t.credits, false) AS credits, coalesce(t.download, false) AS download
		FROM pledges p JOIN campaigns c ON c.id = p.campaign_id JOIN shows s ON s.id = c.show_id
		LEFT JOIN campaign_tiers t ON t.id = p.tier_id
		WHERE (lower(p.backer_email) = lower($1) OR p.account_id = NULLIF($2, 0)) AND p.status <> 'pending'
		ORDER BY p.id DESC`, email, accountID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[BackerPledge])
	if err != nil {
		return nil, fmt.Errorf("pledges of a backer: %w", dbError(err))
	}
	return list, nil
}

// prefixed puts a table alias before each of a list of columns.
func prefixed(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
