package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"
)

// Payout is one transfer of what the platform owes a party in one currency, for a period.
type Payout struct {
	ID               int64     `db:"id"`
	PartyID          int64     `db:"party_id"`
	PartyName        string    `db:"party_name"`
	Currency         string    `db:"currency"`
	Period           string    `db:"period"`
	Amount           int64     `db:"amount"`
	Status           string    `db:"status"`
	StripeTransferID *string   `db:"stripe_transfer_id"`
	EntryID          *int64    `db:"entry_id"`
	Failure          string    `db:"failure"`
	CreatedAt        time.Time `db:"created_at"`
	UpdatedAt        time.Time `db:"updated_at"`
}

// Money returns the payout's amount.
func (p Payout) Money() Money { return Money{Amount: p.Amount, Currency: p.Currency} }

const payoutColumns = `o.id, o.party_id, pa.name AS party_name, o.currency, o.period, o.amount, o.status,
	o.stripe_transfer_id, o.entry_id, o.failure, o.created_at, o.updated_at`

var periodRE = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// ValidPeriod reports whether p is a payout period such as 2026-11.
func ValidPeriod(p string) bool { return periodRE.MatchString(p) }

// PeriodEnd is when a payout period (a calendar month, UTC) ends, checking that it has
// begun by now: a payout pays what was received before then.
func PeriodEnd(period string, now time.Time) (time.Time, error) {
	if !ValidPeriod(period) {
		return time.Time{}, fmt.Errorf("%w: period %q is not a month like 2026-11", ErrInvalid, period)
	}
	start, err := time.Parse("2006-01", period)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: period %q: %v", ErrInvalid, period, err)
	}
	if start.After(now) {
		return time.Time{}, fmt.Errorf("%w: period %s has not begun", ErrInvalid, period)
	}
	return start.AddDate(0, 1, 0), nil
}

// DefaultPayoutThreshold is the payout threshold of a currency for a party that has not set
// its own: ten times the smallest donation (10.00 in most currencies, 1,000 in zero-decimal
// ones such as JPY, whose unit is small).
func DefaultPayoutThreshold(currency string) (int64, error) {
	lo, _, _, err := DonationLimits(currency)
	return 10 * lo, err
}

// PayoutThreshold is a party's payout threshold in a currency: its own, or the default.
type PayoutThreshold struct {
	Currency string
	Amount   int64
	Own      bool // set by the party; else the currency's default
}

// Money returns the threshold as an amount of its currency.
func (t PayoutThreshold) Money() Money { return Money{Amount: t.Amount, Currency: t.Currency} }

// PayoutThresholds lists a party's thresholds in the currencies it has set one for or is owed
// in, by currency.
func PayoutThresholds(ctx context.Context, db DBTX, partyID int64) ([]PayoutThreshold, error) {
	rows, _ := db.Query(ctx, `
		SELECT c.currency, t.amount FROM (
			SELECT currency FROM payout_thresholds WHERE party_id = $1
			UNION SELECT currency FROM ledger_accounts WHERE kind = 'party_payable' AND party_id = $1) c
		LEFT JOIN payout_thresholds t ON t.party_id = $1 AND t.currency = c.currency
		ORDER BY c.currency`, partyID)
	var out []PayoutThreshold
	var cur string
	var own *int64
	_, err := pgx.ForEachRow(rows, []any{&cur, &own}, func() error {
		t := PayoutThreshold{Currency: cur}
		if own != nil {
			t.Amount, t.Own = *own, true
		} else {
			var err error
			if t.Amount, err = DefaultPayoutThreshold(cur); err != nil {
				return err
			}
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("payout thresholds of party %d: %w", partyID, dbError(err))
	}
	return out, nil
}

// SetPayoutThreshold sets a party's own threshold in a currency, in its minor units; nil
// goes back to the currency's default. It may be 0 (pay whatever is owed) up to the largest
// donation of the currency.
func SetPayoutThreshold(ctx context.Context, db DBTX, partyID int64, currency string, amount *int64) error {
	cur, err := LookupCurrency(currency)
	if err != nil {
		return err
	}
	if amount == nil {
		_, err := db.Exec(ctx, `DELETE FROM payout_thresholds WHERE party_id = $1 AND currency = $2`, partyID, cur.Code)
		return dbError(err)
	}
	_, hi, _, _ := DonationLimits(cur.Code)
	if *amount < 0 || *amount > hi {
		return fmt.Errorf("%w: threshold must be between %s and %s", ErrInvalid, cur.Format(0), cur.Format(hi))
	}
	_, err = db.Exec(ctx, `
		INSERT INTO payout_thresholds (party_id, currency, amount) VALUES ($1, $2, $3)
		ON CONFLICT (party_id, currency) DO UPDATE SET amount = EXCLUDED.amount, updated_at = now()`, partyID, cur.Code, *amount)
	if err != nil {
		return fmt.Errorf("payout threshold of party %d: %w", partyID, dbError(err))
	}
	return nil
}

// PayoutOptions tunes a payout run.
type PayoutOptions struct {
	// AfterTransfer runs between Stripe's answer and the database write, where a crash would
	// leave a transfer unrecorded; tests inject that crash through it.
	AfterTransfer func(p Payout, transferID string) error
}

// payoutsLockID keeps two payout runs from overlapping.
const payoutsLockID = 0x7061796f757473 // "payouts"

// RunPayouts pays every party with a connected account (payouts enabled) what the platform owes
// it beyond its threshold: one payout row per party, currency and period, written with a ledger
// entry moving the amount from the party's payable to its payouts in transit before Stripe is
// called, then one Stripe transfer with the idempotency key "payout:<payout id>", then the
// ledger entry taking it out of transit and out of Stripe clearing, and the status. Rows left pending by a run that stopped after calling Stripe
// are finished first, with the same key, so a party is never paid twice. In offline test mode
// no money moves: transfers get test ids. It returns the period's payouts.
func (s *Service) RunPayouts(ctx context.Context, period string, opts PayoutOptions) ([]Payout, error) {
	end, err := PeriodEnd(period, time.Now())
	if err != nil {
		return nil, err
	}
	codes := CurrencyCodes()
	defaults, steps := make([]int64, len(codes)), make([]int64, len(codes))
	for i, c := range codes {
		defaults[i], _ = DefaultPayoutThreshold(c)
		steps[i] = StripeStep(c)
	}
	conn, err := s.DB.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(payoutsLockID)).Scan(&locked); err != nil {
		return nil, dbError(err)
	}
	if !locked {
		return nil, fmt.Errorf("%w: another payout run is in progress", ErrConflict)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(payoutsLockID))

	// What is owed for money received before the period's end: what is owed now, less what
	// came in since (refunds since are not added back: a payout never exceeds what is owed
	// now); when it is above the party's threshold in that currency. Each payout row is written
	// with its ledger entry moving the amount from the party's payable to its payouts in
	// transit, so what is owed no longer counts it however the run ends.
	var started time.Time
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&started); err != nil {
			return dbError(err)
		}
		rows, _ := tx.Query(ctx, `
			INSERT INTO payouts (party_id, currency, period, amount)
			SELECT b.party_id, b.currency, $1, b.due - b.due % coalesce(d.step, 1)
			FROM (SELECT a.party_id, a.currency, least(-sum(p.amount), -sum(p.amount)
			             + coalesce(sum(p.amount) FILTER (WHERE e.occurred_at >= $2 AND e.kind NOT IN ('payout', 'adjustment')), 0)) AS due
			      FROM ledger_accounts a JOIN postings p ON p.account_id = a.id JOIN journal_entries e ON e.id = p.entry_id
			      WHERE a.kind = 'party_payable' GROUP BY a.party_id, a.currency) b
			JOIN parties pa ON pa.id = b.party_id
			LEFT JOIN payout_thresholds t ON t.party_id = b.party_id AND t.currency = b.currency
			LEFT JOIN unnest($3::text[], $4::bigint[], $5::bigint[]) AS d(currency, amount, step) ON d.currency = b.currency
			WHERE pa.kind <> 'distributor' AND pa.stripe_account_id IS NOT NULL AND pa.payouts_enabled
			  AND b.due - b.due % coalesce(d.step, 1) > greatest(coalesce(t.amount, d.amount, 0), 0)
			ON CONFLICT (party_id, currency, period) WHERE status <> 'refused' DO NOTHING
			RETURNING id, party_id, currency, period, amount`, period, end, codes, defaults, steps)
		type started struct {
			ID       int64  `db:"id"`
			PartyID  int64  `db:"party_id"`
			Currency string `db:"currency"`
			Period   string `db:"period"`
			Amount   int64  `db:"amount"`
		}
		list, err := pgx.CollectRows(rows, pgx.RowToStructByName[started])
		if err != nil {
			return dbError(err)
		}
		for _, p := range list {
			b := postingBuilder{ctx: ctx, db: tx, currency: p.Currency}
			b.add(PartyPayable, p.PartyID, p.Amount, RoleTransfer)
			b.add(PayoutsInTransit, p.PartyID, -p.Amount, RoleTransfer)
			if b.err != nil {
				return b.err
			}
			if _, err := Post(ctx, tx, Entry{
				Kind: EntryPayout, Description: fmt.Sprintf("Payout %d for %s", p.ID, p.Period),
				IdempotencyKey: "payout_started:" + strconv.FormatInt(p.ID, 10), OccurredAt: time.Now(), Postings: b.list,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("payout run %s: %w", period, err)
	}
	rows, _ := s.DB.Query(ctx, `SELECT `+payoutColumns+`, pa.stripe_account_id, o.created_at < $1 AS earlier
		FROM payouts o JOIN parties pa ON pa.id = o.party_id
		WHERE o.status = 'pending' ORDER BY o.id`, started)
	type pending struct {
		Payout
		Destination *string `db:"stripe_account_id"`
		Earlier     bool    `db:"earlier"` // left by an earlier run, which may have made its transfer
	}
	todo, err := pgx.CollectRows(rows, pgx.RowToStructByName[pending])
	if err != nil {
		return nil, fmt.Errorf("pending payouts: %w", dbError(err))
	}
	// A transfer Stripe refuses is that payout's failure, not the run's: the others go on. Any
	// other error (Stripe unreachable, a crash injected by a test) leaves the payout pending for
	// the next run, which finishes it with the same key, and fails the run once all are tried.
	var errs []error
	for _, p := range todo {
		err := s.pay(ctx, p.Payout, p.Destination, p.Earlier, opts)
		var refused *transferRefused
		switch {
		case err == nil:
		case errors.As(err, &refused):
			s.Log.ErrorContext(ctx, "payout transfer refused by Stripe", slog.Int64("payout_id", p.ID),
				slog.Int64("party_id", p.PartyID), slog.String("reason", refused.reason))
			if err := s.refuse(ctx, p.Payout, refused.reason); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ListPayouts(ctx, s.DB, period)
}

// transferRefused is Stripe's answer that it will not make a transfer (the request was
// understood and declined: no funds, no such account, transfers not enabled), with its message.
type transferRefused struct{ reason string }

func (e *transferRefused) Error() string { return "transfer refused: " + e.reason }

// refusedByStripe tells a transfer Stripe declined from one whose outcome is unknown.
func refusedByStripe(err error) (*transferRefused, bool) {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return nil, false
	}
	code := se.HTTPStatusCode
	if code < 400 || code >= 500 || code == http.StatusConflict || code == http.StatusTooManyRequests {
		return nil, false
	}
	reason := se.Msg
	if reason == "" {
		reason = string(se.Code)
	}
	return &transferRefused{reason: reason}, true
}

func (s *Service) pay(ctx context.Context, p Payout, destination *string, earlier bool, opts PayoutOptions) error {
	key := "payout:" + strconv.FormatInt(p.ID, 10)
	transferID := "tr_test_fanseed_payout_" + strconv.FormatInt(p.ID, 10)
	if s.Stripe != nil {
		if destination == nil {
			return &transferRefused{reason: "the party has no connected account"}
		}
		group := "payouts-" + p.Period
		found := ""
		if earlier {
			// Stripe forgets idempotency keys after about a day, and a key does not follow a
			// party to a new account: ask Stripe whether the earlier run's transfer was made.
			var err error
			if found, err = s.Stripe.FindTransfer(ctx, group, p.ID); err != nil {
				return fmt.Errorf("payout %d: %w", p.ID, err)
			}
		}
		if found != "" {
			transferID = found
		} else {
			id, err := s.Stripe.Transfer(ctx, key, *destination, p.Amount, p.Currency, group, p.ID)
			if refused, ok := refusedByStripe(err); ok {
				return refused
			}
			if err != nil {
				return fmt.Errorf("payout %d: %w", p.ID, err)
			}
			transferID = id
		}
	}
	if opts.AfterTransfer != nil {
		if err := opts.AfterTransfer(p, transferID); err != nil {
			return err
		}
	}
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := lockObject(ctx, tx, transferID); err != nil {
			return err
		}
		// The transfer left the platform's Stripe balance: the payout is no longer in transit.
		b := postingBuilder{ctx: ctx, db: tx, currency: p.Currency}
		b.add(PayoutsInTransit, p.PartyID, p.Amount, RoleTransfer)
		b.add(StripeClearing, 0, -p.Amount, RoleTransfer)
		if b.err != nil {
			return b.err
		}
		entryID, err := Post(ctx, tx, Entry{
			Kind: EntryPayout, Description: fmt.Sprintf("Payout %d for %s", p.ID, p.Period), IdempotencyKey: key,
			OccurredAt: time.Now(), StripeObjectID: transferID, Postings: b.list,
		})
		if err != nil && !errors.Is(err, ErrDuplicate) {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE payouts SET status = 'transferred', stripe_transfer_id = $2, entry_id = $3,
			updated_at = now() WHERE id = $1 AND status = 'pending'`, p.ID, transferID, entryID); err != nil {
			return dbError(err)
		}
		return s.wake(ctx, tx, []string{transferID})
	})
}

// refuse records that Stripe refused a payout's transfer: the payout is marked refused with
// Stripe's message, and its money goes back from in transit to what the party is owed, for a
// later run to pay with a payout of its own.
func (s *Service) refuse(ctx context.Context, p Payout, reason string) error {
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE payouts SET status = 'refused', failure = $2, updated_at = now()
			WHERE id = $1 AND status = 'pending'`, p.ID, truncate(reason, 500))
		if err != nil {
			return dbError(err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		b := postingBuilder{ctx: ctx, db: tx, currency: p.Currency}
		b.add(PayoutsInTransit, p.PartyID, p.Amount, RoleTransfer)
		b.add(PartyPayable, p.PartyID, -p.Amount, RoleTransfer)
		if b.err != nil {
			return b.err
		}
		_, err = Post(ctx, tx, Entry{
			Kind: EntryPayout, Description: fmt.Sprintf("Payout %d for %s refused by Stripe", p.ID, p.Period),
			IdempotencyKey: "payout_refused:" + strconv.FormatInt(p.ID, 10), OccurredAt: time.Now(), Postings: b.list,
		})
		if err != nil && !errors.Is(err, ErrDuplicate) {
			return err
		}
		return nil
	})
}

// truncate cuts s to at most n bytes of valid UTF-8.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// ListPayouts lists a period's payouts (every period when period is ""), newest first.
func ListPayouts(ctx context.Context, db DBTX, period string) ([]Payout, error) {
	return findAll[Payout](ctx, db, "payouts", `SELECT `+payoutColumns+` FROM payouts o JOIN parties pa ON pa.id = o.party_id
		WHERE $1 = '' OR o.period = $1 ORDER BY o.id DESC LIMIT 500`, period)
}
