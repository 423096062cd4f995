package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

func TestShowDashboard(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	other := ts.newUser(t, "other@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "dash", Title: "Dash", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	ep, rec := ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))
	_, rec2 := ts.publishedEpisode(t, show, "Second", "second.mp3", []byte("ID3\x03 more audio"))
	day := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	if _, err := ts.db.Exec(ctx, `INSERT INTO swarm_stats (torrent_id, bucket, seeders, leechers, completed, announces, downloaders) VALUES
		($1, $2, 3, 5, 4, 40, 7), ($1, $3, 6, 1, 2, 10, 3), ($1, $4, 1, 1, 9, 5, 2)`,
		rec.ID, day.Add(10*time.Hour), day.Add(11*time.Hour), day.AddDate(0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.Exec(ctx, `INSERT INTO swarm_stats (torrent_id, bucket, seeders, leechers, completed, announces) VALUES ($1, $2, 1, 1, 100, 1)`,
		rec2.ID, day.Add(10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	dist, _ := billing.DistributorParty(ctx, ts.db)
	plan, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceAll, billing.FeePolicyNet, day.AddDate(0, -1, 0),
		[]billing.PlanLine{{PartyID: dist.ID, BasisPoints: 10000}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pay := func(key string, gross, fee int64, source, desc string, at time.Time) {
		t.Helper()
		if _, err := billing.PostPayment(ctx, ts.db, billing.Payment{Gross: gross, Fee: fee, Currency: "EUR", OccurredAt: at,
			Source: source, IdempotencyKey: key, Description: desc}, plan); err != nil {
			t.Fatal(err)
		}
	}
	pay("payment:a", 1000, 40, billing.SourceDonations, "Donation", day.Add(9*time.Hour))
	pay("payment:b", 500, 20, billing.SourceDonations, "Monthly donation", day.Add(9*time.Hour))
	pay("payment:c", 20000, 610, billing.SourceSponsorship, "Sponsorship", day.AddDate(0, 0, 1))

	path := fmt.Sprintf("/shows/%d/dashboard?from=2026-11-01&to=2026-11-30", show.ID)
	resp := ts.do(t, &owner, "GET", path, nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{"<strong>115</strong> completed downloads", "10.00 EUR", "5.00 EUR", "200.00 EUR", "6.70 EUR",
		`<svg class="chart"`, "Completed downloads per day", "Pilot"} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}

	// One episode's numbers.
	resp = ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard?from=2026-11-01&to=2026-11-30&episode=%d", show.ID, ep.ID), nil)
	if body := readBody(t, resp); !strings.Contains(body, "<strong>15</strong> completed downloads in this range, by <strong>12</strong> new downloaders") ||
		strings.Contains(body, ">Second<") {
		t.Errorf("dashboard of one episode: status %d, want its 15 downloads and no other episode", resp.StatusCode)
	}
	resp = ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard/downloads.csv?from=2026-11-01&to=2026-11-30&episode=%d", show.ID, ep.ID), nil)
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"day", "completed_downloads", "new_downloaders", "peak_peers", "announces"}, {"2026-11-03", "6", "10", "8", "50"},
		{"2026-11-04", "9", "2", "2", "5"}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("downloads.csv = %v, want %v", rows, want)
	}
	// The swarm now comes from the tracker: a seeder (it has uploaded) and a leecher of the pilot.
	for i, left := range []string{"0", "100"} {
		q := url.Values{"info_hash": {string(rec.InfoHash)}, "peer_id": {fmt.Sprintf("-TT0001-%012d", i)}, "port": {fmt.Sprint(6881 + i)},
			"uploaded": {fmt.Sprint(16384 * (1 - i))}, "downloaded": {"0"}, "left": {left}, "event": {"started"}}
		if body := readBody(t, ts.do(t, nil, "GET", "/announce?"+trackerQuery(q), nil)); strings.Contains(body, "failure reason") {
			t.Fatalf("announce: %s", body)
		}
	}
	resp = ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard/episodes.csv?from=2026-11-01&to=2026-11-30", show.ID), nil)
	rows, _ = csv.NewReader(resp.Body).ReadAll()
	got := map[string][]string{}
	for _, r := range rows[1:] {
		got[r[1]] = r[4:]
	}
	if len(rows) != 3 || rows[0][4] != "seeders_now" || fmt.Sprint(got["Pilot"]) != "[1 1]" || fmt.Sprint(got["Second"]) != "[0 0]" {
		t.Errorf("episodes.csv = %v, want the pilot's swarm 1 seeder and 1 leecher, the second's none", rows)
	}
	resp = ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard/money.csv?from=2026-11-01&to=2026-11-30", show.ID), nil)
	rows, _ = csv.NewReader(resp.Body).ReadAll()
	if len(rows) != 3 || rows[1][2] != "10.00" || rows[1][3] != "5.00" || rows[2][4] != "200.00" {
		t.Errorf("money.csv = %v", rows)
	}

	// The page's links keep its range: each export and drill-down link, followed as a browser
	// would, covers November, not the default last 30 days.
	page := readBody(t, ts.do(t, &owner, "GET", path, nil))
	for _, table := range []string{"downloads", "money", "episodes", "payouts"} {
		link := linkTo(t, page, "/dashboard/"+table+".csv")
		u, err := url.Parse(link)
		if err != nil || u.Query().Get("from") != "2026-11-01" || u.Query().Get("to") != "2026-11-30" {
			t.Errorf("%s export link %q does not carry the range 2026-11-01 to 2026-11-30", table, link)
		}
	}
	resp = ts.do(t, &owner, "GET", linkTo(t, page, "/dashboard/money.csv"), nil)
	if disp := resp.Header.Get("Content-Disposition"); !strings.Contains(disp, "money-2026-11-01-2026-11-30.csv") {
		t.Errorf("money.csv by the page's link: Content-Disposition %q, want the November range", disp)
	}
	rows, _ = csv.NewReader(resp.Body).ReadAll()
	if len(rows) != 3 || rows[1][0] != "2026-11-03" || rows[2][0] != "2026-11-04" {
		t.Errorf("money.csv by the page's link = %v, want November's two days", rows)
	}
	drill := linkTo(t, page, fmt.Sprintf("episode=%d", ep.ID))
	episodePage := readBody(t, ts.do(t, &owner, "GET", drill, nil))
	if !strings.Contains(episodePage, "<strong>15</strong> completed downloads in this range") {
		t.Errorf("episode link %q does not show the pilot's November downloads", drill)
	}
	for _, l := range []string{linkTo(t, episodePage, "/dashboard/downloads.csv"), linkTo(t, episodePage, "/dashboard?")} {
		u, _ := url.Parse(l)
		if u.Query().Get("from") != "2026-11-01" || u.Query().Get("to") != "2026-11-30" {
			t.Errorf("link %q of the episode's dashboard loses the range", l)
		}
	}
	if u, _ := url.Parse(linkTo(t, episodePage, "/dashboard/downloads.csv")); u.Query().Get("episode") != fmt.Sprint(ep.ID) {
		t.Errorf("export link of the episode's dashboard loses the episode filter")
	}

	for _, tt := range []struct {
		path   string
		status int
		msg    string
	}{
		{"?from=2026-11-30&to=2026-11-01", 400, "reversed"},
		{"?from=2015-01-01&to=2026-11-01", 400, "longer than 5 years"},
		{"?from=yesterday", 400, "From: "},
		{"?episode=abc", 400, "Episode: "},
	} {
		resp := ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard%s", show.ID, tt.path), nil)
		body := readBody(t, resp)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.msg) {
			t.Errorf("%s: status %d, want %d with %q", tt.path, resp.StatusCode, tt.status, tt.msg)
		}
		if m := regexp.MustCompile(`<main>(?s:.*)<p>([^<]*)</p>`).FindStringSubmatch(body); m == nil {
			t.Errorf("%s: no message on the page", tt.path)
		} else {
			noInternalWords(t, tt.path, html.UnescapeString(m[1]))
		}
	}
	if resp := ts.do(t, &other, "GET", path, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another creator: status %d, want 404", resp.StatusCode)
	}
	if resp := ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/dashboard/secrets.csv", show.ID), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown table: status %d, want 404", resp.StatusCode)
	}
}
