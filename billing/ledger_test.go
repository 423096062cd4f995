package billing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a fresh database with a show and two parties besides the distributor.
type fixture struct {
	db                                 *pgxpool.Pool
	show                               int64
	creator, collaborator, distributor int64
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	f := fixture{db: db}
	var owner int64
	must(t, db.QueryRow(ctx, `INSERT INTO accounts (email, name, password_hash, role)
		VALUES ('ann@example.com', 'Ann', 'x', 'creator') RETURNING id`).Scan(&owner))
	f.show = newShow(t, db, owner, "ledger-show")
	f.creator = newParty(t, db, "creator", "Ann")
	f.collaborator = newParty(t, db, "collaborator", "Bob")
	must(t, db.QueryRow(ctx, `SELECT id FROM parties WHERE kind = 'distributor'`).Scan(&f.distributor))
	return f
}

func newShow(t *testing.T, db DBTX, owner int64, slug string) int64 {
	t.Helper()
	var id int64
	must(t, db.QueryRow(context.Background(), `INSERT INTO shows (owner_id, slug, title, currency)
		VALUES ($1, $2, 'A show', 'USD') RETURNING id`, owner, slug).Scan(&id))
	return id
}

func newParty(t *testing.T, db DBTX, kind, name string) int64 {
	t.Helper()
	var id int64
	must(t, db.QueryRow(context.Background(), `INSERT INTO parties (kind, name, email) VALUES ($1, $2, $3) RETURNING id`,
		kind, name, fmt.Sprintf("%s-%d@example.com", name, time.Now().UnixNano())).Scan(&id))
	return id
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func account(t *testing.T, db DBTX, kind AccountKind, currency string, party int64) int64 {
	t.Helper()
	id, err := Account(context.Background(), db, kind, currency, party)
	must(t, err)
	return id
}

// balance is an account's balance, 0 when the account does not exist yet.
func balance(t *testing.T, db DBTX, kind AccountKind, currency string, party int64) int64 {
	t.Helper()
	var b int64
	must(t, db.QueryRow(context.Background(), `
		SELECT coalesce(sum(p.amount), 0)::bigint FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
		WHERE a.kind = $1 AND a.currency = $2 AND a.party_id IS NOT DISTINCT FROM NULLIF($3, 0)`,
		kind, currency, party).Scan(&b))
	return b
}

// owed is what the platform owes a party in one currency, by PartyBalances.
func owed(t *testing.T, db DBTX, party int64, currency string) int64 {
	t.Helper()
	bs, err := PartyBalances(context.Background(), db, party)
	must(t, err)
	for _, b := range bs {
		if b.Currency == currency {
			return b.Amount
		}
	}
	return 0
}

func count(t *testing.T, db DBTX, query string, args ...any) int {
	t.Helper()
	var n int
	must(t, db.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// sqlState is the SQLSTATE of a PostgreSQL error, or "" for none.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestAccount(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		a := account(t, f.db, StripeClearing, "USD", 0)
		if b := account(t, f.db, StripeClearing, "usd", 0); b != a {
			t.Fatalf("second lookup gave account %d, first %d", b, a)
		}
		if e := account(t, f.db, StripeClearing, "EUR", 0); e == a {
			t.Fatal("EUR and USD clearing share an account")
		}
		p := account(t, f.db, PartyPayable, "USD", f.creator)
		if q := account(t, f.db, PartyPayable, "USD", f.collaborator); q == p {
			t.Fatal("two parties share a payable account")
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		ids := make([]int64, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() { ids[i], errs[i] = Account(ctx, f.db, PayoutsInTransit, "GBP", f.creator) })
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Fatalf("caller %d got account %d, %v; caller 0 got %d", i, ids[i], errs[i], ids[0])
			}
		}
		if n := count(t, f.db, `SELECT count(*) FROM ledger_accounts WHERE kind = 'payouts_in_transit'`); n != 1 {
			t.Fatalf("%d payouts_in_transit accounts, want 1", n)
		}
	})
	for _, tt := range []struct {
		name     string
		kind     AccountKind
		currency string
		party    int64
	}{
		{"ErrPartyRequired", PartyPayable, "USD", 0},
		{"ErrPartyNotAllowed", StripeClearing, "USD", f.creator},
		{"ErrUnknownKind", "cash", "USD", 0},
		{"ErrUnknownCurrency", Refunds, "XYZ", 0},
		{"ErrUnknownParty", PartyPayable, "USD", 1 << 40},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Account(ctx, f.db, tt.kind, tt.currency, tt.party); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Account(%s, %s, %d) = %v, want ErrInvalid", tt.kind, tt.currency, tt.party, err)
			}
		})
	}
}

func TestPost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	clearing := account(t, f.db, StripeClearing, "USD", 0)
	payable := account(t, f.db, PartyPayable, "USD", f.creator)
	entry := func(key string, amount int64) Entry {
		return Entry{Kind: EntryAdjustment, IdempotencyKey: key, OccurredAt: t0, Postings: []Posting{
			{AccountID: clearing, Amount: amount, Currency: "USD", Role: RoleAdjustment},
			{AccountID: payable, Amount: -amount, Currency: "USD", Role: RoleAdjustment},
		}}
	}

	t.Run("OK", func(t *testing.T) {
		if _, err := Post(ctx, f.db, entry("", 500)); err != nil {
			t.Fatal(err)
		}
		b, err := Balance(ctx, f.db, clearing)
		if err != nil || b != (Money{Amount: 500, Currency: "USD"}) {
			t.Fatalf("clearing balance = %v, %v; want 5.00 USD", b, err)
		}
		if got := owed(t, f.db, f.creator, "USD"); got != 500 {
			t.Fatalf("creator is owed %d, want 500", got)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		first, err := Post(ctx, f.db, entry("adjust:1", 100))
		if err != nil {
			t.Fatal(err)
		}
		again, err := Post(ctx, f.db, entry("adjust:1", 100))
		if !errors.Is(err, ErrDuplicate) || !errors.Is(err, ErrConflict) || again != first {
			t.Fatalf("second post = %d, %v; want %d, ErrDuplicate", again, err, first)
		}
		if n := count(t, f.db, `SELECT count(*) FROM postings WHERE entry_id = $1`, first); n != 2 {
			t.Fatalf("entry has %d postings, want 2", n)
		}
		if got := owed(t, f.db, f.creator, "USD"); got != 600 {
			t.Fatalf("creator is owed %d after a duplicate, want 600", got)
		}
	})
	t.Run("RolledBackWithCaller", func(t *testing.T) {
		tx, err := f.db.Begin(ctx)
		must(t, err)
		if _, err := Post(ctx, tx, entry("adjust:rollback", 100)); err != nil {
			t.Fatal(err)
		}
		must(t, tx.Rollback(ctx))
		if n := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE idempotency_key = 'adjust:rollback'`); n != 0 {
			t.Fatal("entry survived its caller's rollback")
		}
	})
	bad := []struct {
		name string
		e    Entry
	}{
		{"ErrUnbalanced", Entry{Kind: EntryAdjustment, OccurredAt: t0, Postings: []Posting{
			{AccountID: clearing, Amount: 100, Currency: "USD", Role: RoleAdjustment},
			{AccountID: payable, Amount: -99, Currency: "USD", Role: RoleAdjustment}}}},
		{"ErrOnePosting", Entry{Kind: EntryAdjustment, OccurredAt: t0, Postings: entry("", 1).Postings[:1]}},
		{"ErrZeroPosting", Entry{Kind: EntryAdjustment, OccurredAt: t0, Postings: []Posting{
			{AccountID: clearing, Amount: 0, Currency: "USD", Role: RoleAdjustment},
			{AccountID: payable, Amount: 0, Currency: "USD", Role: RoleAdjustment}}}},
		{"ErrNoTime", Entry{Kind: EntryAdjustment, Postings: entry("", 1).Postings}},
		{"ErrCurrencyNotTheAccounts", Entry{Kind: EntryAdjustment, OccurredAt: t0, Postings: []Posting{
			{AccountID: clearing, Amount: 100, Currency: "EUR", Role: RoleAdjustment},
			{AccountID: payable, Amount: -100, Currency: "EUR", Role: RoleAdjustment}}}},
		{"ErrOverflow", Entry{Kind: EntryAdjustment, OccurredAt: t0, Postings: []Posting{
			{AccountID: clearing, Amount: 1<<63 - 1, Currency: "USD", Role: RoleAdjustment},
			{AccountID: clearing, Amount: 1<<63 - 1, Currency: "USD", Role: RoleAdjustment},
			{AccountID: payable, Amount: -1 << 63, Currency: "USD", Role: RoleAdjustment},
			{AccountID: payable, Amount: -1 << 63, Currency: "USD", Role: RoleAdjustment}}}},
		{"ErrUnknownKind", Entry{Kind: "gift", OccurredAt: t0, Postings: entry("", 1).Postings}},
		{"ErrPaymentWithoutPlan", Entry{Kind: EntryPayment, OccurredAt: t0, Postings: entry("", 1).Postings}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := count(t, f.db, `SELECT count(*) FROM journal_entries`)
			if _, err := Post(ctx, f.db, tt.e); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Post = %v, want ErrInvalid", err)
			}
			if after := count(t, f.db, `SELECT count(*) FROM journal_entries`); after != before {
				t.Fatalf("a refused entry was written")
			}
		})
	}
	t.Run("ErrNotFoundBalance", func(t *testing.T) {
		if _, err := Balance(ctx, f.db, 1<<40); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Balance of a missing account = %v, want ErrNotFound", err)
		}
	})
}

// The schema itself refuses what Post refuses, for SQL that does not go through Post.
func TestLedgerSchema(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	clearing := account(t, f.db, StripeClearing, "USD", 0)
	payable := account(t, f.db, PartyPayable, "USD", f.creator)
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines([]int64{f.creator}, 10000))
	entryID, err := Post(ctx, f.db, Entry{Kind: EntryAdjustment, OccurredAt: t0, Postings: []Posting{
		{AccountID: clearing, Amount: 100, Currency: "USD", Role: RoleAdjustment},
		{AccountID: payable, Amount: -100, Currency: "USD", Role: RoleAdjustment}}})
	must(t, err)

	// inTx runs statements in one transaction and returns the first error, the commit's included.
	inTx := func(stmts ...string) error {
		return pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					return err
				}
			}
			return nil
		})
	}
	newEntry := `INSERT INTO journal_entries (kind, occurred_at) VALUES ('adjustment', now())`
	posting := func(amount int64, account int64, currency string) string {
		return fmt.Sprintf(`INSERT INTO postings (entry_id, account_id, currency, amount, role)
			VALUES (currval('journal_entries_id_seq'), %d, '%s', %d, 'adjustment')`, account, currency, amount)
	}

	t.Run("OK", func(t *testing.T) {
		if err := inTx(newEntry, posting(7, clearing, "USD"), posting(-7, payable, "USD")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrUnbalancedAtCommit", func(t *testing.T) {
		tx, err := f.db.Begin(ctx)
		must(t, err)
		defer tx.Rollback(ctx)
		for _, s := range []string{newEntry, posting(7, clearing, "USD"), posting(-6, payable, "USD")} {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("insert before commit: %v", err)
			}
		}
		err = tx.Commit(ctx)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != "journal_entries_balanced" {
			t.Fatalf("commit = %v, want a journal_entries_balanced check violation", err)
		}
	})
	t.Run("ErrNoPostings", func(t *testing.T) {
		if err := inTx(newEntry); sqlState(err) != "23514" {
			t.Fatalf("entry without postings: %v, want a check violation", err)
		}
	})
	t.Run("ErrCurrencyNotTheAccounts", func(t *testing.T) {
		if err := inTx(newEntry, posting(7, clearing, "EUR"), posting(-7, payable, "EUR")); sqlState(err) != "23503" {
			t.Fatalf("EUR postings on USD accounts: %v, want a foreign key violation", err)
		}
	})
	for _, tt := range []struct{ name, sql string }{
		{"ErrUpdatePosting", fmt.Sprintf(`UPDATE postings SET amount = amount * 2 WHERE entry_id = %d`, entryID)},
		{"ErrDeletePosting", fmt.Sprintf(`DELETE FROM postings WHERE entry_id = %d`, entryID)},
		{"ErrUpdateEntry", fmt.Sprintf(`UPDATE journal_entries SET description = 'x' WHERE id = %d`, entryID)},
		{"ErrDeleteEntry", fmt.Sprintf(`DELETE FROM journal_entries WHERE id = %d`, entryID)},
		{"ErrTruncate", `TRUNCATE postings, journal_entries CASCADE`},
		{"ErrUpdateAccount", fmt.Sprintf(`UPDATE ledger_accounts SET currency = 'EUR' WHERE id = %d`, clearing)},
		{"ErrUpdatePlanLine", `UPDATE share_plan_lines SET basis_points = basis_points`},
		// A committed entry is closed, even to postings that balance.
		{"ErrAddToCommittedEntry", fmt.Sprintf(`INSERT INTO postings (entry_id, account_id, currency, amount, role)
			VALUES (%[1]d, %[2]d, 'USD', 5, 'adjustment'), (%[1]d, %[3]d, 'USD', -5, 'adjustment')`, entryID, clearing, payable)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := inTx(tt.sql); sqlState(err) != "23001" {
				t.Fatalf("%s: %v, want a restrict violation", tt.sql, err)
			}
		})
	}
	t.Run("StripeEventAppliedOnce", func(t *testing.T) {
		if err := inTx(`INSERT INTO stripe_events (id, type, created, payload) VALUES ('evt_1', 'charge.succeeded', now(), '{}')`,
			`UPDATE stripe_events SET applied_at = now() WHERE id = 'evt_1'`); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{
			`UPDATE stripe_events SET applied_at = now() WHERE id = 'evt_1'`,
			`UPDATE stripe_events SET payload = '{"x": 1}' WHERE id = 'evt_1'`,
			`DELETE FROM stripe_events WHERE id = 'evt_1'`,
			`INSERT INTO stripe_events (id, type, created, payload) VALUES ('evt_1', 'charge.succeeded', now(), '{}')`,
		} {
			if err := inTx(s); err == nil {
				t.Errorf("%s succeeded on an applied event", s)
			}
		}
	})
	if b := balance(t, f.db, StripeClearing, "USD", 0); b != 107 {
		t.Fatalf("clearing = %d after the refused changes, want 107", b)
	}
}
