package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// csvFixture adds to the money fixture what a CSV cell can hold: a show title that needs quotes,
// a zero-decimal currency, a payout and adjustments with awkward descriptions and amounts below
// one unit, on the collaborator's statement. It returns the ids the CSV names, in posting order.
func csvFixture(t *testing.T, ts *testServer, f moneyFixture) (ids map[string]int64) {
	t.Helper()
	ctx := context.Background()
	ids = map[string]int64{"money": f.show.ID}
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []struct{ key, title, currency string }{
		{"tea", `Tea, "Biscuits" & More`, "USD"},
		{"ramen", "Ramen Hour", "JPY"},
	} {
		show, err := catalog.CreateShow(ctx, ts.db, f.owner.ID, catalog.ShowInput{Slug: s.key + "-show", Title: s.title, Currency: s.currency})
		if err != nil {
			t.Fatal(err)
		}
		ids[s.key] = show.ID
		plan, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceAll, billing.FeePolicyNet, jan,
			[]billing.PlanLine{{PartyID: f.collab.ID, BasisPoints: 5000}, {PartyID: f.dist.ID, BasisPoints: 5000}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		gross, fee := int64(1999), int64(88)
		if s.currency == "JPY" {
			gross, fee = 1200, 40
		}
		id, err := billing.PostPayment(ctx, ts.db, billing.Payment{Gross: gross, Fee: fee, Currency: s.currency,
			OccurredAt: jan.AddDate(0, 0, 14).Add(13*time.Hour + 7*time.Minute + 9*time.Second), Source: billing.SourceDonations,
			IdempotencyKey: "payment:" + s.key}, plan)
		if err != nil {
			t.Fatal(err)
		}
		ids[s.key+"-payment"] = id
	}
	payable, err := billing.Account(ctx, ts.db, billing.PartyPayable, "USD", f.collab.ID)
	if err != nil {
		t.Fatal(err)
	}
	clearing, err := billing.Account(ctx, ts.db, billing.StripeClearing, "USD", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		key, kind, description string
		amount                 int64 // to the party, positive when credited
		at                     time.Time
	}{
		{"payout", billing.EntryPayout, "Payout for 2026-01", -4000, jan.AddDate(0, 1, 0).Add(-time.Minute)},
		{"fix", billing.EntryAdjustment, " Correction, see note", -5, jan.AddDate(0, 1, 5).Add(8 * time.Hour)},
		{"note", billing.EntryAdjustment, "Line one\nline \"two\"", 7, jan.AddDate(0, 1, 5).Add(9 * time.Hour)},
	} {
		role := billing.RoleAdjustment
		if e.kind == billing.EntryPayout {
			role = billing.RoleTransfer
		}
		id, err := billing.Post(ctx, ts.db, billing.Entry{Kind: e.kind, Description: e.description, IdempotencyKey: "csv:" + e.key,
			OccurredAt: e.at, Postings: []billing.Posting{
				{AccountID: payable, Amount: -e.amount, Currency: "USD", Role: role},
				{AccountID: clearing, Amount: e.amount, Currency: "USD", Role: role}}})
		if err != nil {
			t.Fatal(err)
		}
		ids[e.key] = id
	}
	return ids
}

// The CSV statement, byte for byte: the header, an opening and a closing row per currency in
// code order, one row per entry with the running balance, and cells quoted as encoding/csv
// quotes them.
func TestStatementCSVFormat(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newMoneyFixture(t, ts)
	ids := csvFixture(t, ts, f)
	var entries []int64 // the money fixture's entries of the collaborator, in time order
	rows, err := ts.db.Query(context.Background(), `SELECT e.entry_id FROM party_entries e JOIN ledger_accounts a ON a.id = e.account_id
		WHERE a.party_id = $1 AND e.show_id = $2 ORDER BY e.occurred_at`, f.collab.ID, f.show.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		entries = append(entries, id)
	}
	if rows.Err() != nil || len(entries) != 5 {
		t.Fatalf("fixture entries %v, %v", entries, rows.Err())
	}
	for i, id := range entries {
		ids[fmt.Sprint("e", i)] = id
	}

	r := strings.NewReplacer("{money}", fmt.Sprint(ids["money"]), "{tea}", fmt.Sprint(ids["tea"]), "{ramen}", fmt.Sprint(ids["ramen"]),
		"{e0}", fmt.Sprint(ids["e0"]), "{e1}", fmt.Sprint(ids["e1"]), "{e2}", fmt.Sprint(ids["e2"]), "{e3}", fmt.Sprint(ids["e3"]),
		"{e4}", fmt.Sprint(ids["e4"]), "{tea-payment}", fmt.Sprint(ids["tea-payment"]), "{ramen-payment}", fmt.Sprint(ids["ramen-payment"]),
		"{payout}", fmt.Sprint(ids["payout"]), "{fix}", fmt.Sprint(ids["fix"]), "{note}", fmt.Sprint(ids["note"]))
	// Titles come with the rows for days not yet summed, and from the summed days' shows after.
	for _, rolled := range []bool{false, true} {
		if rolled {
			if err := billing.RollupStatementDays(context.Background(), ts.db, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
		}
		checkStatementCSV(t, ts, f, r)
	}
}

func checkStatementCSV(t *testing.T, ts *testServer, f moneyFixture, r *strings.Replacer) {
	t.Helper()
	for _, tt := range []struct{ query, want string }{
		{"from=2026-01-01&to=2026-02-28", `date,time,entry,kind,show_id,show,source,description,gross,fee,share,fee_absorbed,amount,balance,currency
2026-01-01,,,opening,,,,Opening balance,,,,,,0,JPY
2026-01-15,13:07:09,{ramen-payment},payment,{ramen},Ramen Hour,donations,,1200,40,580,0,580,580,JPY
2026-02-28,,,closing,,,,Closing balance,,,,,,580,JPY
2026-01-01,,,opening,,,,Opening balance,,,,,,0.00,USD
2026-01-01,10:00:00,{e0},payment,{money},Money Show,donations,,10.00,0.59,1.41,0.00,1.41,1.41,USD
2026-01-01,11:00:00,{e1},payment,{money},Money Show,donations,,25.00,1.03,3.60,0.00,3.60,5.01,USD
2026-01-02,10:00:00,{e2},payment,{money},Money Show,donations,,5.00,0.45,0.68,0.00,0.68,5.69,USD
2026-01-06,00:00:00,{e3},payment,{money},Money Show,sponsorship,,300.00,9.00,43.65,0.00,43.65,49.34,USD
2026-01-15,13:07:09,{tea-payment},payment,{tea},"Tea, ""Biscuits"" & More",donations,,19.99,0.88,9.56,0.00,9.56,58.90,USD
2026-01-31,23:59:00,{payout},payout,,,,Payout for 2026-01,0.00,0.00,0.00,0.00,-40.00,18.90,USD
2026-02-03,00:00:00,{e4},refund,{money},Money Show,donations,,-10.00,0.00,-1.41,0.00,-1.41,17.49,USD
2026-02-06,08:00:00,{fix},adjustment,,,," Correction, see note",0.00,0.00,0.00,0.00,-0.05,17.44,USD
2026-02-06,09:00:00,{note},adjustment,,,,"Line one
line ""two""",0.00,0.00,0.00,0.00,0.07,17.51,USD
2026-02-28,,,closing,,,,Closing balance,,,,,,17.51,USD
`},
		{"period=2026-02", `date,time,entry,kind,show_id,show,source,description,gross,fee,share,fee_absorbed,amount,balance,currency
2026-02-01,,,opening,,,,Opening balance,,,,,,580,JPY
2026-02-28,,,closing,,,,Closing balance,,,,,,580,JPY
2026-02-01,,,opening,,,,Opening balance,,,,,,18.90,USD
2026-02-03,00:00:00,{e4},refund,{money},Money Show,donations,,-10.00,0.00,-1.41,0.00,-1.41,17.49,USD
2026-02-06,08:00:00,{fix},adjustment,,,," Correction, see note",0.00,0.00,0.00,0.00,-0.05,17.44,USD
2026-02-06,09:00:00,{note},adjustment,,,,"Line one
line ""two""",0.00,0.00,0.00,0.00,0.07,17.51,USD
2026-02-28,,,closing,,,,Closing balance,,,,,,17.51,USD
`},
		{"period=2025-12", `date,time,entry,kind,show_id,show,source,description,gross,fee,share,fee_absorbed,amount,balance,currency
2025-12-01,,,opening,,,,Opening balance,,,,,,0,JPY
2025-12-31,,,closing,,,,Closing balance,,,,,,0,JPY
2025-12-01,,,opening,,,,Opening balance,,,,,,0.00,USD
2025-12-31,,,closing,,,,Closing balance,,,,,,0.00,USD
`},
	} {
		resp := ts.do(t, &f.partner, "GET", fmt.Sprintf("/statements/%d.csv?%s", f.collab.ID, tt.query), nil)
		got := readBody(t, resp)
		if want := r.Replace(tt.want); resp.StatusCode != 200 || got != want {
			t.Errorf("CSV %s: status %d\n%s\nwant\n%s", tt.query, resp.StatusCode, got, want)
		}
	}
}

// A show title or a description that a spreadsheet would run as a formula comes out as text
// in the CSV; the amounts, negative ones too, stay numbers.
func TestStatementCSVFormulas(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newMoneyFixture(t, ts)
	ctx := context.Background()
	show, err := catalog.CreateShow(ctx, ts.db, f.owner.ID, catalog.ShowInput{Slug: "formula-show", Title: `=HYPERLINK("http://x","y")`, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plan, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceAll, billing.FeePolicyNet, jan,
		[]billing.PlanLine{{PartyID: f.collab.ID, BasisPoints: 5000}, {PartyID: f.dist.ID, BasisPoints: 5000}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.PostPayment(ctx, ts.db, billing.Payment{Gross: 1000, Fee: 59, Currency: "USD", OccurredAt: jan.AddDate(0, 0, 20),
		Source: billing.SourceDonations, IdempotencyKey: "payment:formula"}, plan); err != nil {
		t.Fatal(err)
	}
	payable, _ := billing.Account(ctx, ts.db, billing.PartyPayable, "USD", f.collab.ID)
	clearing, _ := billing.Account(ctx, ts.db, billing.StripeClearing, "USD", 0)
	if _, err := billing.Post(ctx, ts.db, billing.Entry{Kind: billing.EntryAdjustment, Description: "-5 @SUM(A1)", IdempotencyKey: "csv:formula",
		OccurredAt: jan.AddDate(0, 0, 21), Postings: []billing.Posting{
			{AccountID: payable, Amount: 5, Currency: "USD", Role: billing.RoleAdjustment},
			{AccountID: clearing, Amount: -5, Currency: "USD", Role: billing.RoleAdjustment}}}); err != nil {
		t.Fatal(err)
	}
	resp := ts.do(t, &f.partner, "GET", fmt.Sprintf("/statements/%d.csv?period=2026-01", f.collab.ID), nil)
	records, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CSV: status %d, %v", resp.StatusCode, err)
	}
	var titled, adjusted bool
	for _, rec := range records {
		switch {
		case rec[4] == fmt.Sprint(show.ID):
			titled = rec[5] == `'=HYPERLINK("http://x","y")` && rec[12] == "4.71"
		case rec[3] == "adjustment":
			adjusted = rec[7] == "'-5 @SUM(A1)" && rec[12] == "-0.05" && !strings.HasPrefix(rec[13], "'")
		}
	}
	if !titled || !adjusted {
		t.Errorf("formulas in the CSV: title made text %v, description made text %v:\n%q", titled, adjusted, records)
	}
}
