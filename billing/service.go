package billing

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// Service is money with its outside world: the database, Stripe (nil in offline test mode),
// the webhook signing secret and the job queue that applies Stripe events.
type Service struct {
	DB            *pgxpool.Pool
	Stripe        *Stripe // nil: offline test mode, payments complete on Fanseed's own test page
	WebhookSecret string
	Jobs          *river.Client[pgx.Tx] // inserts jobs; the serving process also works them
	Log           *slog.Logger
	Now           func() time.Time // the clock campaigns close by; nil for time.Now

	accounts memo[accountKey, int64] // committed ledger account ids
	plans    memo[int64, Plan]       // plans by id: a plan and its lines never change, only which plan is in force needs a query
	batches  batchJobs               // this process's batch jobs
}

// Offline reports whether there is no Stripe key, so checkout happens on the test page.
func (s *Service) Offline() bool { return s.Stripe == nil }

// Metadata keys Fanseed puts on Checkout sessions, payment intents and subscriptions.
const (
	MetaKind          = "fanseed_kind" // KindDonation or KindSponsorship
	MetaShowID        = "fanseed_show_id"
	MetaEpisodeID     = "fanseed_episode_id"
	MetaDonationID    = "fanseed_donation_id"
	MetaSponsorshipID = "fanseed_sponsorship_id"
	MetaPayoutID      = "fanseed_payout_id" // on transfers
	MetaPledgeID      = "fanseed_pledge_id"
	MetaCampaignID    = "fanseed_campaign_id"
	KindPledge        = "pledge"
	KindDonation      = "donation"
	KindSponsorship   = "sponsorship"
)

func metaInt(md map[string]string, key string) int64 {
	v, err := strconv.ParseInt(md[key], 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// randomToken is a secret with a prefix saying what it is: crypto/rand's Text, 130 bits.
func randomToken(prefix string) string { return prefix + rand.Text() }

// TestSessionPrefix starts the ids of Checkout sessions made in offline test mode.
const TestSessionPrefix = "cs_test_fanseed_"

// TestFee is the processor fee offline test mode charges, like Stripe's standard card pricing:
// 2.9% of the amount (rounded to the nearest minor unit) plus 0.30 in two-decimal currencies
// (3 in zero-decimal ones, 0.300 in three-decimal ones), never more than the amount.
func TestFee(amount int64, currency string) int64 {
	cur, err := LookupCurrency(currency)
	if err != nil || amount <= 0 {
		return 0
	}
	fixed := map[int]int64{0: 3, 2: 30, 3: 300}[cur.Exponent]
	return min(amount, (amount*29+500)/1000+fixed)
}

// wrapNotFound names what was not found.
func wrapNotFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, dbError(err))
}
