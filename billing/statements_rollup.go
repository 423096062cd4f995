package billing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fanseed/fanseed/periodic"
	"github.com/jackc/pgx/v5"
)

// rollupLag is how old a day must be before it is summed into party_days: no transaction that
// posts to it can still be open.
const rollupLag = 48 * time.Hour

// RollupStatementDays sums the party entries of every day that is over into party_days, and
// sums again the days that entries arrived for since. Statements then read days, not payments.
// Several processes may call it; they take turns.
func RollupStatementDays(ctx context.Context, db DBTX, now time.Time) error {
	until := now.UTC().Add(-rollupLag).Truncate(24 * time.Hour)
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// Waits for every transaction that has read the state (the dirty-marking trigger) to
		// finish, and holds back new ones until this one commits, so no entry slips between the
		// days summed here and the dirty marks.
		if _, err := tx.Exec(ctx, `LOCK TABLE party_days_state IN ACCESS EXCLUSIVE MODE`); err != nil {
			return err
		}
		var from time.Time
		err := tx.QueryRow(ctx, `SELECT coalesce((SELECT rolled_until FROM party_days_state), date '0001-01-01')`).Scan(&from)
		if err != nil {
			return err
		}
		if until.Before(from) {
			until = from
		}
		var accounts []int64
		var days []time.Time
		rows, _ := tx.Query(ctx, `DELETE FROM party_days_dirty WHERE day < $1 RETURNING account_id, day`, until)
		var a int64
		var d time.Time
		if _, err := pgx.ForEachRow(rows, []any{&a, &d}, func() error {
			accounts, days = append(accounts, a), append(days, d)
			return nil
		}); err != nil {
			return fmt.Errorf("dirty statement days: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM party_days p USING unnest($1::bigint[], $2::date[]) AS x(account_id, day)
			WHERE p.account_id = x.account_id AND p.day = x.day`, accounts, days); err != nil {
			return fmt.Errorf("clear dirty statement days: %w", err)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO party_days (account_id, day, currency, kind, show_id, source, entries, share, absorbed, amount, gross, fee)
			SELECT e.account_id, e.day, e.currency, e.kind, coalesce(e.show_id, 0), coalesce(e.source, ''),
			       count(*), sum(e.share), sum(e.absorbed), sum(e.amount), sum(e.gross), sum(e.fee)
			FROM party_entries e
			WHERE (e.day >= $2 AND e.day < $1)
			   OR (e.day < $2 AND (e.account_id, e.day) IN (SELECT * FROM unnest($3::bigint[], $4::date[])))
			GROUP BY e.account_id, e.day, e.currency, e.kind, coalesce(e.show_id, 0), coalesce(e.source, '')`,
			until, from, accounts, days)
		if err != nil {
			return fmt.Errorf("roll up statement days: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO party_days_state (rolled_until) VALUES ($1)
			ON CONFLICT (id) DO UPDATE SET rolled_until = EXCLUDED.rolled_until`, until)
		return err
	})
}

// RollupStatementDaysEvery runs RollupStatementDays now and then every interval until ctx ends.
func RollupStatementDaysEvery(ctx context.Context, db DBTX, every time.Duration, logger *slog.Logger) {
	periodic.Loop{Name: "roll up statement days", Every: every, Now: true, Log: logger}.Run(ctx, func(ctx context.Context) error {
		return RollupStatementDays(ctx, db, time.Now())
	})
}
