package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// fixture is what the load leaves: the creator party with the payments and the partner who reads
// its statement.
type fixture struct {
	party    billing.Party
	partner  catalog.Account
	first    time.Time // the first payment's day
	last     time.Time // the last payment's day
	payments int
}

// load writes n payments of one show split 75/25 between a creator and the distributor, spread
// evenly over a year, with a refund for one payment in a hundred and a payout at each month's
// end. It writes in bulk with the per-row ledger checks off, so the postings are built here as
// PostPayment would build them under the net policy, and the ledger's invariants are checked
// afterwards in one query instead of per row.
func load(ctx context.Context, db *pgxpool.Pool, n int, start time.Time) (fixture, error) {
	fx := fixture{payments: n, first: start}
	partner, err := catalog.CreateAccount(ctx, db, catalog.SignUp{Email: "bench-partner@example.com", Name: "Bench Partner",
		Password: "benchmark password", Role: catalog.RolePartner})
	if err != nil {
		return fx, err
	}
	fx.partner = partner
	owner, err := catalog.CreateAccount(ctx, db, catalog.SignUp{Email: "bench-owner@example.com", Name: "Bench Owner",
		Password: "benchmark password", Role: catalog.RoleCreator})
	if err != nil {
		return fx, err
	}
	show, err := catalog.CreateShow(ctx, db, owner.ID, catalog.ShowInput{Slug: "bench-show", Title: "Bench Show", Currency: "USD"})
	if err != nil {
		return fx, err
	}
	creator, err := billing.EnsureParty(ctx, db, billing.PartyCreator, "Bench Partner", partner.Email, &partner.ID)
	if err != nil {
		return fx, err
	}
	fx.party = creator
	dist, err := billing.DistributorParty(ctx, db)
	if err != nil {
		return fx, err
	}
	plan, err := billing.CreatePlan(ctx, db, show.ID, billing.SourceAll, billing.FeePolicyNet, start.Add(-time.Hour),
		[]billing.PlanLine{{PartyID: creator.ID, BasisPoints: 7500}, {PartyID: dist.ID, BasisPoints: 2500}}, nil)
	if err != nil {
		return fx, err
	}
	acct := map[string]int64{}
	for _, a := range []struct {
		name  string
		kind  billing.AccountKind
		party int64
	}{{"clearing", billing.StripeClearing, 0}, {"fees", billing.ProcessorFees, 0}, {"refunds", billing.Refunds, 0},
		{"creator", billing.PartyPayable, creator.ID}, {"dist", billing.PartyPayable, dist.ID}} {
		if acct[a.name], err = billing.Account(ctx, db, a.kind, "USD", a.party); err != nil {
			return fx, err
		}
	}
	// The per-row checks are what make a bulk load slow; the trigger that keeps party_entries
	// stays on, so statements read what the real posting path writes.
	if _, err := db.Exec(ctx, `ALTER TABLE postings DISABLE TRIGGER postings_open_entry, DISABLE TRIGGER postings_balanced;
		ALTER TABLE journal_entries DISABLE TRIGGER journal_entries_balanced`); err != nil {
		return fx, err
	}
	step := 365 * 24 * time.Hour / time.Duration(n)
	fx.last = start.Add(step * time.Duration(n-1))
	const batch = 100_000
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n) - 1
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			// gross 5.00 to 49.99, fee 2.9% + 0.30, net split 75/25 (creator first, as the plan).
			_, err := tx.Exec(ctx, `
				WITH e AS (
					INSERT INTO journal_entries (kind, description, idempotency_key, occurred_at, show_id, source, share_plan_id, created_xact)
					SELECT 'payment', 'Donation', 'bench:' || i, $3::timestamptz + i * $4::interval, $5, 'donations', $6, pg_current_xact_id()
					FROM generate_series($1::int, $2::int) i
					RETURNING id
				), m AS (
					SELECT id, 500 + (id * 7919) % 4500 AS g FROM e
				), s AS (
					SELECT id, g, (g * 29 / 1000 + 30) AS f FROM m
				)
				INSERT INTO postings (entry_id, account_id, currency, amount, role)
				SELECT s.id, x.account, 'USD', x.amount, x.role FROM s, LATERAL (VALUES
					($7::bigint, s.g, 'gross'), ($8::bigint, -s.f, 'fee'),
					($9::bigint, -((s.g - s.f) - (s.g - s.f) / 4), 'share'), ($10::bigint, -((s.g - s.f) / 4), 'share')
				) AS x(account, amount, role) WHERE x.amount <> 0`,
				lo, hi, start, step.String(), show.ID, plan.ID, acct["clearing"], acct["fees"], acct["creator"], acct["dist"])
			return err
		})
		if err != nil {
			return fx, fmt.Errorf("load payments %d-%d: %w", lo, hi, err)
		}
	}
	// Refunds of one payment in a hundred, a day later, in full: each party gives back its share
	// and the platform loses the fee.
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			WITH p AS (
				SELECT e.id, e.occurred_at, e.show_id, e.share_plan_id,
				       max(q.amount) FILTER (WHERE q.account_id = $1) AS g,
				       -max(q.amount) FILTER (WHERE q.account_id = $2) AS f,
				       -max(q.amount) FILTER (WHERE q.account_id = $3) AS c,
				       -max(q.amount) FILTER (WHERE q.account_id = $4) AS d
				FROM journal_entries e JOIN postings q ON q.entry_id = e.id
				WHERE e.kind = 'payment' AND e.id % 100 = 7 AND e.occurred_at < $6::timestamptz - interval '1 day'
				GROUP BY e.id
			), r AS (
				INSERT INTO journal_entries (kind, description, idempotency_key, occurred_at, show_id, source, share_plan_id,
					reverses_entry_id, created_xact)
				SELECT 'refund', 'Refund', 'bench-refund:' || p.id, p.occurred_at + interval '1 day', p.show_id, 'donations',
					p.share_plan_id, p.id, pg_current_xact_id() FROM p
				RETURNING id, reverses_entry_id
			)
			INSERT INTO postings (entry_id, account_id, currency, amount, role)
			SELECT r.id, x.account, 'USD', x.amount, x.role FROM r JOIN p ON p.id = r.reverses_entry_id, LATERAL (VALUES
				($1::bigint, -p.g, 'gross'), ($3::bigint, p.c, 'share'), ($4::bigint, p.d, 'share'), ($5::bigint, p.f, 'loss')
			) AS x(account, amount, role) WHERE x.amount <> 0`,
			acct["clearing"], acct["fees"], acct["creator"], acct["dist"], acct["refunds"], fx.last)
		return err
	})
	if err != nil {
		return fx, fmt.Errorf("load refunds: %w", err)
	}
	if _, err := db.Exec(ctx, `ALTER TABLE postings ENABLE TRIGGER postings_open_entry, ENABLE TRIGGER postings_balanced;
		ALTER TABLE journal_entries ENABLE TRIGGER journal_entries_balanced`); err != nil {
		return fx, err
	}
	// A payout of the creator's balance at the end of each month.
	for m := start; m.Before(fx.last); m = m.AddDate(0, 1, 0) {
		end := time.Date(m.Year(), m.Month()+1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Minute)
		var owed int64
		if err := db.QueryRow(ctx, `SELECT -coalesce(sum(p.amount), 0) FROM postings p JOIN journal_entries e ON e.id = p.entry_id
			WHERE p.account_id = $1 AND e.occurred_at <= $2`, acct["creator"], end).Scan(&owed); err != nil {
			return fx, err
		}
		if owed <= 0 {
			continue
		}
		if _, err := billing.Post(ctx, db, billing.Entry{Kind: billing.EntryPayout, Description: "Payout for " + m.Format("2006-01"),
			IdempotencyKey: "bench-payout:" + m.Format("2006-01"), OccurredAt: end, Postings: []billing.Posting{
				{AccountID: acct["creator"], Amount: owed, Currency: "USD", Role: billing.RoleTransfer},
				{AccountID: acct["clearing"], Amount: -owed, Currency: "USD", Role: billing.RoleTransfer}}}); err != nil {
			return fx, err
		}
	}
	// The checks the triggers would have made, once for the whole load.
	var unbalanced int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id, currency
		HAVING sum(amount) <> 0 OR count(*) < 2) x`).Scan(&unbalanced); err != nil {
		return fx, err
	}
	if unbalanced != 0 {
		return fx, fmt.Errorf("load: %d entries do not balance", unbalanced)
	}
	for _, t := range []string{"journal_entries", "postings", "party_entries"} {
		if _, err := db.Exec(ctx, `VACUUM ANALYZE `+t); err != nil {
			return fx, err
		}
	}
	return fx, nil
}

// loaded finds the fixture a load left in a kept database.
func loaded(ctx context.Context, db *pgxpool.Pool) (fixture, error) {
	var fx fixture
	var accountID, partyID int64
	err := db.QueryRow(ctx, `SELECT a.id, p.id FROM accounts a JOIN parties p ON p.account_id = a.id
		WHERE a.email = 'bench-partner@example.com'`).Scan(&accountID, &partyID)
	if err != nil {
		return fx, fmt.Errorf("no benchmark party: %w", err)
	}
	if fx.partner, err = catalog.FindAccountByID(ctx, db, accountID); err != nil {
		return fx, err
	}
	if fx.party, err = billing.FindParty(ctx, db, partyID); err != nil {
		return fx, err
	}
	err = db.QueryRow(ctx, `SELECT count(*), min(occurred_at), max(occurred_at) FROM journal_entries
		WHERE kind = 'payment' AND idempotency_key LIKE 'bench:%'`).Scan(&fx.payments, &fx.first, &fx.last)
	if err != nil || fx.payments == 0 {
		return fx, fmt.Errorf("no benchmark payments: %v", err)
	}
	fx.first, fx.last = fx.first.UTC().Truncate(24*time.Hour), fx.last.UTC()
	return fx, nil
}
