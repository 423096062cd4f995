package billing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 15, 18, 30, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, period, from, to string
		want                   Range
		err                    string // part of the message, "" for success
	}{
		{"OK/Default", "", "", "", Range{day("2026-11-01"), day("2026-11-30")}, ""},
		{"OK/Period", "2026-02", "", "", Range{day("2026-02-01"), day("2026-02-28")}, ""},
		{"OK/LeapPeriod", "2024-02", "", "", Range{day("2024-02-01"), day("2024-02-29")}, ""},
		{"OK/Custom", "", "2026-01-10", "2026-03-05", Range{day("2026-01-10"), day("2026-03-05")}, ""},
		{"OK/OneDay", "", "2026-01-10", "2026-01-10", Range{day("2026-01-10"), day("2026-01-10")}, ""},
		{"OK/ToDefaultsToToday", "", "2026-11-01", "", Range{day("2026-11-01"), day("2026-11-15")}, ""},
		{"OK/ExactlyFiveYears", "", "2020-01-01", "2024-12-31", Range{day("2020-01-01"), day("2024-12-31")}, ""},
		{"ErrOverFiveYears", "", "2020-01-01", "2025-01-01", Range{}, "over 5 years"},
		{"ErrReversed", "", "2026-03-05", "2026-03-04", Range{}, "reversed"},
		{"ErrBadFrom", "", "2026-13-01", "2026-12-01", Range{}, "not a date"},
		{"ErrBadTo", "", "2026-01-01", "tomorrow", Range{}, "not a date"},
		{"ErrBadPeriod", "2026-13", "", "", Range{}, "not a month"},
		{"ErrPeriodAndRange", "2026-11", "2026-11-01", "", Range{}, "either"},
		{"ErrToWithoutFrom", "", "", "2026-11-01", Range{}, "needs a start"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRange(tt.period, tt.from, tt.to, now)
			if tt.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want ErrInvalid saying %q", err, tt.err)
				}
				return
			}
			if err != nil || !got.From.Equal(tt.want.From) || !got.To.Equal(tt.want.To) {
				t.Fatalf("ParseRange = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// Whatever a query holds, a range that parses is whole UTC days, in order, at most 5 years.
func FuzzParseRange(f *testing.F) {
	f.Add("", "2026-01-01", "2026-02-01")
	f.Add("2026-11", "", "")
	f.Add("", "2020-02-29", "2025-02-28")
	f.Add("", "0001-01-01", "9999-12-31")
	now := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, period, from, to string) {
		r, err := ParseRange(period, from, to, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		for _, d := range []time.Time{r.From, r.To} {
			if d.Location() != time.UTC || d.Hour()+d.Minute()+d.Second()+d.Nanosecond() != 0 {
				t.Fatalf("%v is not a UTC day", d)
			}
		}
		if r.To.Before(r.From) || r.End().After(r.From.AddDate(MaxStatementYears, 0, 0)) {
			t.Fatalf("range %v is reversed or too long", r)
		}
	})
}

// ledgerLine is one posting with its entry, read straight from the ledger's own tables.
type ledgerLine struct {
	entry, show        int64
	kind, source, role string
	description        string
	at                 time.Time
	accountKind        AccountKind
	party              int64
	currency           string
	amount             int64
}

func readLedger(t *testing.T, db DBTX) []ledgerLine {
	t.Helper()
	rows, err := db.Query(context.Background(), `
		SELECT e.id, coalesce(e.show_id, 0), e.kind, coalesce(e.source, ''), p.role, e.description, e.occurred_at,
		       a.kind, coalesce(a.party_id, 0), p.currency, p.amount
		FROM postings p JOIN journal_entries e ON e.id = p.entry_id JOIN ledger_accounts a ON a.id = p.account_id
		ORDER BY p.id`)
	must(t, err)
	defer rows.Close()
	var out []ledgerLine
	for rows.Next() {
		var l ledgerLine
		must(t, rows.Scan(&l.entry, &l.show, &l.kind, &l.source, &l.role, &l.description, &l.at, &l.accountKind, &l.party, &l.currency, &l.amount))
		out = append(out, l)
	}
	must(t, rows.Err())
	return out
}

// expectStatement computes a statement from the ledger's postings in plain Go, the way the
// page describes it, to hold BuildStatement to.
func expectStatement(ledger []ledgerLine, party int64, r Range) map[string]*CurrencyStatement {
	type key struct {
		cur, kind, source string
		day               time.Time
		show, entry       int64
	}
	gross, fee := map[int64]int64{}, map[int64]int64{}
	for _, l := range ledger {
		if l.accountKind == StripeClearing && l.role == RoleGross {
			gross[l.entry] += l.amount
		}
		if l.accountKind == ProcessorFees && l.role == RoleFee {
			fee[l.entry] -= l.amount
		}
	}
	out := map[string]*CurrencyStatement{}
	lines := map[key]*StatementLine{}
	var order []key
	counted := map[[2]any]bool{}
	for _, l := range ledger {
		if l.accountKind != PartyPayable || l.party != party {
			continue
		}
		c := out[l.currency]
		if c == nil {
			c = &CurrencyStatement{Currency: l.currency}
			out[l.currency] = c
		}
		d := time.Date(l.at.UTC().Year(), l.at.UTC().Month(), l.at.UTC().Day(), 0, 0, 0, 0, time.UTC)
		if d.Before(r.From) {
			c.Opening -= l.amount
		}
		if !d.Before(r.End()) {
			continue
		}
		c.Closing -= l.amount
		if d.Before(r.From) {
			continue
		}
		k := key{cur: l.currency, kind: l.kind, source: l.source, day: d, show: l.show}
		if l.kind == EntryPayout || l.kind == EntryAdjustment {
			k.entry = l.entry
		}
		line := lines[k]
		if line == nil {
			line = &StatementLine{Day: d, Kind: l.kind, ShowID: l.show, Source: l.source}
			if k.entry != 0 {
				line.EntryID, line.Description = l.entry, l.description
			}
			lines[k] = line
			order = append(order, k)
		}
		if !counted[[2]any{l.currency, l.entry}] {
			counted[[2]any{l.currency, l.entry}] = true
			line.Count++
			line.Gross += gross[l.entry]
			line.Fee += fee[l.entry]
		}
		switch l.role {
		case RoleShare:
			line.Share -= l.amount
		case RoleFeeAbsorbed:
			line.FeeAbsorbed += l.amount
		}
		line.Amount -= l.amount
	}
	for _, k := range order {
		c, l := out[k.cur], *lines[k]
		switch l.Kind {
		case EntryPayment:
			c.Sources = append(c.Sources, l)
		case EntryPayout:
			c.Payouts = append(c.Payouts, l)
		case EntryAdjustment:
			c.Other = append(c.Other, l)
		default:
			c.Adjustments = append(c.Adjustments, l)
		}
	}
	return out
}

func linesKeyed(lines []StatementLine) map[string]StatementLine {
	m := map[string]StatementLine{}
	for _, l := range lines {
		l.ShowTitle = ""
		m[fmt.Sprintf("%s/%s/%d/%s/%d", l.Day.Format(time.DateOnly), l.Kind, l.ShowID, l.Source, l.EntryID)] = l
	}
	return m
}

// TestStatementReconciles posts random payments, refunds, disputes, won disputes, payouts and
// adjustments in two currencies under net and gross plans, then checks every party's statement
// for random ranges against the ledger computed independently: every line, the opening and
// closing balances to the cent, the CSV rows, and the closing balance against PartyBalances.
func TestStatementReconciles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	var owner int64
	must(t, f.db.QueryRow(ctx, `SELECT owner_id FROM shows WHERE id = $1`, f.show).Scan(&owner))
	show2 := newShow(t, f.db, owner, "second-show")
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	net := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, start.Add(-time.Hour),
		lines([]int64{f.creator, f.collaborator, f.distributor}, 6000, 1500, 2500))
	gross := createPlan(t, f.db, show2, SourceAll, FeePolicyGross, start.Add(-time.Hour),
		lines([]int64{f.distributor, f.creator}, 2000, 8000))
	// A later plan on the first show drops the collaborator.
	later := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, start.AddDate(0, 2, 0),
		lines([]int64{f.creator, f.distributor}, 7000, 3000))

	type paid struct {
		id, gross int64
		at        time.Time
		cur       string
	}
	var payments []paid
	for i := 0; i < 120; i++ {
		at := start.Add(time.Duration(rng.Int64N(int64(120 * 24 * time.Hour))))
		plan, cur := net, "USD"
		if rng.IntN(3) == 0 {
			plan, cur = gross, "EUR"
		} else if at.After(later.EffectiveAt) {
			plan = later
		}
		g := 100 + rng.Int64N(20000)
		fee := rng.Int64N(g/10 + 1)
		if rng.IntN(10) == 0 {
			fee = g // all of it withheld
		}
		src := SourceDonations
		if rng.IntN(4) == 0 {
			src = SourceSponsorship
		}
		id, err := PostPayment(ctx, f.db, Payment{Gross: g, Fee: fee, Currency: cur, OccurredAt: at, Source: src,
			IdempotencyKey: fmt.Sprintf("payment:%d", i), Description: "Donation"}, plan)
		must(t, err)
		payments = append(payments, paid{id, g, at, cur})
	}
	for i, p := range payments {
		switch rng.IntN(6) {
		case 0:
			amount := 1 + rng.Int64N(p.gross)
			_, err := PostReversal(ctx, f.db, Reversal{EntryID: p.id, Kind: EntryRefund, Amount: amount,
				OccurredAt: p.at.Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour)))), IdempotencyKey: fmt.Sprintf("refund:%d", i)})
			must(t, err)
		case 1:
			at := p.at.Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
			d, err := PostReversal(ctx, f.db, Reversal{EntryID: p.id, Kind: EntryDispute, Amount: p.gross, Fee: 1500,
				OccurredAt: at, IdempotencyKey: fmt.Sprintf("dispute:%d", i)})
			must(t, err)
			if rng.IntN(2) == 0 {
				_, err := PostDisputeWon(ctx, f.db, DisputeWon{DisputeEntryID: d, Fee: -1500, OccurredAt: at.Add(48 * time.Hour),
					IdempotencyKey: fmt.Sprintf("dispute_won:%d", i)})
				must(t, err)
			}
		}
	}
	// Monthly payouts of part of the creator's and collaborator's balances, and an adjustment.
	for m := 0; m < 4; m++ {
		at := start.AddDate(0, m+1, 0).Add(-time.Minute)
		for _, party := range []int64{f.creator, f.collaborator} {
			for _, cur := range []string{"USD", "EUR"} {
				var owedThen int64
				must(t, f.db.QueryRow(ctx, `SELECT -coalesce(sum(p.amount), 0) FROM postings p JOIN journal_entries e ON e.id = p.entry_id
					JOIN ledger_accounts a ON a.id = p.account_id WHERE a.kind = 'party_payable' AND a.party_id = $1
					AND a.currency = $2 AND e.occurred_at <= $3`, party, cur, at).Scan(&owedThen))
				if owedThen <= 0 {
					continue
				}
				_, err := Post(ctx, f.db, Entry{Kind: EntryPayout, Description: fmt.Sprintf("Payout %d %s", m, cur), OccurredAt: at,
					IdempotencyKey: fmt.Sprintf("payout:%d:%d:%s", m, party, cur), Postings: []Posting{
						{AccountID: account(t, f.db, PartyPayable, cur, party), Amount: owedThen / 2, Currency: cur, Role: RoleTransfer},
						{AccountID: account(t, f.db, StripeClearing, cur, 0), Amount: -owedThen / 2, Currency: cur, Role: RoleTransfer}}})
				must(t, err)
			}
		}
	}
	_, err := Post(ctx, f.db, Entry{Kind: EntryAdjustment, Description: "Goodwill credit", OccurredAt: start.AddDate(0, 1, 14),
		Postings: []Posting{
			{AccountID: account(t, f.db, PartyPayable, "USD", f.creator), Amount: -250, Currency: "USD", Role: RoleAdjustment},
			{AccountID: account(t, f.db, PlatformRevenue, "USD", 0), Amount: 250, Currency: "USD", Role: RoleAdjustment}}})
	must(t, err)

	ranges := []Range{
		{start, start.AddDate(1, 0, -1)},                   // everything
		MonthRange(start.AddDate(0, 1, 0)),                 // February
		{start.AddDate(0, 0, 40), start.AddDate(0, 0, 40)}, // one day
	}
	for i := 0; i < 5; i++ {
		from := start.AddDate(0, 0, rng.IntN(150))
		ranges = append(ranges, Range{from, from.AddDate(0, 0, rng.IntN(60))})
	}
	// The same checks on the live entries, after the days are summed into party_days, with a
	// late entry that dirties a summed day, and after that day is summed again.
	check := func(stage string) {
		t.Helper()
		ledger := readLedger(t, f.db)
		for _, party := range []int64{f.creator, f.collaborator, f.distributor} {
			p, err := FindParty(ctx, f.db, party)
			must(t, err)
			for _, r := range ranges {
				st, err := BuildStatement(ctx, f.db, p, r)
				must(t, err)
				want := expectStatement(ledger, party, r)
				got := map[string]CurrencyStatement{}
				for _, c := range st.Currencies {
					got[c.Currency] = c
				}
				for cur, w := range want {
					c := got[cur]
					name := fmt.Sprintf("%s: party %d %s %s", stage, party, cur, r)
					if c.Opening != w.Opening || c.Closing != w.Closing {
						t.Errorf("%s: opening %d closing %d, want %d and %d", name, c.Opening, c.Closing, w.Opening, w.Closing)
					}
					if c.Opening+c.Change() != c.Closing {
						t.Errorf("%s: opening %d + change %d != closing %d", name, c.Opening, c.Change(), c.Closing)
					}
					for _, sec := range []struct {
						name      string
						got, want []StatementLine
					}{{"sources", c.Sources, w.Sources}, {"adjustments", c.Adjustments, w.Adjustments},
						{"payouts", c.Payouts, w.Payouts}, {"other", c.Other, w.Other}} {
						g, wm := linesKeyed(sec.got), linesKeyed(sec.want)
						if len(g) != len(wm) || len(sec.got) != len(sec.want) {
							t.Errorf("%s %s: %d lines, want %d", name, sec.name, len(sec.got), len(sec.want))
						}
						for k, wl := range wm {
							if gl, ok := g[k]; !ok || gl != wl {
								t.Errorf("%s %s line %s:\n got %+v\nwant %+v", name, sec.name, k, gl, wl)
							}
						}
					}
				}
				for cur := range got {
					if want[cur] == nil {
						t.Errorf("party %d %s: statement has currency %s the ledger does not", party, r, cur)
					}
				}
				// The CSV rows: one per entry, the running balance ending at the closing balance.
				var rowsSum, last int64
				rows := 0
				err = EachStatementEntry(ctx, f.db, p, r,
					func(cur string, b int64) error { rowsSum, last = 0, b; return nil },
					func(e *StatementEntry) error { rows++; rowsSum += e.Amount; last = e.Balance; return nil },
					func(cur string, b int64) error {
						if w := want[cur]; w != nil && (b != w.Closing || last != w.Closing || rowsSum != w.Closing-w.Opening) {
							t.Errorf("party %d %s %s CSV: closing %d, last balance %d, sum %d; want %d and %d", party, cur, r, b, last,
								rowsSum, w.Closing, w.Closing-w.Opening)
						}
						return nil
					})
				must(t, err)
				wantRows := int64(0)
				for _, w := range want {
					for _, sec := range [][]StatementLine{w.Sources, w.Adjustments, w.Payouts, w.Other} {
						wantRows += Totals(sec).Count
					}
				}
				if int64(rows) != wantRows {
					t.Errorf("party %d %s CSV: %d rows, want %d", party, r, rows, wantRows)
				}
			}
			// Up to today, the closing balance is the ledger's balance.
			st, err := BuildStatement(ctx, f.db, p, Range{start, start.AddDate(1, 0, 0)})
			must(t, err)
			for _, c := range st.Currencies {
				if o := owed(t, f.db, party, c.Currency); c.Closing != o {
					t.Errorf("party %d %s: closing %d, PartyBalances %d", party, c.Currency, c.Closing, o)
				}
			}
		}
	}
	check("live")
	must(t, RollupStatementDays(ctx, f.db, time.Now()))
	var days, dirty int
	must(t, f.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM party_days), (SELECT count(*) FROM party_days_dirty)`).Scan(&days, &dirty))
	if days == 0 || dirty != 0 {
		t.Fatalf("after the rollup: %d summed days, %d dirty; want some and none", days, dirty)
	}
	check("rolled up")
	_, err = Post(ctx, f.db, Entry{Kind: EntryAdjustment, Description: "Late correction", OccurredAt: start.AddDate(0, 0, 40).Add(3 * time.Hour),
		Postings: []Posting{
			{AccountID: account(t, f.db, PartyPayable, "USD", f.creator), Amount: -777, Currency: "USD", Role: RoleAdjustment},
			{AccountID: account(t, f.db, PlatformRevenue, "USD", 0), Amount: 777, Currency: "USD", Role: RoleAdjustment}}})
	must(t, err)
	_, err = PostPayment(ctx, f.db, Payment{Gross: 4321, Fee: 99, Currency: "USD", OccurredAt: start.AddDate(0, 0, 40).Add(time.Hour),
		Source: SourceDonations, IdempotencyKey: "payment:late", Description: "Donation"}, later)
	if err != nil {
		_, err = PostPayment(ctx, f.db, Payment{Gross: 4321, Fee: 99, Currency: "USD", OccurredAt: start.AddDate(0, 0, 40).Add(time.Hour),
			Source: SourceDonations, IdempotencyKey: "payment:late", Description: "Donation"}, net)
	}
	must(t, err)
	must(t, f.db.QueryRow(ctx, `SELECT count(*) FROM party_days_dirty`).Scan(&dirty))
	if dirty == 0 {
		t.Fatal("late entries for a summed day left no dirty mark")
	}
	check("dirty day")
	must(t, RollupStatementDays(ctx, f.db, time.Now()))
	check("rolled up again")
}

// TestStatementVisibility: who may read whose statement.
func TestStatementVisibility(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	newAccount := func(email, role string) int64 {
		var id int64
		must(t, f.db.QueryRow(ctx, `INSERT INTO accounts (email, name, password_hash, role) VALUES ($1, 'x', 'x', $2) RETURNING id`,
			email, role).Scan(&id))
		return id
	}
	var owner int64
	must(t, f.db.QueryRow(ctx, `SELECT owner_id FROM shows WHERE id = $1`, f.show).Scan(&owner))
	// The owner (ann@example.com) has a creator party with their email on their show, not
	// linked to their account: an address in a plan shows nobody anything (a stranger who signed
	// up with it first would otherwise read what another show pays it).
	must2(t, f.db, `UPDATE parties SET email = 'Ann@Example.com' WHERE id = $1`, f.creator)
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines([]int64{f.creator, f.collaborator, f.distributor}, 5000, 2500, 2500))
	partner := newAccount("bob@example.com", "partner")
	must2(t, f.db, `UPDATE parties SET email = 'bob@example.com' WHERE id = $1`, f.collaborator)
	creatorSameEmail := newAccount("bob+c@example.com", "creator")
	linked := newAccount("carol@example.com", "partner")
	carol := newParty(t, f.db, "collaborator", "Carol")
	must2(t, f.db, `UPDATE parties SET account_id = $2 WHERE id = $1`, carol, linked)
	admin := newAccount("root@example.com", "admin")

	for _, tt := range []struct {
		name string
		v    Viewer
		want []int64
	}{
		{"OwnerNotByEmail", Viewer{AccountID: owner, Email: "ann@example.com"}, nil},
		{"PartnerByEmail", Viewer{AccountID: partner, Email: "BOB@example.com", Partner: true}, []int64{f.collaborator}},
		{"CreatorNotByEmail", Viewer{AccountID: creatorSameEmail, Email: "bob@example.com"}, nil},
		{"Linked", Viewer{AccountID: linked, Email: "carol@example.com", Partner: true}, []int64{carol}},
		{"Admin", Viewer{AccountID: admin, Email: "root@example.com", Admin: true}, []int64{f.distributor, f.creator, f.collaborator, carol}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := StatementParties(ctx, f.db, tt.v)
			must(t, err)
			got := map[int64]bool{}
			for _, p := range ps {
				got[p.ID] = true
			}
			if len(got) != len(tt.want) {
				t.Errorf("visible parties %v, want %v", ps, tt.want)
			}
			for _, id := range []int64{f.distributor, f.creator, f.collaborator, carol} {
				wantVisible := false
				for _, w := range tt.want {
					wantVisible = wantVisible || w == id
				}
				_, err := StatementParty(ctx, f.db, tt.v, id)
				if wantVisible != (err == nil) || (!wantVisible && !errors.Is(err, ErrStatementForbidden)) {
					t.Errorf("StatementParty(%d) = %v, want visible %v", id, err, wantVisible)
				}
			}
			if _, err := StatementParty(ctx, f.db, tt.v, 999999); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing party: %v, want ErrNotFound", err)
			}
		})
	}
}

func must2(t *testing.T, db DBTX, sql string, args ...any) {
	t.Helper()
	_, err := db.Exec(context.Background(), sql, args...)
	must(t, err)
}
