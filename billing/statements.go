package billing

// A statement is one party's account with the platform over a period, read from its
// party_payable ledger accounts (one per currency): the opening balance, what the period added
// and took away, and the closing balance, all signed so that positive is owed to the party.
//
// Granularity. The page and the JSON show money received as one line per day, show and source
// (donations or sponsorship), with the number of payments and their gross, Stripe's fee, the
// party's share, any fee it absorbed and the amount credited; refunds, disputes and won disputes
// likewise per day, show, source and kind; payouts and manual adjustments one line per entry.
// So a statement's size grows with days and shows, not payments, and the lines are summed by
// PostgreSQL. The CSV has one row per posting, streamed as it is read.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxStatementYears bounds a custom statement range, so that one request cannot ask the
// database for a whole history of postings by accident.
const MaxStatementYears = 5

// Range is a statement period: whole UTC days from From to To, both included.
type Range struct {
	From time.Time
	To   time.Time
}

// End is the first instant after the range.
func (r Range) End() time.Time { return r.To.AddDate(0, 0, 1) }

// String is the range as the query string writes it.
func (r Range) String() string {
	return r.From.Format(time.DateOnly) + " to " + r.To.Format(time.DateOnly)
}

// Period is the month the range covers exactly ("2026-11"), or "".
func (r Range) Period() string {
	if r.From.Day() == 1 && r.From.AddDate(0, 1, -1).Equal(r.To) {
		return r.From.Format("2006-01")
	}
	return ""
}

// MonthRange is the calendar month holding t (UTC).
func MonthRange(t time.Time) Range {
	t = t.UTC()
	from := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return Range{From: from, To: from.AddDate(0, 1, -1)}
}

// ParseRange reads a statement period from a query: period=2026-11, or from=2026-01-01 with
// to=2026-03-31 (to defaults to today), or nothing for the current month. A reversed range,
// one longer than MaxStatementYears, or a malformed date is ErrInvalid with the reason.
func ParseRange(period, from, to string, now time.Time) (Range, error) {
	period, from, to = strings.TrimSpace(period), strings.TrimSpace(from), strings.TrimSpace(to)
	switch {
	case period != "" && (from != "" || to != ""):
		return Range{}, fmt.Errorf("%w: give either a period or from and to, not both", ErrInvalid)
	case period != "":
		if !ValidPeriod(period) {
			return Range{}, fmt.Errorf("%w: period %q is not a month like 2026-11", ErrInvalid, period)
		}
		t, err := time.Parse("2006-01", period)
		if err != nil {
			return Range{}, fmt.Errorf("%w: period %q is not a month like 2026-11", ErrInvalid, period)
		}
		return MonthRange(t), nil
	case from == "" && to == "":
		return MonthRange(now), nil
	case from == "":
		return Range{}, fmt.Errorf("%w: a range with an end needs a start (from=YYYY-MM-DD)", ErrInvalid)
	}
	f, err := time.Parse(time.DateOnly, from)
	if err != nil {
		return Range{}, fmt.Errorf("%w: from %q is not a date like 2026-11-01", ErrInvalid, from)
	}
	t := time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day(), 0, 0, 0, 0, time.UTC)
	if to != "" {
		if t, err = time.Parse(time.DateOnly, to); err != nil {
			return Range{}, fmt.Errorf("%w: to %q is not a date like 2026-11-30", ErrInvalid, to)
		}
	}
	if t.Before(f) {
		return Range{}, fmt.Errorf("%w: the range is reversed: from %s is after to %s", ErrInvalid,
			f.Format(time.DateOnly), t.Format(time.DateOnly))
	}
	if t.AddDate(0, 0, 1).After(f.AddDate(MaxStatementYears, 0, 0)) {
		return Range{}, fmt.Errorf("%w: the range from %s to %s is over %d years; ask for a shorter one", ErrInvalid,
			f.Format(time.DateOnly), t.Format(time.DateOnly), MaxStatementYears)
	}
	return Range{From: f, To: t}, nil
}

// Viewer is who asks for a statement, as the caller knows them: billing does not read accounts.
type Viewer struct {
	AccountID int64
	Email     string
	Admin     bool
	Partner   bool // an account an operator created for a partner, so its email is vouched for
}

// visibleParties is the SQL condition (on parties p, with $1 account id, $2 email, $3 admin,
// $4 partner) for the parties whose statements a viewer may read: every party for an admin;
// the party linked to the account (parties.account_id: a creator's own party, or one whose
// invitation the account accepted); and for a partner account, the party with its email
// (operators create partner accounts, so that email is vouched for, whereas anyone can sign
// up with any address). Never another party of the viewer's show.
const visibleParties = `($3 OR p.account_id = $1
	OR ($4 AND p.kind <> 'distributor' AND lower(p.email) = lower($2)))`

// StatementParties lists the parties whose statements the viewer may read, by name.
func StatementParties(ctx context.Context, db DBTX, v Viewer) ([]Party, error) {
	return findAll[Party](ctx, db, "statement parties", `SELECT `+partyColumns+` FROM parties p WHERE `+visibleParties+`
		ORDER BY p.kind = 'distributor' DESC, lower(p.name), p.id`, v.AccountID, v.Email, v.Admin, v.Partner)
}

// StatementParty loads a party whose statement the viewer may read: ErrNotFound when there is
// no such party, ErrStatementForbidden when it is someone else's.
func StatementParty(ctx context.Context, db DBTX, v Viewer, partyID int64) (Party, error) {
	var p Party
	var visible bool
	err := db.QueryRow(ctx, `SELECT `+partyColumns+`, coalesce(`+visibleParties+`, false) FROM parties p WHERE p.id = $5`,
		v.AccountID, v.Email, v.Admin, v.Partner, partyID).
		Scan(&p.ID, &p.Kind, &p.Name, &p.Email, &p.AccountID, &p.StripeAccountID, &visible)
	if err != nil {
		return Party{}, fmt.Errorf("party %d: %w", partyID, dbError(err))
	}
	if !visible {
		return Party{}, fmt.Errorf("party %d: %w", partyID, ErrStatementForbidden)
	}
	return p, nil
}

// ErrStatementForbidden is a statement asked for by someone who may not read it.
var ErrStatementForbidden = errors.New("not your statement")

// Statement is a party's account over a range, one section per currency it has money in.
type Statement struct {
	Party      Party
	Range      Range
	Currencies []CurrencyStatement
}

// CurrencyStatement is a statement in one currency: Closing = Opening + Change, Change being
// the sum of every line's Amount.
type CurrencyStatement struct {
	Currency    string
	Opening     int64
	Sources     []StatementLine // payments received, per day, show and source
	Adjustments []StatementLine // refunds, disputes and won disputes, per day, show, source and kind
	Payouts     []StatementLine // transfers to the party, per entry
	Other       []StatementLine // manual adjustments, per entry
	Closing     int64
}

// StatementLine is a group of entries. Gross and Fee are the whole payments' (what the payer
// paid, what Stripe withheld; negative gross for money returned); Share is the party's part,
// FeeAbsorbed what it gave up to pay fees, and Amount what the line changed its balance by,
// positive when credited.
type StatementLine struct {
	Day         time.Time
	Kind        string // an entry kind: payment, refund, refund_failed, dispute, dispute_won, payout, adjustment
	ShowID      int64
	ShowTitle   string
	Source      string
	EntryID     int64 // payouts and adjustments only
	Description string
	Count       int64
	Gross       int64
	Fee         int64
	Share       int64
	FeeAbsorbed int64
	Amount      int64
}

// Totals sums a section's lines.
func Totals(lines []StatementLine) StatementLine {
	var t StatementLine
	for _, l := range lines {
		t.Count += l.Count
		t.Gross += l.Gross
		t.Fee += l.Fee
		t.Share += l.Share
		t.FeeAbsorbed += l.FeeAbsorbed
		t.Amount += l.Amount
	}
	return t
}

// Change is what the period added to the balance: the sum of every line.
func (c CurrencyStatement) Change() int64 {
	return Totals(c.Sources).Amount + Totals(c.Adjustments).Amount + Totals(c.Payouts).Amount + Totals(c.Other).Amount
}

// payableAccounts returns the party's payable accounts by currency.
func payableAccounts(ctx context.Context, db DBTX, partyID int64) (ids []int64, currencies []string, err error) {
	rows, _ := db.Query(ctx, `SELECT id, currency FROM ledger_accounts WHERE kind = 'party_payable' AND party_id = $1
		ORDER BY currency`, partyID)
	var id int64
	var cur string
	_, err = pgx.ForEachRow(rows, []any{&id, &cur}, func() error {
		ids, currencies = append(ids, id), append(currencies, cur)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("accounts of party %d: %w", partyID, dbError(err))
	}
	return ids, currencies, nil
}

// BuildStatement reads a party's statement for a range from the ledger, summed in SQL in one
// pass: its cost grows with the party's entries up to the range's end, its size with the days
// and shows in the range.
func BuildStatement(ctx context.Context, db DBTX, party Party, r Range) (Statement, error) {
	st := Statement{Party: party, Range: r}
	accounts, currencies, err := payableAccounts(ctx, db, party.ID)
	if err != nil || len(accounts) == 0 {
		return st, err
	}
	byCur := map[string]*CurrencyStatement{}
	for _, c := range currencies {
		st.Currencies = append(st.Currencies, CurrencyStatement{Currency: c})
	}
	for i := range st.Currencies {
		byCur[st.Currencies[i].Currency] = &st.Currencies[i]
	}

	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// The sums are over many rows but cheap per row: compiling them (JIT) costs more than it saves.
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return dbError(err)
		}
		return statementLines(ctx, tx, &st, byCur, accounts)
	})
	if err != nil {
		return st, err
	}
	// A currency with nothing before or in the range says nothing.
	st.Currencies = slices.DeleteFunc(st.Currencies, func(c CurrencyStatement) bool {
		return c.Opening == 0 && c.Closing == 0 && len(c.Sources)+len(c.Adjustments)+len(c.Payouts)+len(c.Other) == 0
	})
	return st, nil
}

// statementLines fills in a statement's balances and lines.
func statementLines(ctx context.Context, db DBTX, st *Statement, byCur map[string]*CurrencyStatement, accounts []int64) error {
	r, party := st.Range, st.Party
	rolled, err := statementRolled(ctx, db)
	if err != nil {
		return err
	}
	openings, err := openingBalances(ctx, db, accounts, r.From, rolled)
	if err != nil {
		return fmt.Errorf("opening balance of party %d: %w", party.ID, err)
	}
	for cur, opening := range openings {
		byCur[cur].Opening = opening
	}
	// The lines, summed in one pass over the party's entries in the range (party_entries, kept
	// by a trigger beside the postings), and the payouts and adjustments one by one.
	rows, _ := db.Query(ctx, `
		SELECT currency, kind, day, show_id, source, 0::bigint, '',
		       sum(n)::bigint, sum(gross)::bigint, (-sum(fee))::bigint, (-sum(share))::bigint, sum(absorbed)::bigint,
		       (-sum(amount))::bigint
		FROM (
			SELECT d.currency, d.kind, d.day, d.show_id, d.source, d.entries AS n, d.gross, d.fee, d.share, d.absorbed, d.amount
			FROM party_days d
			WHERE d.account_id = ANY($1) AND d.day BETWEEN $2 AND $3 AND d.day < $4 AND d.kind NOT IN ('payout', 'adjustment')
			  AND NOT EXISTS (SELECT 1 FROM party_days_dirty x WHERE x.account_id = d.account_id AND x.day = d.day)
			UNION ALL
			SELECT e.currency, e.kind, e.day, coalesce(e.show_id, 0), coalesce(e.source, ''), 1, e.gross, e.fee, e.share, e.absorbed, e.amount
			FROM party_entries e
			WHERE e.account_id = ANY($1) AND e.day BETWEEN greatest($2::date, $4::date) AND $3 AND e.kind NOT IN ('payout', 'adjustment')
			UNION ALL
			SELECT e.currency, e.kind, e.day, coalesce(e.show_id, 0), coalesce(e.source, ''), 1, e.gross, e.fee, e.share, e.absorbed, e.amount
			FROM party_days_dirty x JOIN party_entries e ON e.account_id = x.account_id AND e.day = x.day
			WHERE x.account_id = ANY($1) AND x.day BETWEEN $2 AND $3 AND x.day < $4 AND e.kind NOT IN ('payout', 'adjustment')
		) t
		GROUP BY currency, kind, day, show_id, source
		UNION ALL
		SELECT currency, kind, day, coalesce(show_id, 0), coalesce(source, ''), entry_id, description,
		       1, gross, -fee, -share, absorbed, -amount
		FROM party_entries
		WHERE account_id = ANY($1) AND day BETWEEN $2 AND $3 AND kind IN ('payout', 'adjustment')
		ORDER BY 1, 3, 4, 5, 2, 6`, accounts, r.From, r.To, rolled)
	var cur string
	var l StatementLine
	showIDs := map[int64]bool{}
	if _, err := pgx.ForEachRow(rows, []any{&cur, &l.Kind, &l.Day, &l.ShowID, &l.Source, &l.EntryID,
		&l.Description, &l.Count, &l.Gross, &l.Fee, &l.Share, &l.FeeAbsorbed, &l.Amount}, func() error {
		c := byCur[cur]
		if l.ShowID != 0 {
			showIDs[l.ShowID] = true
		}
		switch l.Kind {
		case EntryPayment:
			c.Sources = append(c.Sources, l)
		case EntryRefund, EntryDispute, EntryDisputeWon:
			c.Adjustments = append(c.Adjustments, l)
		case EntryPayout:
			c.Payouts = append(c.Payouts, l)
		default:
			c.Other = append(c.Other, l)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("statement of party %d: %w", party.ID, dbError(err))
	}
	titles, err := showTitles(ctx, db, showIDs)
	if err != nil {
		return err
	}
	for i := range st.Currencies {
		c := &st.Currencies[i]
		c.Closing = c.Opening + c.Change()
		for _, lines := range [][]StatementLine{c.Sources, c.Adjustments} {
			for j := range lines {
				lines[j].ShowTitle = titles[lines[j].ShowID]
			}
		}
		// Lines of a day in show title order, as the page reads.
		for _, lines := range [][]StatementLine{c.Sources, c.Adjustments} {
			slices.SortStableFunc(lines, func(a, b StatementLine) int {
				if d := a.Day.Compare(b.Day); d != 0 {
					return d
				}
				return strings.Compare(a.ShowTitle, b.ShowTitle)
			})
		}
	}
	return nil
}

// statementRolled is the day before which party_days holds the party entries' sums (of the
// days not marked dirty since).
func statementRolled(ctx context.Context, db DBTX) (time.Time, error) {
	var rolled time.Time
	if err := db.QueryRow(ctx, `SELECT coalesce((SELECT rolled_until FROM party_days_state), date '0001-01-01')`).Scan(&rolled); err != nil {
		return rolled, fmt.Errorf("statement days: %w", dbError(err))
	}
	return rolled, nil
}

// openingBalances is each currency's balance of the accounts before the day from, signed as a
// statement signs it: every entry before the range. Days that are over come summed from
// party_days, except days an entry arrived for since; the rest come from party_entries.
func openingBalances(ctx context.Context, db DBTX, accounts []int64, from, rolled time.Time) (map[string]int64, error) {
	rows, _ := db.Query(ctx, `
		SELECT currency, (-sum(amount))::bigint FROM (
			SELECT d.currency, d.amount FROM party_days d
			WHERE d.account_id = ANY($1) AND d.day < $2 AND d.day < $3
			  AND NOT EXISTS (SELECT 1 FROM party_days_dirty x WHERE x.account_id = d.account_id AND x.day = d.day)
			UNION ALL
			SELECT e.currency, e.amount FROM party_entries e
			WHERE e.account_id = ANY($1) AND e.day < $2 AND e.day >= $3
			UNION ALL
			SELECT e.currency, e.amount FROM party_days_dirty x JOIN party_entries e ON e.account_id = x.account_id AND e.day = x.day
			WHERE x.account_id = ANY($1) AND x.day < $2 AND x.day < $3
		) t GROUP BY currency`, accounts, from, rolled)
	openings := map[string]int64{}
	var cur string
	var opening int64
	if _, err := pgx.ForEachRow(rows, []any{&cur, &opening}, func() error {
		openings[cur] = opening
		return nil
	}); err != nil {
		return nil, dbError(err)
	}
	return openings, nil
}

// showTitles names the shows of a statement's lines.
func showTitles(ctx context.Context, db DBTX, ids map[int64]bool) (map[int64]string, error) {
	list := make([]int64, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	rows, _ := db.Query(ctx, `SELECT id, title FROM shows WHERE id = ANY($1)`, list)
	titles := map[int64]string{}
	var id int64
	var title string
	if _, err := pgx.ForEachRow(rows, []any{&id, &title}, func() error { titles[id] = title; return nil }); err != nil {
		return nil, fmt.Errorf("show titles: %w", dbError(err))
	}
	return titles, nil
}

// StatementEntry is one journal entry as it touched a party: a row of the CSV statement.
// Amounts are signed as in StatementLine; Balance is the party's balance after the entry.
type StatementEntry struct {
	Currency    string
	OccurredAt  time.Time
	EntryID     int64
	Kind        string
	ShowID      int64
	ShowTitle   string
	Source      string
	Description string
	Gross       int64
	Fee         int64
	Share       int64
	FeeAbsorbed int64
	Amount      int64
	Balance     int64
}

// EachStatementEntry calls opening with each currency's opening balance, then fn with each of
// the party's entries in the range, in currency and time order, and closing with the closing
// balance. It reads the rows as PostgreSQL sends them (in the order of an index, so nothing is
// sorted first) and keeps none, so memory stays the same however many there are. The entry fn
// gets is reused for the next row.
func EachStatementEntry(ctx context.Context, db DBTX, party Party, r Range,
	opening func(currency string, balance int64) error, fn func(e *StatementEntry) error,
	closing func(currency string, balance int64) error) error {
	accounts, currencies, err := payableAccounts(ctx, db, party.ID)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// The rows are cheap each but many: compiling the query (JIT) would cost more than it
		// saves, and far more once the planner decides to inline and optimise it too.
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return dbError(err)
		}
		rolled, err := statementRolled(ctx, tx)
		if err != nil {
			return err
		}
		openings, err := openingBalances(ctx, tx, accounts, r.From, rolled)
		if err != nil {
			return fmt.Errorf("opening balance of party %d: %w", party.ID, err)
		}
		for i, account := range accounts {
			balance := openings[currencies[i]]
			if err := opening(currencies[i], balance); err != nil {
				return err
			}
			if balance, err = eachEntry(ctx, tx, account, currencies[i], r, balance, fn); err != nil {
				return fmt.Errorf("statement entries of party %d: %w", party.ID, dbError(err))
			}
			if err := closing(currencies[i], balance); err != nil {
				return err
			}
		}
		return nil
	})
}
