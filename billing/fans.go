package billing

import (
	"context"
	"fmt"
	"time"
)

// Funding is what a show has raised, net of refunds and disputes, for its goal bar.
type Funding struct {
	Currency  string
	ThisMonth int64 // since the start of the current calendar month (UTC)
	Total     int64
}

// ShowFunding sums the gross of the show's payments less what was refunded or withdrawn, in
// the show's currency, from the ledger.
func ShowFunding(ctx context.Context, db DBTX, showID int64, currency string, now time.Time) (Funding, error) {
	month := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	f := Funding{Currency: currency}
	err := db.QueryRow(ctx, `
		SELECT coalesce(sum(p.amount) FILTER (WHERE e.occurred_at >= $3), 0), coalesce(sum(p.amount), 0)
		FROM journal_entries e
		JOIN postings p ON p.entry_id = e.id AND p.role = 'gross'
		WHERE e.show_id = $1 AND p.currency = $2`, showID, currency, month).Scan(&f.ThisMonth, &f.Total)
	if err != nil {
		return Funding{}, fmt.Errorf("show funding: %w", err)
	}
	return f, nil
}

// Supporter is a paid donation as the fan page shows it.
type Supporter struct {
	Name     string    `db:"display_name"`
	Message  string    `db:"message"`
	Amount   int64     `db:"amount"`
	Currency string    `db:"currency"`
	Monthly  bool      `db:"monthly"`
	PaidAt   time.Time `db:"paid_at"`
}

// RecentSupporters lists the latest paid donations of a show whose donors chose to be named.
func RecentSupporters(ctx context.Context, db DBTX, showID int64, limit int) ([]Supporter, error) {
	return findAll[Supporter](ctx, db, "recent supporters", `
		SELECT display_name, message, amount, currency, monthly, paid_at FROM donations
		WHERE show_id = $1 AND status = 'paid' AND NOT anonymous AND display_name <> '' AND paid_at IS NOT NULL
		ORDER BY paid_at DESC, id DESC LIMIT $2`, showID, limit)
}

// ActiveMonthlySupporters counts the show's monthly donations still running.
func ActiveMonthlySupporters(ctx context.Context, db DBTX, showID int64) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(DISTINCT subscription_id) FROM donations
		WHERE show_id = $1 AND monthly AND status = 'paid' AND subscription_id IS NOT NULL`, showID).Scan(&n)
	return n, err
}
