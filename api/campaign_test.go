package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// The whole campaign flow in offline test mode, through the pages: the creator makes, fills
// and launches a campaign; backers pledge on its page and save test cards on the test
// checkout (one that needs authentication later); the deadline passes on the service's clock;
// the close charges the pledges; the backer whose bank asked for authentication pays
// on-session from the pledge's link; the creator's dashboard shows each pledge's state.
func TestCampaignPagesOffline(t *testing.T) {
	t.Parallel()
	ts, money := newMoneyServer(t)
	var mu sync.Mutex
	now := time.Now()
	money.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()
	show := donationShow(t, ts, "film")
	var owner user
	if err := ts.db.QueryRow(ctx, `SELECT id FROM accounts WHERE email = 'film@example.com'`).Scan(&owner.ID); err != nil {
		t.Fatal(err)
	}
	token, err := catalog.CreateSession(ctx, ts.db, owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	owner.token = token

	deadline := time.Now().Add(72 * time.Hour).In(time.FixedZone("", 0))
	resp := ts.do(t, &owner, "POST", "/shows/"+strconv.FormatInt(show.ID, 10)+"/campaigns", url.Values{
		"title": {"The film"}, "story": {"A feature."}, "goal": {"50.00"}, "currency": {"USD"},
		"deadline": {deadline.Format("2006-01-02T15:04")}, "time_zone": {"Asia/Tokyo"}, "funding": {"all_or_nothing"},
		"stretch": {"80.00 A score by an orchestra"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create campaign: %d %s", resp.StatusCode, readBody(t, resp))
	}
	manage := resp.Header.Get("Location")
	id := manage[strings.LastIndex(manage, "/")+1:]
	bad := ts.do(t, &owner, "POST", "/shows/"+strconv.FormatInt(show.ID, 10)+"/campaigns", url.Values{
		"title": {"x"}, "goal": {"abc"}, "currency": {"USD"}, "deadline": {deadline.Format("2006-01-02T15:04")}, "time_zone": {"UTC"}})
	if body := readBody(t, bad); bad.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Goal: type an amount") {
		t.Fatalf("bad goal: %d", bad.StatusCode)
	}
	for _, f := range []url.Values{
		{"title": {"Early access"}, "minimum": {"20.00"}, "quantity": {"2"}, "early_access": {"1"}, "credits": {"1"}, "delivery_month": {"2027-05"}},
	} {
		if resp := ts.do(t, &owner, "POST", manage+"/tiers", f); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("tier: %d %s", resp.StatusCode, readBody(t, resp))
		}
	}
	if resp := ts.do(t, nil, "GET", "/campaigns/"+id, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a draft's public page: %d", resp.StatusCode)
	}
	if resp := ts.do(t, &owner, "POST", manage+"/launch", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("launch: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var tier int64
	if err := ts.db.QueryRow(ctx, `SELECT id FROM campaign_tiers WHERE campaign_id = $1`, id).Scan(&tier); err != nil {
		t.Fatal(err)
	}

	pledge := func(email, amount, card string) string {
		t.Helper()
		fan := jarClient(t, true)
		resp, err := fan.PostForm(ts.URL+"/campaigns/"+id+"/pledge", url.Values{"tier": {strconv.FormatInt(tier, 10)}, "amount": {amount},
			"email": {email}, "credit_name": {"Credit " + email}})
		if err != nil {
			t.Fatal(err)
		}
		page := readBody(t, resp)
		if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/") || !strings.Contains(page, "Setup mode") ||
			!strings.Contains(page, "off-session") {
			t.Fatalf("pledging landed on %s:\n%s", resp.Request.URL, page)
		}
		resp, err = fan.PostForm(resp.Request.URL.String(), url.Values{"action": {"pay"}, "card": {card}})
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		path := resp.Request.URL.Path
		waitFor(t, func() bool { // the webhook's event is applied by a job
			return countRows(t, ts, `SELECT count(*) FROM pledges WHERE token = $1 AND status = 'active'`, strings.TrimPrefix(path, "/pledges/")) == 1
		})
		page = getBody(t, fan, ts.URL+path+"?saved=1")
		if !strings.HasPrefix(path, "/pledges/pl_") || !strings.Contains(page, "nothing was charged") ||
			!strings.Contains(page, "active") {
			t.Fatalf("saving the card landed on %s:\n%s", resp.Request.URL, page)
		}
		return resp.Request.URL.Path
	}
	okPledge := pledge("ok@example.com", "25.00", billing.TestCardSucceeds)
	authPledge := pledge("auth@example.com", "30.00", billing.TestCardAuthenticate)
	// The tier of 2 is gone.
	fan := jarClient(t, true)
	resp, err = fan.PostForm(ts.URL+"/campaigns/"+id+"/pledge", url.Values{"tier": {strconv.FormatInt(tier, 10)}, "amount": {"20.00"},
		"email": {"late@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "sold out") {
		t.Fatalf("a third pledge for a tier of 2: %d", resp.StatusCode)
	}

	page := getBody(t, fan, ts.URL+"/campaigns/"+id)
	for _, want := range []string{"55.00 USD</strong> pledged of 50.00 USD (110%)", "2 backers", "3 days left", "Asia/Tokyo",
		"sold out", "Not reached yet", "Credit ok@example.com"} {
		if !strings.Contains(page, want) {
			t.Errorf("campaign page lacks %q", want)
		}
	}
	if body := getBody(t, fan, ts.URL+"/s/film"); !strings.Contains(body, `href="/campaigns/`+id+`">The film</a>`) {
		t.Errorf("the show's fan page does not list its live campaign")
	}
	embed := ts.do(t, nil, "GET", "/campaigns/"+id+"/embed", nil)
	if body := readBody(t, embed); !strings.Contains(body, "55.00 USD of 50.00 USD") ||
		!strings.Contains(embed.Header.Get("Content-Security-Policy"), "frame-ancestors *") {
		t.Errorf("widget: %s\n%s", embed.Header.Get("Content-Security-Policy"), body)
	}
	if resp := ts.do(t, &owner, "POST", manage+"/updates", url.Values{"title": {"Day one"}, "body": {"Thank you all."}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("update: %d", resp.StatusCode)
	}
	feed := ts.do(t, nil, "GET", "/campaigns/"+id+"/updates.rss", nil)
	if body := readBody(t, feed); !strings.Contains(body, "<title>Day one</title>") || !strings.HasPrefix(feed.Header.Get("Content-Type"), "application/rss+xml") {
		t.Errorf("feed:\n%s", body)
	}

	mu.Lock()
	now = deadline.Add(time.Minute)
	mu.Unlock()
	if err := money.SweepCampaigns(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		var n int
		ts.db.QueryRow(ctx, `SELECT count(*) FROM pledges WHERE status IN ('collected', 'needs_action')`).Scan(&n)
		return n == 2
	})
	if body := getBody(t, fan, ts.URL+okPledge); !strings.Contains(body, "collected") {
		t.Errorf("the charged pledge's page:\n%s", body)
	}
	payPage := getBody(t, fan, ts.URL+authPledge+"/pay")
	if !strings.Contains(payPage, "authentication") {
		t.Fatalf("pay page:\n%s", payPage)
	}
	resp, err = fan.PostForm(ts.URL+authPledge+"/pay", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/") {
		t.Fatalf("paying landed on %s", resp.Request.URL)
	}
	resp, err = fan.PostForm(resp.Request.URL.String(), url.Values{"action": {"pay"}})
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.Request.URL.Path != authPledge {
		t.Fatalf("after paying on-session: %s", resp.Request.URL)
	}
	waitFor(t, func() bool {
		return countRows(t, ts, `SELECT count(*) FROM pledges WHERE status = 'collected'`) == 2
	})
	if body := getBody(t, fan, ts.URL+authPledge); !strings.Contains(body, "collected") {
		t.Fatalf("after paying on-session:\n%s", body)
	}
	dash := readBody(t, ts.do(t, &owner, "GET", manage, nil))
	for _, want := range []string{"55.00 USD</strong> charged", "collected: 2", "Pledges over time", "<svg"} {
		if !strings.Contains(dash, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if n := countRows(t, ts, `SELECT count(*) FROM journal_entries WHERE source = 'campaigns'`); n != 2 {
		t.Fatalf("%d pledge entries", n)
	}
	// The backer's own page, signed in with the pledge's address.
	backer := ts.newUser(t, "ok@example.com", catalog.RolePartner)
	if body := readBody(t, ts.do(t, &backer, "GET", "/backer", nil)); !strings.Contains(body, "The film") || !strings.Contains(body, "Early access") {
		t.Errorf("backer page:\n%s", body)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not met in 30s")
}

func countRows(t *testing.T, ts *testServer, q string, args ...any) int {
	t.Helper()
	var n int
	if err := ts.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
