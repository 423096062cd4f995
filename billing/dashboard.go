package billing

import (
	"context"
	"time"
)

// MoneyDay is one day of a show's money, in the show's currency, for the creator dashboard.
type MoneyDay struct {
	Day           time.Time `db:"day"`
	Donations     int64     `db:"donations"`     // one-off donations, gross
	Subscriptions int64     `db:"subscriptions"` // monthly donations, gross
	Sponsorships  int64     `db:"sponsorships"`  // gross
	Fees          int64     `db:"fees"`          // Stripe's fees on the day's payments
	Refunds       int64     `db:"refunds"`       // given back, as a positive amount
	Disputes      int64     `db:"disputes"`      // withdrawn by disputes, net of disputes won
}

// ShowMoneyDaily sums a show's ledger entries per day in [from, to).
func ShowMoneyDaily(ctx context.Context, db DBTX, showID int64, currency string, from, to time.Time) ([]MoneyDay, error) {
	return findAll[MoneyDay](ctx, db, "show money by day", `
		SELECT date_trunc('day', e.occurred_at AT TIME ZONE 'UTC') AS day,
		       coalesce(sum(p.amount) FILTER (WHERE e.kind = 'payment' AND e.source = 'donations' AND e.description <> 'Monthly donation' AND p.role = 'gross'), 0) AS donations,
		       coalesce(sum(p.amount) FILTER (WHERE e.kind = 'payment' AND e.description = 'Monthly donation' AND p.role = 'gross'), 0) AS subscriptions,
		       coalesce(sum(p.amount) FILTER (WHERE e.kind = 'payment' AND e.source = 'sponsorship' AND p.role = 'gross'), 0) AS sponsorships,
		       coalesce(-sum(p.amount) FILTER (WHERE e.kind = 'payment' AND p.role = 'fee'), 0) AS fees,
		       coalesce(-sum(p.amount) FILTER (WHERE e.kind IN ('refund', 'refund_failed') AND p.role = 'gross'), 0) AS refunds,
		       coalesce(-sum(p.amount) FILTER (WHERE e.kind IN ('dispute', 'dispute_won') AND p.role = 'gross'), 0) AS disputes
		FROM journal_entries e JOIN postings p ON p.entry_id = e.id
		WHERE e.show_id = $1 AND p.currency = $2 AND e.occurred_at >= $3 AND e.occurred_at < $4
		GROUP BY 1 ORDER BY 1`, showID, currency, from, to)
}

// PartyPaidOut is what was transferred to a party in a range, per currency.
type PartyPaidOut struct {
	PartyID  int64  `db:"party_id"`
	Name     string `db:"name"`
	Currency string `db:"currency"`
	Amount   int64  `db:"amount"`
}

// ShowPartiesPaidOut sums the payouts made in [from, to) to the parties of a show's plans.
func ShowPartiesPaidOut(ctx context.Context, db DBTX, showID int64, from, to time.Time) ([]PartyPaidOut, error) {
	return findAll[PartyPaidOut](ctx, db, "paid out", `
		SELECT pa.id AS party_id, pa.name, po.currency, sum(po.amount) AS amount
		FROM payouts po JOIN parties pa ON pa.id = po.party_id
		WHERE po.status IN ('transferred', 'paid') AND po.created_at >= $2 AND po.created_at < $3
		  AND pa.id IN (SELECT l.party_id FROM share_plan_lines l JOIN share_plans sp ON sp.id = l.plan_id WHERE sp.show_id = $1)
		GROUP BY pa.id, pa.name, po.currency ORDER BY pa.name`, showID, from, to)
}

// AmountText is the amount as a decimal with its currency code.
func (p PartyPaidOut) AmountText() string {
	return Money{Amount: p.Amount, Currency: p.Currency}.String()
}

// CurrencyTotals is everything received in one currency, for the distributor's admin page.
type CurrencyTotals struct {
	Currency string `db:"currency"`
	Gross    int64  `db:"gross"`    // payments
	Fees     int64  `db:"fees"`     // Stripe's fees on them
	Refunds  int64  `db:"refunds"`  // given back
	Disputes int64  `db:"disputes"` // withdrawn by disputes, net of disputes won
	PaidOut  int64  `db:"paid_out"` // transferred to parties
}

// Text formats an amount of these totals' currency.
func (c CurrencyTotals) Text(minor int64) string {
	return Money{Amount: minor, Currency: c.Currency}.String()
}

// TotalsByCurrency sums the whole ledger per currency.
func TotalsByCurrency(ctx context.Context, db DBTX) ([]CurrencyTotals, error) {
	return findAll[CurrencyTotals](ctx, db, "totals by currency", `
		SELECT p.currency,
		       coalesce(sum(p.amount) FILTER (WHERE e.kind = 'payment' AND p.role = 'gross'), 0) AS gross,
		       coalesce(-sum(p.amount) FILTER (WHERE e.kind = 'payment' AND p.role = 'fee'), 0) AS fees,
		       coalesce(-sum(p.amount) FILTER (WHERE e.kind IN ('refund', 'refund_failed') AND p.role = 'gross'), 0) AS refunds,
		       coalesce(-sum(p.amount) FILTER (WHERE e.kind IN ('dispute', 'dispute_won') AND p.role = 'gross'), 0) AS disputes,
		       coalesce(-sum(p.amount) FILTER (WHERE a.kind = 'stripe_clearing' AND p.role = 'transfer'), 0) AS paid_out
		FROM journal_entries e JOIN postings p ON p.entry_id = e.id JOIN ledger_accounts a ON a.id = p.account_id
		GROUP BY p.currency ORDER BY p.currency`)
}

// ReversalLine is a refund or dispute as the admin page lists it.
type ReversalLine struct {
	EntryID     int64     `db:"id"`
	Kind        string    `db:"kind"`
	OccurredAt  time.Time `db:"occurred_at"`
	ShowID      *int64    `db:"show_id"`
	ShowTitle   *string   `db:"title"`
	Description string    `db:"description"`
	StripeID    *string   `db:"stripe_object_id"`
	Amount      int64     `db:"amount"` // given back or withdrawn, positive
	Currency    string    `db:"currency"`
}

// AmountText formats the amount with its currency.
func (r ReversalLine) AmountText() string {
	return Money{Amount: r.Amount, Currency: r.Currency}.String()
}

// RecentReversals lists the latest refunds and disputes.
func RecentReversals(ctx context.Context, db DBTX, limit int) ([]ReversalLine, error) {
	return findAll[ReversalLine](ctx, db, "recent reversals", `
		SELECT e.id, e.kind, e.occurred_at, e.show_id, s.title, e.description, e.stripe_object_id,
		       -sum(p.amount) AS amount, p.currency
		FROM journal_entries e JOIN postings p ON p.entry_id = e.id AND p.role = 'gross'
		LEFT JOIN shows s ON s.id = e.show_id
		WHERE e.kind IN ('refund', 'refund_failed', 'dispute', 'dispute_won')
		GROUP BY e.id, s.title, p.currency
		ORDER BY e.occurred_at DESC, e.id DESC LIMIT $1`, limit)
}
