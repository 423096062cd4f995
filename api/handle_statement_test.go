package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// moneyFixture is a show owned by owner with a 60/15/25 plan between the owner's creator party,
// a collaborator (the partner, by email) and the distributor, and some money through it.
type moneyFixture struct {
	show                        catalog.Show
	creator, collab, dist       billing.Party
	owner, partner, other, root user
}

func newMoneyFixture(t *testing.T, ts *testServer) moneyFixture {
	t.Helper()
	ctx := context.Background()
	var f moneyFixture
	f.owner = ts.newUser(t, "owner@example.com", catalog.RoleCreator)
	f.partner = ts.newUser(t, "collab@example.com", catalog.RolePartner)
	f.other = ts.newUser(t, "other@example.com", catalog.RoleCreator)
	f.root = ts.newUser(t, "root@example.com", catalog.RoleAdmin)
	var err error
	if f.show, err = catalog.CreateShow(ctx, ts.db, f.owner.ID, catalog.ShowInput{Slug: "money-show", Title: "Money Show", Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	f.dist, _ = billing.DistributorParty(ctx, ts.db)
	if f.creator, err = billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "Owner", "owner@example.com", &f.owner.ID); err != nil {
		t.Fatal(err)
	}
	if f.collab, err = billing.EnsureParty(ctx, ts.db, billing.PartyCollaborator, "Collab", "Collab@Example.com", nil); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plan, err := billing.CreatePlan(ctx, ts.db, f.show.ID, billing.SourceAll, billing.FeePolicyNet, start,
		[]billing.PlanLine{{PartyID: f.creator.ID, BasisPoints: 6000}, {PartyID: f.collab.ID, BasisPoints: 1500}, {PartyID: f.dist.ID, BasisPoints: 2500}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// January: three donations on two days and a sponsorship; one donation refunded in February.
	var first int64
	for i, p := range []struct {
		gross, fee int64
		at         time.Time
		source     string
	}{
		{1000, 59, start.Add(10 * time.Hour), billing.SourceDonations},
		{2500, 103, start.Add(11 * time.Hour), billing.SourceDonations},
		{500, 45, start.Add(34 * time.Hour), billing.SourceDonations},
		{30000, 900, start.Add(5 * 24 * time.Hour), billing.SourceSponsorship},
	} {
		id, err := billing.PostPayment(ctx, ts.db, billing.Payment{Gross: p.gross, Fee: p.fee, Currency: "USD", OccurredAt: p.at,
			Source: p.source, IdempotencyKey: fmt.Sprintf("payment:%d", i)}, plan)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = id
		}
	}
	if _, err := billing.PostReversal(ctx, ts.db, billing.Reversal{EntryID: first, Kind: billing.EntryRefund, Amount: 1000,
		OccurredAt: start.AddDate(0, 1, 2), IdempotencyKey: "refund:1"}); err != nil {
		t.Fatal(err)
	}
	return f
}

type statementBody struct {
	Party struct {
		ID int64 `json:"id"`
	} `json:"party"`
	From, To   string
	Currencies []struct {
		Currency                 string
		Opening, Closing, Change int64
		Sources                  []struct {
			Day, Source       string
			Count, Gross, Fee int64
			Share, Amount     int64
		}
		Adjustments []struct {
			Kind   string
			Amount int64
		}
		Totals struct {
			Sources struct{ Count, Gross, Fee, Share, Amount int64 }
		}
	}
}

func TestStatementPages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newMoneyFixture(t, ts)
	collab := fmt.Sprint(f.collab.ID)

	// The partner's list has the collaborator party only.
	resp := ts.do(t, &f.partner, "GET", "/statements", nil)
	if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "/statements/"+collab+"?") ||
		strings.Contains(body, fmt.Sprintf("/statements/%d?", f.creator.ID)) {
		t.Fatalf("partner's statement list: status %d\n%s", resp.StatusCode, body)
	}
	// The dashboard links partners to their statements.
	if body := readBody(t, ts.do(t, &f.partner, "GET", "/dashboard", nil)); !strings.Contains(body, `href="/statements"`) {
		t.Errorf("partner dashboard has no link to the statements")
	}

	// January as JSON: the collaborator's 15% of each net, one line per day and source.
	resp = ts.do(t, &f.partner, "GET", "/statements/"+collab+".json?period=2026-01", nil)
	var st statementBody
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("statement JSON: status %d, %v", resp.StatusCode, err)
	}
	if st.From != "2026-01-01" || st.To != "2026-01-31" || len(st.Currencies) != 1 {
		t.Fatalf("statement %+v", st)
	}
	c := st.Currencies[0]
	// Nets 941, 2397, 455, 29100; 15% by largest remainder: 141, 360 (359.55), 68, 4365.
	if c.Opening != 0 || c.Closing != 141+360+68+4365 || c.Change != c.Closing || len(c.Sources) != 3 ||
		c.Sources[0].Count != 2 || c.Sources[0].Gross != 3500 || c.Sources[0].Fee != 162 || c.Sources[0].Amount != 141+360 ||
		c.Sources[2].Source != "sponsorship" || c.Totals.Sources.Count != 4 || c.Totals.Sources.Gross != 34000 {
		t.Errorf("January: %+v", c)
	}
	// February opens with January's closing balance and takes the refund back.
	resp = ts.do(t, &f.partner, "GET", "/statements/"+collab+".json?from=2026-02-01&to=2026-02-28", nil)
	var feb statementBody
	json.NewDecoder(resp.Body).Decode(&feb)
	if len(feb.Currencies) != 1 || feb.Currencies[0].Opening != c.Closing || len(feb.Currencies[0].Adjustments) != 1 ||
		feb.Currencies[0].Adjustments[0].Amount != -141 || feb.Currencies[0].Closing != c.Closing-141 {
		t.Errorf("February: %+v", feb)
	}

	// The page and the CSV agree with the JSON.
	resp = ts.do(t, &f.partner, "GET", "/statements/"+collab+"?period=2026-01", nil)
	page := readBody(t, resp)
	for _, want := range []string{`id="closing-USD"><strong>49.34</strong>`,
		`href="/statements/` + collab + `.csv?from=2026-01-01&amp;to=2026-01-31"`, `id="opening-USD">0.00`, "Download CSV",
		"one line per day, show and source", "Money Show", "2026-01-02"} {
		if !strings.Contains(page, want) {
			t.Errorf("statement page lacks %q", want)
		}
	}
	resp = ts.do(t, &f.partner, "GET", "/statements/"+collab+".csv?period=2026-01", nil)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("CSV: status %d, %s", resp.StatusCode, ct)
	}
	records, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1+1+4+1 || records[1][3] != "opening" || records[len(records)-1][3] != "closing" ||
		records[len(records)-1][13] != "49.34" || records[len(records)-2][13] != "49.34" {
		t.Errorf("CSV rows:\n%v", records)
	}

	// Another party's statement is refused; the admin and the owner read their own.
	for _, tt := range []struct {
		u    *user
		path string
		want int
	}{
		{&f.partner, fmt.Sprintf("/statements/%d", f.creator.ID), 403},
		{&f.partner, fmt.Sprintf("/statements/%d.csv", f.dist.ID), 403},
		{&f.partner, fmt.Sprintf("/statements/%d.json", f.creator.ID), 403},
		{&f.owner, fmt.Sprintf("/statements/%d", f.creator.ID), 200},
		{&f.owner, "/statements/" + collab, 403},
		{&f.other, fmt.Sprintf("/statements/%d", f.creator.ID), 403},
		{&f.root, "/statements/" + collab + ".csv", 200},
		{&f.root, "/statements/999999", 404},
		{&f.partner, "/statements/" + collab + ".pdf", 404},
	} {
		if resp := ts.do(t, tt.u, "GET", tt.path, nil); resp.StatusCode != tt.want {
			t.Errorf("GET %s as %s: %d, want %d", tt.path, tt.u.Email, resp.StatusCode, tt.want)
		}
	}
}

// A reversed range, one over five years and a malformed date are 400s that say why.
func TestStatementBadRange(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newMoneyFixture(t, ts)
	base := fmt.Sprintf("/statements/%d", f.collab.ID)
	for _, tt := range []struct{ query, reason string }{
		{"?from=2026-03-01&to=2026-02-01", "reversed"},
		{"?from=2020-01-01&to=2025-06-01", "over 5 years"},
		{"?from=2026-02-30", "not a date"},
		{"?period=2026-13", "not a month"},
	} {
		for _, suffix := range []string{"", ".csv", ".json"} {
			resp := ts.do(t, &f.partner, "GET", base+suffix+tt.query, nil)
			body := readBody(t, resp)
			if resp.StatusCode != 400 || !strings.Contains(body, tt.reason) {
				t.Errorf("GET %s%s%s: %d, want 400 saying %q:\n%s", base, suffix, tt.query, resp.StatusCode, tt.reason, body)
			}
		}
		resp := ts.do(t, &f.partner, "GET", fmt.Sprintf("/api/v1/statements/%d%s", f.collab.ID, tt.query), nil)
		var e apiErr
		if json.NewDecoder(resp.Body).Decode(&e); resp.StatusCode != 400 || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, tt.reason) {
			t.Errorf("API %s: %d %+v", tt.query, resp.StatusCode, e)
		}
	}
}
