package billing

// The ledger is double-entry. Sign convention: a posting's amount is signed minor units,
// positive for a debit and negative for a credit, and the postings of every journal entry sum
// to zero per currency (the database checks it at commit). So an account's balance (the sum
// of its postings) is positive when it holds a debit balance:
//
//	stripe_clearing     +  gross collected through Stripe, less refunds, disputes and transfers
//	processor_fees      -  fees Stripe withheld (a contra account: clearing + fees = what Stripe holds)
//	party_payable       -  what the platform owes the party
//	payouts_in_transit  -  transfers to a party started but not yet settled
//	platform_revenue    -  the platform's own money beyond the distributor's share (debited when
//	                       the platform absorbs a fee larger than that share)
//	refunds, dispute_losses  +  what refunds and disputes cost the platform, not recovered from parties
//
// A payment of 10.00 USD with a 0.59 fee split 75/25 on net is therefore
// clearing +1000, processor_fees -59, creator payable -706, distributor payable -235.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrDuplicate reports that an entry with the same idempotency key was posted before; the
// function also returns the existing entry's id. It is a conflict for callers that map errors.
var ErrDuplicate = fmt.Errorf("%w: already posted", ErrConflict)

// AccountKind is the closed set of ledger account kinds (a CHECK in the schema).
type AccountKind string

// Account kinds; PartyPayable and PayoutsInTransit are per party, the others per platform.
const (
	StripeClearing   AccountKind = "stripe_clearing"
	ProcessorFees    AccountKind = "processor_fees"
	PartyPayable     AccountKind = "party_payable"
	PlatformRevenue  AccountKind = "platform_revenue"
	Refunds          AccountKind = "refunds"
	DisputeLosses    AccountKind = "dispute_losses"
	PayoutsInTransit AccountKind = "payouts_in_transit"
)

func (k AccountKind) perParty() (bool, error) {
	switch k {
	case PartyPayable, PayoutsInTransit:
		return true, nil
	case StripeClearing, ProcessorFees, PlatformRevenue, Refunds, DisputeLosses:
		return false, nil
	}
	return false, fmt.Errorf("%w: account kind %q", ErrInvalid, k)
}

// Journal entry kinds (a CHECK in the schema).
const (
	EntryPayment      = "payment"
	EntryRefund       = "refund"
	EntryRefundFailed = "refund_failed"
	EntryDispute      = "dispute"
	EntryDisputeWon   = "dispute_won"
	EntryPayout       = "payout"
	EntryAdjustment   = "adjustment"
)

// Posting roles say what a line is, so reversals and statements can tell a party's share from
// a fee it absorbed (a CHECK in the schema).
const (
	RoleGross       = "gross"
	RoleFee         = "fee"
	RoleShare       = "share"
	RoleFeeAbsorbed = "fee_absorbed"
	RoleLoss        = "loss"
	RoleTransfer    = "transfer"
	RoleAdjustment  = "adjustment"
)

// Entry is one business fact to post: a payment, a refund, a payout. Zero values of the
// optional references are stored as NULL.
type Entry struct {
	Kind            string
	Description     string
	IdempotencyKey  string    // "" for none; otherwise the fact can be posted once
	OccurredAt      time.Time // when the money moved
	StripeObjectID  string
	StripeEventID   string
	ShowID          int64
	Source          string // SourceDonations or SourceSponsorship for money received
	SharePlanID     int64
	ReversesEntryID int64
	Postings        []Posting
}

// Posting is one line of an entry: Amount is positive for a debit, negative for a credit,
// and Currency must be the account's.
type Posting struct {
	AccountID int64
	Amount    int64
	Currency  string
	Role      string
}

// Account returns the id of the ledger account for kind, currency and party (0 for the
// platform's own accounts), creating it on first use.
func Account(ctx context.Context, db DBTX, kind AccountKind, currency string, partyID int64) (int64, error) {
	perParty, err := kind.perParty()
	if err != nil {
		return 0, err
	}
	if perParty != (partyID != 0) {
		return 0, fmt.Errorf("%w: a %s account needs a party exactly when it is per party (party %d)", ErrInvalid, kind, partyID)
	}
	cur, err := LookupCurrency(currency)
	if err != nil {
		return 0, err
	}
	var party *int64 // NULL for the platform's own accounts
	if partyID != 0 {
		party = &partyID
	}
	// Read first: the account nearly always exists, and the read takes no lock. (IS NOT
	// DISTINCT FROM would not use the unique index, hence two forms of the query.)
	find := `SELECT id FROM ledger_accounts WHERE kind = $1 AND currency = $2 AND party_id = $3`
	findArgs := []any{kind, cur.Code, party}
	if party == nil {
		find = `SELECT id FROM ledger_accounts WHERE kind = $1 AND currency = $2 AND party_id IS NULL`
		findArgs = findArgs[:2]
	}
	var id int64
	err = db.QueryRow(ctx, find, findArgs...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		err = db.QueryRow(ctx, `
			INSERT INTO ledger_accounts (kind, currency, party_id) VALUES ($1, $2, $3)
			ON CONFLICT (kind, currency, party_id) DO NOTHING
			RETURNING id`, kind, cur.Code, party).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) { // created meanwhile by another transaction
			err = db.QueryRow(ctx, find, findArgs...).Scan(&id)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("ledger account %s %s party %d: %w", kind, cur.Code, partyID, dbError(err))
	}
	return id, nil
}

// accountKey names a ledger account as Account finds it.
type accountKey struct {
	kind     AccountKind
	currency string
	party    int64
}

// memo remembers what never changes once committed (the ids of ledger accounts, which are
// never changed or removed; share plans), so that posting needs no query to find them. One per
// database, shared by its goroutines.
type memo[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *memo[K, V]) get(k K) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

// add remembers what was found in a transaction, once it has committed.
func (c *memo[K, V]) add(found map[K]V) {
	if len(found) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[K]V, len(found))
	}
	for k, v := range found {
		c.m[k] = v
	}
}

// accountLookup finds account ids for one transaction: the committed ones from known, the
// others with Account, noting them in found for known once the transaction commits (an
// account created by a transaction that rolls back must not be remembered).
type accountLookup struct {
	known *memo[accountKey, int64]
	found map[accountKey]int64
}

func (l *accountLookup) id(ctx context.Context, db DBTX, kind AccountKind, currency string, partyID int64) (int64, error) {
	k := accountKey{kind, currency, partyID}
	if id, ok := l.known.get(k); ok {
		return id, nil
	}
	if id, ok := l.found[k]; ok {
		return id, nil
	}
	id, err := Account(ctx, db, kind, currency, partyID)
	if err != nil {
		return 0, err
	}
	if l.found == nil {
		l.found = make(map[accountKey]int64)
	}
	l.found[k] = id
	return id, nil
}

// Post writes an entry and its postings in one transaction and returns the entry's id. If an
// entry with the same idempotency key exists, it posts nothing and returns that entry's id
// with ErrDuplicate. The entry is checked here as the database will check it at commit.
func Post(ctx context.Context, db DBTX, e Entry) (int64, error) {
	if err := e.validate(); err != nil {
		return 0, err
	}
	var id int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var err error
		id, err = post(ctx, tx, e)
		return err
	})
	return id, err
}

// post is Post inside the caller's transaction, without a savepoint of its own: the caller
// rolls back (to its own savepoint) on an error other than ErrDuplicate.
func post(ctx context.Context, tx pgx.Tx, e Entry) (int64, error) {
	if err := e.validate(); err != nil {
		return 0, err
	}
	n := len(e.Postings)
	accounts, currencies, amounts, roles := make([]int64, n), make([]string, n), make([]int64, n), make([]string, n)
	for i, p := range e.Postings {
		accounts[i], currencies[i], amounts[i], roles[i] = p.AccountID, p.Currency, p.Amount, p.Role
	}
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO journal_entries (kind, description, idempotency_key, occurred_at, stripe_object_id,
			stripe_event_id, show_id, source, share_plan_id, reverses_entry_id)
		VALUES ($1, $2, NULLIF($3, ''), $4, NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, 0), NULLIF($8, ''),
			NULLIF($9, 0), NULLIF($10, 0))
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING id`,
		e.Kind, e.Description, e.IdempotencyKey, e.OccurredAt, e.StripeObjectID,
		e.StripeEventID, e.ShowID, e.Source, e.SharePlanID, e.ReversesEntryID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		if err := tx.QueryRow(ctx, `SELECT id FROM journal_entries WHERE idempotency_key = $1`,
			e.IdempotencyKey).Scan(&id); err != nil {
			return 0, fmt.Errorf("post %s entry: %w", e.Kind, dbError(err))
		}
		return id, fmt.Errorf("post %s entry %q: %w", e.Kind, e.IdempotencyKey, ErrDuplicate)
	}
	if err == nil {
		_, err = tx.Exec(ctx, `
			INSERT INTO postings (entry_id, account_id, currency, amount, role)
			SELECT $1, a, c, m, r FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[]) AS t(a, c, m, r)`,
			id, accounts, currencies, amounts, roles)
	}
	if err != nil {
		return 0, fmt.Errorf("post %s entry: %w", e.Kind, dbError(err))
	}
	return id, nil
}

// postMany is post for many entries at once, in two statements, inside the caller's
// transaction. Their idempotency keys must be set and distinct. It returns the ids of the
// entries posted, by key: a key posted before is left out, as post answers ErrDuplicate.
func postMany(ctx context.Context, tx pgx.Tx, entries []Entry) (map[string]int64, error) {
	n := len(entries)
	kinds, descs, keys, objects, events, sources := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	occurred, shows, plans, reverses := make([]time.Time, n), make([]int64, n), make([]int64, n), make([]int64, n)
	seen := make(map[string]bool, n)
	for i, e := range entries {
		if err := e.validate(); err != nil {
			return nil, err
		}
		if e.IdempotencyKey == "" || seen[e.IdempotencyKey] {
			return nil, fmt.Errorf("%w: entries to post together need distinct idempotency keys (%q)", ErrInvalid, e.IdempotencyKey)
		}
		seen[e.IdempotencyKey] = true
		kinds[i], descs[i], keys[i], objects[i], events[i], sources[i] = e.Kind, e.Description, e.IdempotencyKey,
			e.StripeObjectID, e.StripeEventID, e.Source
		occurred[i], shows[i], plans[i], reverses[i] = e.OccurredAt, e.ShowID, e.SharePlanID, e.ReversesEntryID
	}
	rows, _ := tx.Query(ctx, `
		INSERT INTO journal_entries (kind, description, idempotency_key, occurred_at, stripe_object_id,
			stripe_event_id, show_id, source, share_plan_id, reverses_entry_id)
		SELECT k, d, ik, o, NULLIF(so, ''), NULLIF(se, ''), NULLIF(sh, 0), NULLIF(src, ''), NULLIF(pl, 0), NULLIF(rv, 0)
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::bigint[],
			$8::text[], $9::bigint[], $10::bigint[]) AS t(k, d, ik, o, so, se, sh, src, pl, rv)
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING idempotency_key, id`,
		kinds, descs, keys, occurred, objects, events, shows, sources, plans, reverses)
	ids := make(map[string]int64, n)
	var key string
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&key, &id}, func() error { ids[key] = id; return nil }); err != nil {
		return nil, fmt.Errorf("post %d entries: %w", n, dbError(err))
	}
	var entryIDs, accounts, amounts []int64
	var currencies, roles []string
	for _, e := range entries {
		id, ok := ids[e.IdempotencyKey]
		if !ok {
			continue
		}
		for _, p := range e.Postings {
			entryIDs, accounts, amounts = append(entryIDs, id), append(accounts, p.AccountID), append(amounts, p.Amount)
			currencies, roles = append(currencies, p.Currency), append(roles, p.Role)
		}
	}
	if len(entryIDs) > 0 {
		if _, err := tx.Exec(ctx, `
			INSERT INTO postings (entry_id, account_id, currency, amount, role)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[])`,
			entryIDs, accounts, currencies, amounts, roles); err != nil {
			return nil, fmt.Errorf("post %d entries: %w", n, dbError(err))
		}
	}
	return ids, nil
}

// validate checks what the schema checks, so that a bad entry fails with a message here
// rather than at the caller's commit.
func (e Entry) validate() error {
	if e.OccurredAt.IsZero() {
		return fmt.Errorf("%w: %s entry has no time", ErrInvalid, e.Kind)
	}
	if len(e.Postings) < 2 {
		return fmt.Errorf("%w: %s entry has %d postings, not at least 2", ErrInvalid, e.Kind, len(e.Postings))
	}
	totals := map[string]int64{}
	for i, p := range e.Postings {
		if p.Amount == 0 {
			return fmt.Errorf("%w: %s entry posting %d is zero", ErrInvalid, e.Kind, i+1)
		}
		t := totals[p.Currency]
		if (p.Amount > 0 && t > math.MaxInt64-p.Amount) || (p.Amount < 0 && t < math.MinInt64-p.Amount) {
			return fmt.Errorf("%w: %s entry overflows in %s", ErrInvalid, e.Kind, p.Currency)
		}
		totals[p.Currency] = t + p.Amount
	}
	for cur, t := range totals {
		if t != 0 {
			return fmt.Errorf("%w: %s entry does not balance: %s postings sum to %d", ErrInvalid, e.Kind, cur, t)
		}
	}
	return nil
}

// Balance is the sum of an account's postings: positive for a debit balance.
func Balance(ctx context.Context, db DBTX, accountID int64) (Money, error) {
	var m Money
	err := db.QueryRow(ctx, `
		SELECT a.currency, coalesce((SELECT sum(amount) FROM postings WHERE account_id = a.id), 0)::bigint
		FROM ledger_accounts a WHERE a.id = $1`, accountID).Scan(&m.Currency, &m.Amount)
	if err != nil {
		return Money{}, fmt.Errorf("balance of ledger account %d: %w", accountID, dbError(err))
	}
	return m, nil
}

// PartyBalances is what the platform owes a party, one amount per currency in code order:
// its party_payable balances with the sign turned round, so positive means owed to the party.
func PartyBalances(ctx context.Context, db DBTX, partyID int64) ([]Money, error) {
	return findAll[Money](ctx, db, fmt.Sprintf("balances of party %d", partyID), `
		SELECT a.currency, (-coalesce(sum(p.amount), 0))::bigint AS amount
		FROM ledger_accounts a LEFT JOIN postings p ON p.account_id = a.id
		WHERE a.kind = 'party_payable' AND a.party_id = $1
		GROUP BY a.currency ORDER BY a.currency`, partyID)
}
