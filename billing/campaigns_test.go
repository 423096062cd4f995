package billing

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing/stripetest"
)

// clock is a settable clock for the service: the test moves it past a campaign's deadline.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// campaignFixture is a live campaign of the fixture's show with its own plan (creator 70%,
// collaborator 30%, net of fees), a goal of 50.00 USD and a deadline 10 days away.
func campaignFixture(t *testing.T, f fixture, svc *Service, allOrNothing bool) (Campaign, *clock) {
	t.Helper()
	ck := &clock{now: time.Now()}
	svc.Now = ck.Now
	c, err := svc.CreateCampaign(context.Background(), f.show, CampaignInput{
		Title: "Season two", Story: "Ten episodes.", Goal: 5000, Currency: "usd", Deadline: ck.Now().Add(10 * 24 * time.Hour),
		TimeZone: "Europe/Paris", AllOrNothing: allOrNothing,
		Stretch: []StretchGoal{{Amount: 10000, Description: "A behind-the-scenes episode"}},
		OwnPlan: lines([]int64{f.creator, f.collaborator}, 7000, 3000),
	}, nil)
	must(t, err)
	c, err = svc.LaunchCampaign(context.Background(), c.ID)
	must(t, err)
	return c, ck
}

// pledgeWithCard makes a pledge and completes its setup checkout on the offline test page's
// terms: the signed-to-be event of the session saving card.
func pledgeWithCard(t *testing.T, f fixture, svc *Service, c Campaign, tier, amount int64, email, card string) Pledge {
	t.Helper()
	ctx := context.Background()
	p, err := svc.CreatePledge(ctx, PledgeInput{CampaignID: c.ID, TierID: tier, Amount: amount, Email: email, CreditName: "Backer " + email})
	must(t, err)
	_, err = svc.StartPledge(ctx, p, CheckoutPage{TestURL: "/checkout/test/{session}"})
	must(t, err)
	var session string
	must(t, f.db.QueryRow(ctx, `SELECT checkout_session_id FROM pledges WHERE id = $1`, p.ID).Scan(&session))
	tc, err := FindTestCheckout(ctx, f.db, session)
	must(t, err)
	if tc.Kind != KindPledge || !tc.Open() {
		t.Fatalf("test checkout of a pledge: %+v", tc)
	}
	tc.Card = card
	for _, ev := range tc.Events(time.Now()) {
		deliver(t, f, svc, ev)
	}
	p, err = FindPledge(ctx, f.db, p.ID)
	must(t, err)
	if p.Status != PledgeActive {
		t.Fatalf("pledge after its setup checkout is %s, want active", p.Status)
	}
	return p
}

// checkPledgeSplit checks the entry of a collected pledge's charge: gross into clearing, the
// fee out, the net split 70/30 to the cent by the largest remainder.
func checkPledgeSplit(t *testing.T, f fixture, p Pledge, fee int64) {
	t.Helper()
	if p.Status != PledgeCollected || p.ChargeID == nil {
		t.Fatalf("pledge %d is %s (charge %v), want collected", p.ID, p.Status, p.ChargeID)
	}
	type line struct {
		kind  string
		party int64
		amt   int64
	}
	rows, err := f.db.Query(context.Background(), `SELECT a.kind, coalesce(a.party_id, 0), p.amount FROM journal_entries e
		JOIN postings p ON p.entry_id = e.id JOIN ledger_accounts a ON a.id = p.account_id
		WHERE e.idempotency_key = $1 AND e.source = 'campaigns' ORDER BY p.id`, "payment:"+*p.ChargeID)
	must(t, err)
	got := map[string]int64{}
	var sum int64
	for rows.Next() {
		var l line
		must(t, rows.Scan(&l.kind, &l.party, &l.amt))
		sum += l.amt
		switch {
		case l.kind == "party_payable" && l.party == f.creator:
			got["creator"] += -l.amt
		case l.kind == "party_payable" && l.party == f.collaborator:
			got["collaborator"] += -l.amt
		default:
			got[l.kind] += l.amt
		}
	}
	must(t, rows.Err())
	net := p.Amount - fee
	wantCreator := net * 7000 / 10000
	wantCollab := net * 3000 / 10000
	if wantCreator+wantCollab < net { // the cent left goes to the larger remainder (the creator on ties)
		if (net*7000)%10000 >= (net*3000)%10000 {
			wantCreator++
		} else {
			wantCollab++
		}
	}
	if sum != 0 || got["stripe_clearing"] != p.Amount || got["processor_fees"] != -fee || got["creator"] != wantCreator ||
		got["collaborator"] != wantCollab {
		t.Fatalf("pledge %d of %d (fee %d) posted %v (sum %d), want creator %d, collaborator %d", p.ID, p.Amount, fee, got, sum,
			wantCreator, wantCollab)
	}
}

// A live campaign's goal, currency and deadline are frozen, in the service and in the schema;
// bad input names its field.
func TestCampaignFrozenOnceLive(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7500, 2500))
	deadline := time.Now().Add(48 * time.Hour)
	in := CampaignInput{Title: "Film", Goal: 100000, Currency: "EUR", Deadline: deadline, TimeZone: "America/New_York", AllOrNothing: true}
	for field, bad := range map[string]func(*CampaignInput){
		"goal":      func(c *CampaignInput) { c.Goal = 0 },
		"time zone": func(c *CampaignInput) { c.TimeZone = "Mars/Olympus" },
		"deadline":  func(c *CampaignInput) { c.Deadline = time.Now().Add(-time.Hour) },
		"currency":  func(c *CampaignInput) { c.Currency = "XXX" },
		"title":     func(c *CampaignInput) { c.Title = " " },
		"stretch":   func(c *CampaignInput) { c.Stretch = []StretchGoal{{Amount: 50, Description: "less than the goal"}} },
	} {
		c := in
		bad(&c)
		if _, err := svc.CreateCampaign(ctx, f.show, c, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: %v", field, err)
		}
	}
	c, err := svc.CreateCampaign(ctx, f.show, in, nil)
	must(t, err)
	in.Goal = 200000 // a draft changes freely
	c, err = svc.UpdateCampaign(ctx, c.ID, in)
	must(t, err)
	c, err = svc.LaunchCampaign(ctx, c.ID)
	must(t, err)
	if c.Status != CampaignLive || c.SharePlanID == nil || c.OwnPlan {
		t.Fatalf("launched: %+v, want live with the show's plan pinned", c)
	}
	if !strings.Contains(c.DeadlineText(), "America/New_York") {
		t.Fatalf("deadline text %q names no zone", c.DeadlineText())
	}
	changed := in
	changed.Goal = 1
	if _, err := svc.UpdateCampaign(ctx, c.ID, changed); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "goal") {
		t.Fatalf("changing a live campaign's goal: %v", err)
	}
	changed = in
	changed.Deadline = deadline.Add(time.Hour)
	if _, err := svc.UpdateCampaign(ctx, c.ID, changed); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("changing a live campaign's deadline: %v", err)
	}
	changed = in
	changed.Title = "The film"
	if c, err = svc.UpdateCampaign(ctx, c.ID, changed); err != nil || c.Title != "The film" {
		t.Fatalf("a live campaign's title changes: %v", err)
	}
	for _, q := range []string{`UPDATE campaigns SET goal = 1 WHERE id = $1`, `UPDATE campaigns SET currency = 'USD' WHERE id = $1`,
		`UPDATE campaigns SET deadline = deadline + interval '1 day' WHERE id = $1`, `UPDATE campaigns SET status = 'draft' WHERE id = $1`} {
		if _, err := f.db.Exec(ctx, q, c.ID); sqlState(err) != "23514" {
			t.Errorf("%s on a live campaign: %v, want a check violation", q, err)
		}
	}
	// The job that closes it is scheduled at the deadline.
	if n := count(t, f.db, `SELECT count(*) FROM river_job WHERE kind = 'campaign_close' AND state = 'scheduled'
		AND abs(extract(epoch FROM scheduled_at - $1::timestamptz)) < 1`, deadline); n != 1 {
		t.Fatalf("%d close jobs scheduled at the deadline", n)
	}
}

// Fifty backers pledge at once for a tier of 10: exactly 10 get it, and the schema would
// refuse an eleventh whatever the code did.
func TestTierNeverOversold(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	c, _ := campaignFixture(t, f, svc, true)
	tier, err := AddTier(ctx, f.db, c.ID, TierInput{Title: "Signed poster", Minimum: 2000, Quantity: 10, Credits: true,
		DeliveryMonth: time.Date(2027, 3, 14, 0, 0, 0, 0, time.UTC)})
	must(t, err)
	if tier.DeliveryMonth == nil || tier.DeliveryMonth.Day() != 1 {
		t.Fatalf("delivery month %v", tier.DeliveryMonth)
	}
	if _, err := svc.CreatePledge(ctx, PledgeInput{CampaignID: c.ID, TierID: tier.ID, Amount: 1000, Email: "low@example.com"}); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "amount") {
		t.Fatalf("pledge below the tier's minimum: %v", err)
	}
	var ok, soldOut atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := svc.CreatePledge(ctx, PledgeInput{CampaignID: c.ID, TierID: tier.ID, Amount: 2000 + int64(i), Email: "fan@example.com"})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrConflict):
				soldOut.Add(1)
			default:
				t.Errorf("pledge %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 10 || soldOut.Load() != 40 {
		t.Fatalf("%d pledges got the tier and %d were told it is sold out, want 10 and 40", ok.Load(), soldOut.Load())
	}
	if n := count(t, f.db, `SELECT taken FROM campaign_tiers WHERE id = $1`, tier.ID); n != 10 {
		t.Fatalf("taken = %d", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM pledges WHERE tier_id = $1`, tier.ID); n != 10 {
		t.Fatalf("%d pledges hold the tier", n)
	}
	if _, err := f.db.Exec(ctx, `UPDATE campaign_tiers SET taken = 11 WHERE id = $1`, tier.ID); sqlState(err) != "23514" {
		t.Fatalf("taking an eleventh in the schema: %v", err)
	}
	// A cancelled pledge gives its reward back.
	var token string
	must(t, f.db.QueryRow(ctx, `SELECT token FROM pledges WHERE tier_id = $1 LIMIT 1`, tier.ID).Scan(&token))
	if _, err := svc.CancelPledge(ctx, token); err != nil {
		t.Fatal(err)
	}
	if n := count(t, f.db, `SELECT taken FROM campaign_tiers WHERE id = $1`, tier.ID); n != 9 {
		t.Fatalf("after a cancel taken = %d, want 9", n)
	}
}

// Offline test mode end to end: backers save test cards, one changes and one cancels before
// the deadline; the clock crosses the deadline and the sweep closes the campaign; each
// pledge's job charges it and posts it split 70/30; the card that needs authentication is
// emailed a link (see notify) and pays on-session; a refund reverses a pledge's split.
func TestCampaignSucceedsOffline(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	c, ck := campaignFixture(t, f, svc, true)
	tier, err := AddTier(ctx, f.db, c.ID, TierInput{Title: "Early access", Minimum: 1500, EarlyAccess: true})
	must(t, err)
	a := pledgeWithCard(t, f, svc, c, tier.ID, 2500, "a@example.com", TestCardSucceeds)
	b := pledgeWithCard(t, f, svc, c, 0, 1999, "b@example.com", TestCardSucceeds)
	auth := pledgeWithCard(t, f, svc, c, tier.ID, 3000, "auth@example.com", TestCardAuthenticate)
	gone := pledgeWithCard(t, f, svc, c, 0, 700, "gone@example.com", TestCardSucceeds)

	b, err = svc.ChangePledge(ctx, b.Token, tier.ID, 2100, "")
	must(t, err)
	if _, err := svc.CancelPledge(ctx, gone.Token); err != nil {
		t.Fatal(err)
	}
	if prog, err := CampaignProgress(ctx, f.db, c.ID); err != nil || prog.Pledged != 2500+2100+3000 || prog.Backers != 3 {
		t.Fatalf("progress %+v (%v)", prog, err)
	}
	// Before the deadline, closing waits.
	if wait, err := svc.CloseCampaign(ctx, c.ID); err != nil || wait <= 0 {
		t.Fatalf("close before the deadline: wait %v, %v", wait, err)
	}
	ck.set(c.Deadline.Add(time.Second))
	if _, err := svc.ChangePledge(ctx, b.Token, 0, 5000, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("change after the deadline: %v", err)
	}
	must(t, svc.SweepCampaigns(ctx))
	waitIdle(t, f)

	c, err = FindCampaign(ctx, f.db, c.ID)
	must(t, err)
	if c.Status != CampaignSucceeded {
		t.Fatalf("campaign %s, want succeeded", c.Status)
	}
	for _, p := range []*Pledge{&a, &b, &auth, &gone} {
		*p, err = FindPledge(ctx, f.db, p.ID)
		must(t, err)
	}
	checkPledgeSplit(t, f, a, TestFee(2500, "USD"))
	checkPledgeSplit(t, f, b, TestFee(2100, "USD"))
	if auth.Status != PledgeNeedsAction || !strings.Contains(auth.Failure, "authentication_required") || auth.NeedsActionSince == nil {
		t.Fatalf("the pledge whose bank asks for authentication: %+v", auth)
	}
	if gone.Status != PledgeCancelled || gone.ChargeID != nil || gone.DetachedAt == nil {
		t.Fatalf("the cancelled pledge: %+v", gone)
	}
	// The job running again charges nobody twice.
	must(t, svc.ChargePledge(ctx, a.ID))
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE source = 'campaigns' AND kind = 'payment'`); n != 2 {
		t.Fatalf("%d pledge payments posted, want 2", n)
	}

	// The backer pays on-session from the emailed link.
	_, err = svc.PayPledgeOnSession(ctx, auth.Token, CheckoutPage{TestURL: "/checkout/test/{session}"})
	must(t, err)
	var session string
	must(t, f.db.QueryRow(ctx, `SELECT pay_session_id FROM pledges WHERE id = $1`, auth.ID).Scan(&session))
	tc, err := FindTestCheckout(ctx, f.db, session)
	must(t, err)
	if tc.Kind != KindPledgePayment || !tc.Open() || tc.Amount.Amount != 3000 {
		t.Fatalf("on-session test checkout %+v", tc)
	}
	for _, ev := range tc.Events(time.Now()) {
		deliver(t, f, svc, ev)
	}
	auth, err = FindPledge(ctx, f.db, auth.ID)
	must(t, err)
	checkPledgeSplit(t, f, auth, TestFee(3000, "USD"))

	// Refunding the campaign reverses every split.
	n, err := svc.RefundCampaign(ctx, c.ID, "admin@example.com", func(ctx context.Context, payload []byte) error {
		deliver(t, f, svc, payload)
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("refund campaign: %d, %v", n, err)
	}
	waitIdle(t, f)
	if n := count(t, f.db, `SELECT count(*) FROM pledges WHERE campaign_id = $1 AND status = 'refunded'`, c.ID); n != 3 {
		t.Fatalf("%d pledges refunded, want 3", n)
	}
	if got := owed(t, f.db, f.creator, "USD") + owed(t, f.db, f.collaborator, "USD"); got != 0 {
		t.Fatalf("after refunding every pledge the parties are owed %d", got)
	}
}

// stripeCounter counts the requests made to stripe-mock by path and keeps the idempotency
// keys of payment intents.
type stripeCounter struct {
	mu    sync.Mutex
	paths map[string]int
	keys  []string
}

func (r *stripeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	if r.paths == nil {
		r.paths = map[string]int{}
	}
	path := req.URL.Path
	if strings.HasPrefix(path, "/v1/payment_methods/") {
		path = "/v1/payment_methods/detach"
	}
	r.paths[req.Method+" "+path]++
	if path == "/v1/payment_intents" && req.Method == http.MethodPost {
		r.keys = append(r.keys, req.Header.Get("Idempotency-Key"))
	}
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *stripeCounter) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paths[key]
}

// setupEvent is the signed-to-be event of a completed setup session saving pm for a pledge.
func setupEvent(p Pledge, pm string) []byte {
	md := map[string]string{MetaKind: KindPledge, MetaPledgeID: itoa(p.ID)}
	return EventJSON("evt_setup_"+itoa(p.ID), "checkout.session.completed", time.Now(),
		SetupSessionObject("cs_setup_"+itoa(p.ID), "seti_"+itoa(p.ID), pm, "cus_"+itoa(p.ID), "usd", md), nil, "")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// With a Stripe key (stripe-mock): an all-or-nothing campaign short of its goal fails at the
// deadline: no payment intent is ever made and every saved payment method is detached.
func TestCampaignFailsNobodyCharged(t *testing.T) {
	t.Parallel()
	rec := &stripeCounter{}
	st := NewStripe("sk_test_123", stripetest.URL(t), &http.Client{Transport: rec})
	f, svc := newService(t, st)
	ctx := context.Background()
	c, ck := campaignFixture(t, f, svc, true)
	var ps []Pledge
	for i, email := range []string{"x@example.com", "y@example.com"} {
		p, err := svc.CreatePledge(ctx, PledgeInput{CampaignID: c.ID, Amount: 1000, Email: email})
		must(t, err)
		url, err := svc.StartPledge(ctx, p, CheckoutPage{SuccessURL: "https://example.com/ok", CancelURL: "https://example.com/no"})
		if err != nil || url == "" {
			t.Fatalf("setup checkout: %q %v", url, err)
		}
		deliver(t, f, svc, setupEvent(p, "pm_saved_"+itoa(int64(i))))
		ps = append(ps, p)
	}
	if rec.count("POST /v1/checkout/sessions") != 2 || rec.count("POST /v1/customers") != 2 {
		t.Fatalf("stripe requests %v", rec.paths)
	}
	ck.set(c.Deadline)
	must(t, svc.SweepCampaigns(ctx))
	waitIdle(t, f)
	c, err := FindCampaign(ctx, f.db, c.ID)
	must(t, err)
	if c.Status != CampaignFailed {
		t.Fatalf("campaign %s, want failed (2000 of 5000)", c.Status)
	}
	if n := rec.count("POST /v1/payment_intents"); n != 0 {
		t.Fatalf("%d payment intents made for a failed campaign", n)
	}
	if n := rec.count("POST /v1/payment_methods/detach"); n != 2 {
		t.Fatalf("%d payment methods detached, want 2", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM pledges WHERE campaign_id = $1 AND status = 'released' AND detached_at IS NOT NULL`, c.ID); n != 2 {
		t.Fatalf("%d pledges released and detached", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries`); n != 0 {
		t.Fatalf("%d ledger entries for a failed campaign", n)
	}
	// Charging a pledge of a failed campaign is refused, whatever asks.
	must(t, exec(f, `UPDATE pledges SET status = 'charging' WHERE id = $1`, ps[0].ID))
	if err := svc.ChargePledge(ctx, ps[0].ID); err == nil {
		t.Fatal("a pledge of a failed campaign was charged")
	}
	if n := rec.count("POST /v1/payment_intents"); n != 0 {
		t.Fatalf("%d payment intents", n)
	}
}

// With a Stripe key (stripe-mock): a campaign that reaches its goal charges each pledge
// off-session once, under its idempotency key. stripe-mock's payment intent still needs a
// payment method, as a bank asking for authentication leaves it: the pledge needs action, and
// the backer's on-session Checkout (its signed event) collects it, split by the campaign's
// plan. A pledge whose payment_intent.succeeded arrives by webhook is collected the same way.
func TestCampaignChargesAgainstStripeMock(t *testing.T) {
	t.Parallel()
	rec := &stripeCounter{}
	st := NewStripe("sk_test_123", stripetest.URL(t), &http.Client{Transport: rec})
	f, svc := newService(t, st)
	ctx := context.Background()
	c, ck := campaignFixture(t, f, svc, true)
	var ps []Pledge
	for i, amount := range []int64{3000, 2500} {
		p, err := svc.CreatePledge(ctx, PledgeInput{CampaignID: c.ID, Amount: amount, Email: "fan" + itoa(int64(i)) + "@example.com"})
		must(t, err)
		_, err = svc.StartPledge(ctx, p, CheckoutPage{SuccessURL: "https://example.com/ok", CancelURL: "https://example.com/no"})
		must(t, err)
		deliver(t, f, svc, setupEvent(p, "pm_card_"+itoa(int64(i))))
		ps = append(ps, p)
	}
	ck.set(c.Deadline.Add(time.Minute))
	must(t, svc.SweepCampaigns(ctx))
	waitIdle(t, f)
	if n := rec.count("POST /v1/payment_intents"); n != 2 {
		t.Fatalf("%d payment intents, want one per pledge", n)
	}
	for _, p := range ps {
		found := false
		for _, k := range rec.keys {
			found = found || k == PledgeChargeKey(p.ID)
		}
		if !found {
			t.Fatalf("no payment intent with idempotency key %s among %q", PledgeChargeKey(p.ID), rec.keys)
		}
	}
	first, err := FindPledge(ctx, f.db, ps[0].ID)
	must(t, err)
	if first.Status != PledgeNeedsAction || first.PaymentIntentID == nil {
		t.Fatalf("pledge after stripe-mock's answer: %+v", first)
	}
	// On-session: Checkout in payment mode for the backer's customer, then its signed event.
	url, err := svc.PayPledgeOnSession(ctx, first.Token, CheckoutPage{SuccessURL: "https://example.com/ok", CancelURL: "https://example.com/no"})
	if err != nil || url == "" {
		t.Fatalf("pay on-session: %q %v", url, err)
	}
	md := map[string]string{MetaKind: KindPledge, MetaPledgeID: itoa(first.ID), MetaShowID: itoa(f.show)}
	charge := ChargeObject("ch_onsession", 3000, 117, "usd", time.Now())
	deliver(t, f, svc, EventJSON("evt_onsession", "checkout.session.completed", time.Now(),
		CheckoutSessionObject("cs_onsession", charge, "", 3000, "usd", md), nil, ""))
	first, err = FindPledge(ctx, f.db, first.ID)
	must(t, err)
	checkPledgeSplit(t, f, first, 117)

	// The other: Stripe reports the off-session payment succeeded by webhook.
	pi := map[string]any{"id": "pi_second", "object": "payment_intent", "status": "succeeded", "amount": 2500, "currency": "usd",
		"metadata":      map[string]string{MetaKind: KindPledge, MetaPledgeID: itoa(ps[1].ID), MetaShowID: itoa(f.show)},
		"latest_charge": ChargeObject("ch_second", 2500, 103, "usd", time.Now())}
	deliver(t, f, svc, EventJSON("evt_pi_second", "payment_intent.succeeded", time.Now(), pi, nil, ""))
	deliver(t, f, svc, EventJSON("evt_pi_second_again", "payment_intent.succeeded", time.Now(), pi, nil, ""))
	second, err := FindPledge(ctx, f.db, ps[1].ID)
	must(t, err)
	checkPledgeSplit(t, f, second, 103)
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE source = 'campaigns'`); n != 2 {
		t.Fatalf("%d pledge entries, want 2", n)
	}
}

// A pledge that needs action and is not paid within 7 days is dropped, its method detached.
func TestNeedsActionDroppedAfterSevenDays(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	c, ck := campaignFixture(t, f, svc, false) // keeps what it raises
	p := pledgeWithCard(t, f, svc, c, 0, 1000, "late@example.com", TestCardDeclined)
	ck.set(c.Deadline)
	must(t, svc.SweepCampaigns(ctx))
	waitIdle(t, f)
	p, err := FindPledge(ctx, f.db, p.ID)
	must(t, err)
	if p.Status != PledgeNeedsAction || !strings.Contains(p.Failure, "card_declined") {
		t.Fatalf("declined pledge: %+v", p)
	}
	c, _ = FindCampaign(ctx, f.db, c.ID)
	if c.Status != CampaignSucceeded {
		t.Fatalf("a keep-what-it-raises campaign below its goal: %s", c.Status)
	}
	ck.set(c.Deadline.Add(NeedsActionFor - time.Minute))
	must(t, svc.SweepCampaigns(ctx))
	if p, _ = FindPledge(ctx, f.db, p.ID); p.Status != PledgeNeedsAction {
		t.Fatalf("dropped early: %s", p.Status)
	}
	ck.set(c.Deadline.Add(NeedsActionFor + time.Minute))
	must(t, svc.SweepCampaigns(ctx))
	waitIdle(t, f)
	if p, _ = FindPledge(ctx, f.db, p.ID); p.Status != PledgeDropped || p.DetachedAt == nil {
		t.Fatalf("after 7 days: %+v", p)
	}
}

// A live campaign cancelled before its deadline charges nobody.
func TestCampaignCancelled(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	c, ck := campaignFixture(t, f, svc, true)
	p := pledgeWithCard(t, f, svc, c, 0, 9000, "c@example.com", TestCardSucceeds)
	late, err := svc.CreatePledge(ctx, PledgeInput{CampaignID: c.ID, Amount: 500, Email: "late@example.com"})
	must(t, err)
	if _, err := svc.CreatePledge(ctx, PledgeInput{CampaignID: c.ID, Amount: 50, Email: "tiny@example.com"}); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "amount: at least 1.00 USD") {
		t.Fatalf("a pledge of 0.50: %v", err)
	}
	must(t, svc.CancelCampaign(ctx, c.ID))
	// Its checkout completes after the cancel: the card saved then is detached.
	deliver(t, f, svc, setupEvent(late, "pm_late"))
	waitIdle(t, f)
	if late, _ = FindPledge(ctx, f.db, late.ID); late.Status != PledgeCancelled || late.DetachedAt == nil {
		t.Fatalf("a pledge whose card was saved after the cancel: %+v", late)
	}
	ck.set(c.Deadline.Add(time.Hour))
	must(t, svc.SweepCampaigns(ctx))
	waitIdle(t, f)
	if p, _ = FindPledge(ctx, f.db, p.ID); p.Status != PledgeCancelled || p.DetachedAt == nil {
		t.Fatalf("pledge of a cancelled campaign: %+v", p)
	}
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries`); n != 0 {
		t.Fatalf("%d entries", n)
	}
	if err := svc.CancelCampaign(ctx, c.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("cancel twice: %v", err)
	}
}

// A dispute of a charged pledge takes the money back from the parties in proportion to the
// campaign plan's split, as for any payment, and a lost one marks the pledge refunded.
func TestPledgeDisputeReversesSplit(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	c, ck := campaignFixture(t, f, svc, false)
	p := pledgeWithCard(t, f, svc, c, 0, 10000, "d@example.com", TestCardSucceeds)
	ck.set(c.Deadline)
	must(t, svc.SweepCampaigns(ctx))
	waitIdle(t, f)
	p, err := FindPledge(ctx, f.db, p.ID)
	must(t, err)
	fee := TestFee(10000, "USD") // 320: the net 9680 splits 6776 / 2904
	checkPledgeSplit(t, f, p, fee)
	if got := owed(t, f.db, f.creator, "USD"); got != 6776 {
		t.Fatalf("creator owed %d, want 6776", got)
	}
	at := time.Now()
	withdrawn := disputeTxn("txn_pw", -10000, 1500, "usd", at)
	deliver(t, f, svc, disputeEvent("evt_pdu", "charge.dispute.created", "du_p", *p.ChargeID, 10000, "usd", "needs_response", at, withdrawn))
	if c, co := owed(t, f.db, f.creator, "USD"), owed(t, f.db, f.collaborator, "USD"); c != 0 || co != 0 {
		t.Fatalf("after the dispute the creator is owed %d and the collaborator %d, want 0 and 0", c, co)
	}
	deliver(t, f, svc, disputeEvent("evt_pdu_lost", "charge.dispute.closed", "du_p", *p.ChargeID, 10000, "usd", "lost", at.Add(time.Hour), withdrawn))
	if p, _ = FindPledge(ctx, f.db, p.ID); p.Status != PledgeRefunded {
		t.Fatalf("pledge after a lost dispute: %s", p.Status)
	}
}
