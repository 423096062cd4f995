package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

const testSecret = "whsec_test_secret"

// newMoneyServer is the real handler on loopback with a money service whose Stripe events are
// applied by River workers in the test process, over a fresh database.
func newMoneyServer(t *testing.T) (*testServer, *billing.Service) {
	t.Helper()
	return newMoneyServerWith(t, nil)
}

// newMoneyServerWith is newMoneyServer with a Stripe client (nil: offline test mode).
func newMoneyServerWith(t *testing.T, st *billing.Stripe) (*testServer, *billing.Service) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	if _, err := billing.MigrateJobs(ctx, db); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	money := &billing.Service{DB: db, Stripe: st, WebhookSecret: testSecret, Log: logger}
	jobs, err := billing.NewJobClient(money, billing.JobOptions{Work: true, Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := jobs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		jobs.Stop(stopCtx)
	})
	uploads, err := publishing.NewUploadStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	published := &seeding.Published{DB: db}
	cfg := api.Config{
		UploadMaxBytes: 1 << 20, Uploads: uploads, Published: published,
		Publisher: &publishing.Publisher{DB: db, Store: uploads, BaseURL: "http://fanseed.test"},
		Tracker:   &seeding.Tracker{Allowed: published.Allowed},
		Money:     money,
		// Campaigns' early access: a private tracker and a key signing web seed URLs.
		EarlyTracker:   &seeding.Tracker{Allowed: func([20]byte) bool { return true }},
		EarlyAccessKey: []byte("a test key for early-access web seed URLs"),
		NodeToken:      moneyServerNodeToken,
	}
	h, err := api.NewServer(cfg, db, logger, prometheus.NewRegistry(), func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, db: db}, money
}

// moneyServerNodeToken is the node token of newMoneyServer's server.
const moneyServerNodeToken = "node-token-of-the-money-test-server"

// postEvent sends a payload to the webhook endpoint with the given signature header.
func postEvent(t *testing.T, base string, payload []byte, signature string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/stripe", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	return roundTrip(t, req)
}

func postSigned(t *testing.T, base string, payload []byte) {
	t.Helper()
	if status, body := postEvent(t, base, payload, billing.SignEvent(payload, testSecret)); status != http.StatusOK {
		t.Errorf("event answered %d: %s", status, body)
	}
}

// waitApplied waits until every stored event is applied and no job is left, and fails on a
// discarded job.
func waitApplied(t *testing.T, ts *testServer) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var pending, jobs, dead int
		err := ts.db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM stripe_events WHERE applied_at IS NULL),
			(SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'discarded', 'cancelled')),
			(SELECT count(*) FROM river_job WHERE state IN ('discarded', 'cancelled'))`).Scan(&pending, &jobs, &dead)
		if err != nil {
			t.Fatal(err)
		}
		if dead > 0 {
			var errs string
			ts.db.QueryRow(ctx, `SELECT string_agg(errors::text, E'\n') FROM river_job WHERE state IN ('discarded', 'cancelled')`).Scan(&errs)
			t.Fatalf("%d jobs discarded: %s", dead, errs)
		}
		if pending == 0 && jobs == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %d events not applied, %d jobs left", pending, jobs)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestWebhookRefusesBadRequests(t *testing.T) {
	t.Parallel()
	ts, _ := newMoneyServer(t)
	ctx := context.Background()
	charge := billing.ChargeObject("ch_bad", 1000, 59, "USD", time.Now())
	good := billing.EventJSON("evt_bad", "checkout.session.completed", time.Now(),
		billing.CheckoutSessionObject("cs_bad", charge, "", 1000, "USD", map[string]string{billing.MetaKind: "donation", billing.MetaShowID: "1"}), nil, "")
	sign := func(p []byte, secret string, at time.Time) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: p, Secret: secret, Timestamp: at}).Header
	}
	huge := append(bytes.Repeat([]byte(" "), 300<<10), good...)
	oldVersion := bytes.Replace(good, []byte(`"api_version":"2023-10-16"`), []byte(`"api_version":"2020-08-27"`), 1)
	if bytes.Equal(oldVersion, good) {
		t.Fatal("test payload has no api_version to change")
	}
	cases := []struct {
		name      string
		payload   []byte
		signature string
	}{
		{"ErrNoSignature", good, ""},
		{"ErrWrongSecret", good, sign(good, "whsec_other", time.Now())},
		{"ErrTampered", bytes.Replace(good, []byte("1000"), []byte("9000"), 1), sign(good, testSecret, time.Now())},
		{"ErrStaleTimestamp", good, sign(good, testSecret, time.Now().Add(-10*time.Minute))},
		{"ErrGarbledHeader", good, "t=abc,v1=zz"},
		{"ErrOversized", huge, sign(huge, testSecret, time.Now())},
		{"ErrMalformedJSON", []byte(`{"id": "evt_x", "type": `), sign([]byte(`{"id": "evt_x", "type": `), testSecret, time.Now())},
		{"ErrNotAnEvent", []byte(`{}`), sign([]byte(`{}`), testSecret, time.Now())},
		{"ErrAPIVersion", oldVersion, sign(oldVersion, testSecret, time.Now())},
	}
	for _, c := range cases {
		if status, body := postEvent(t, ts.URL, c.payload, c.signature); status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", c.name, status, body)
		}
	}
	var events, entries int
	if err := ts.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM stripe_events), (SELECT count(*) FROM journal_entries)`).Scan(&events, &entries); err != nil {
		t.Fatal(err)
	}
	if events != 0 || entries != 0 {
		t.Fatalf("bad requests stored %d events and %d entries", events, entries)
	}
	// The good one is taken, once.
	status, body := postEvent(t, ts.URL, good, billing.SignEvent(good, testSecret))
	if status != http.StatusOK || strings.Contains(body, "duplicate") {
		t.Fatalf("good event: %d %s", status, body)
	}
	status, body = postEvent(t, ts.URL, good, billing.SignEvent(good, testSecret))
	if status != http.StatusOK || !strings.Contains(body, `"duplicate":true`) {
		t.Fatalf("repeated event: %d %s", status, body)
	}
}

// monthShow is a show of the simulated month and its plan, for the independent expectation.
type monthShow struct {
	id      int64
	gross   bool             // fee policy gross: the distributor absorbs the fee
	bps     map[string]int64 // party name -> basis points
	sponsor map[string]int64 // the sponsorship plan's, nil when none
}

// expectation computes every party's balance from the events alone, with exact integer
// arithmetic (the month is built so that every split is exact), independently of billing.
type expectation struct {
	t       *testing.T
	owed    map[string]int64
	charges map[string]*expCharge
}

type expCharge struct {
	remaining map[string]int64 // what the payment still leaves each party
	absorbed  int64            // fee the distributor absorbed, not yet taken back
}

func exactDiv(t *testing.T, a, b int64) int64 {
	t.Helper()
	if b == 0 || a%b != 0 {
		t.Fatalf("the month is not exact: %d / %d", a, b)
	}
	return a / b
}

func (e *expectation) pay(charge string, show monthShow, sponsorship bool, gross, fee int64) {
	bps := show.bps
	gp := show.gross
	if sponsorship && show.sponsor != nil {
		bps, gp = show.sponsor, false
	}
	c := &expCharge{remaining: map[string]int64{}}
	base := gross - fee
	if gp {
		base = gross
	}
	for name, b := range bps {
		share := exactDiv(e.t, base*b, 10000)
		if gp && name == "distributor" {
			c.absorbed = min(fee, share)
			share -= c.absorbed
		}
		c.remaining[name] = share
		e.owed[name] += share
	}
	e.charges[charge] = c
}

// reverse takes amount back from a charge in proportion to what is left, never more.
func (e *expectation) reverse(charge string, amount int64) map[string]int64 {
	c := e.charges[charge]
	sum := c.absorbed
	for _, r := range c.remaining {
		sum += r
	}
	take := min(amount, sum)
	taken := map[string]int64{}
	for name, r := range c.remaining {
		part := exactDiv(e.t, take*r, sum)
		c.remaining[name] -= part
		e.owed[name] -= part
		taken[name] = part
	}
	c.absorbed -= exactDiv(e.t, take*c.absorbed, sum)
	return taken
}

func (e *expectation) giveBack(charge string, taken map[string]int64) {
	for name, part := range taken {
		e.charges[charge].remaining[name] += part
		e.owed[name] += part
	}
}

// buildMonth makes a realistic month of Stripe events for two shows, in Stripe's order, and
// the balances they must leave.
func buildMonth(t *testing.T, shows []monthShow, sponsorshipIDs []int64, creatorAcct string) ([][]byte, map[string]int64) {
	r := rand.New(rand.NewPCG(2026, 11))
	exp := &expectation{t: t, owed: map[string]int64{}, charges: map[string]*expCharge{}}
	var events [][]byte
	clock := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	next := func() (string, time.Time) {
		n++
		clock = clock.Add(time.Duration(1+r.IntN(90)) * time.Minute)
		return fmt.Sprintf("evt_month_%04d", n), clock
	}
	md := func(show monthShow, kind string) map[string]string {
		return map[string]string{billing.MetaKind: kind, billing.MetaShowID: strconv.FormatInt(show.id, 10)}
	}
	type paid struct {
		charge string
		gross  int64
	}
	var charges []paid
	amount := func() (int64, int64) { // multiples that keep every split exact
		gross := int64(400 * (1 + r.IntN(25)))
		return gross, int64(80 * (1 + r.IntN(int(gross/400))))
	}
	// One-off donations.
	for i := range 120 {
		show := shows[r.IntN(len(shows))]
		gross, fee := amount()
		id, at := next()
		ch := fmt.Sprintf("ch_don_%03d", i)
		charge := billing.ChargeObject(ch, gross, fee, "USD", at)
		sess := billing.CheckoutSessionObject(fmt.Sprintf("cs_don_%03d", i), charge, "", gross, "USD", md(show, billing.KindDonation))
		events = append(events, billing.EventJSON(id, "checkout.session.completed", at, sess, nil, ""))
		exp.pay(ch, show, false, gross, fee)
		charges = append(charges, paid{ch, gross})
	}
	// Monthly donations: the session, the first invoice, a renewal for half, some cancelled.
	for i := range 20 {
		show := shows[r.IntN(len(shows))]
		gross, fee := amount()
		sub := fmt.Sprintf("sub_%03d", i)
		id, at := next()
		events = append(events, billing.EventJSON(id, "checkout.session.completed", at,
			billing.CheckoutSessionObject(fmt.Sprintf("cs_sub_%03d", i), nil, sub, gross, "USD", md(show, billing.KindDonation)), nil, ""))
		renewals := 1 + i%2
		for k := range renewals {
			id, at := next()
			ch := fmt.Sprintf("ch_sub_%03d_%d", i, k)
			inv := billing.InvoiceObject(fmt.Sprintf("in_%03d_%d", i, k), billing.ChargeObject(ch, gross, fee, "USD", at), sub, md(show, billing.KindDonation))
			events = append(events, billing.EventJSON(id, "invoice.paid", at, inv, nil, ""))
			exp.pay(ch, show, false, gross, fee)
			charges = append(charges, paid{ch, gross})
		}
		if i%4 == 0 {
			id, at := next()
			events = append(events, billing.EventJSON(id, "customer.subscription.deleted", at,
				map[string]any{"id": sub, "object": "subscription", "status": "canceled"}, nil, ""))
		}
	}
	// Sponsorships, paid through their payment links.
	for i, spID := range sponsorshipIDs {
		show := shows[1]
		gross, fee := int64(40000*(i+1)), int64(1200)
		id, at := next()
		ch := fmt.Sprintf("ch_sp_%03d", i)
		m := md(show, billing.KindSponsorship)
		m[billing.MetaSponsorshipID] = strconv.FormatInt(spID, 10)
		events = append(events, billing.EventJSON(id, "checkout.session.completed", at,
			billing.CheckoutSessionObject(fmt.Sprintf("cs_sp_%03d", i), billing.ChargeObject(ch, gross, fee, "USD", at), "", gross, "USD", m), nil, ""))
		exp.pay(ch, show, true, gross, fee)
		charges = append(charges, paid{ch, gross})
	}
	// Refunds (half, then sometimes the rest; or all at once) and disputes, on distinct charges.
	order := r.Perm(len(charges))
	refundObj := func(c paid, total int64) map[string]any {
		return map[string]any{"id": c.charge, "object": "charge", "amount": c.gross, "amount_refunded": total,
			"currency": "usd", "refunded": total == c.gross}
	}
	for k, idx := range order[:30] {
		c := charges[idx]
		switch {
		case k < 20:
			id, at := next()
			events = append(events, billing.EventJSON(id, "charge.refunded", at, refundObj(c, c.gross/2), map[string]any{"amount_refunded": 0}, ""))
			exp.reverse(c.charge, c.gross/2)
			if k%2 == 0 {
				id, at := next()
				events = append(events, billing.EventJSON(id, "charge.refunded", at, refundObj(c, c.gross), map[string]any{"amount_refunded": c.gross / 2}, ""))
				exp.reverse(c.charge, c.gross-c.gross/2)
			}
		default:
			id, at := next()
			events = append(events, billing.EventJSON(id, "charge.refunded", at, refundObj(c, c.gross), map[string]any{"amount_refunded": 0}, ""))
			exp.reverse(c.charge, c.gross)
		}
	}
	for k, idx := range order[30:40] {
		c := charges[idx]
		du := fmt.Sprintf("du_%03d", k)
		id, at := next()
		withdrawn := map[string]any{"id": "txn_w_" + du, "object": "balance_transaction", "amount": -c.gross, "fee": 1500,
			"currency": "usd", "created": at.Unix(), "type": "adjustment"}
		dispute := func(status string, bts ...any) map[string]any {
			return map[string]any{"id": du, "object": "dispute", "amount": c.gross, "currency": "usd", "charge": c.charge,
				"created": at.Unix(), "status": status, "balance_transactions": bts}
		}
		events = append(events, billing.EventJSON(id, "charge.dispute.created", at, dispute("needs_response", withdrawn), nil, ""))
		taken := exp.reverse(c.charge, c.gross)
		id2, at2 := next()
		if k%2 == 0 {
			reinstated := map[string]any{"id": "txn_r_" + du, "object": "balance_transaction", "amount": c.gross, "fee": -1500,
				"currency": "usd", "created": at2.Unix(), "type": "adjustment"}
			events = append(events, billing.EventJSON(id2, "charge.dispute.closed", at2, dispute("won", withdrawn, reinstated), nil, ""))
			exp.giveBack(c.charge, taken)
		} else {
			events = append(events, billing.EventJSON(id2, "charge.dispute.closed", at2, dispute("lost", withdrawn), nil, ""))
		}
	}
	// The creator's connected account: disabled, then enabled; and events Fanseed ignores.
	for i, enabled := range []bool{false, true} {
		id, at := next()
		events = append(events, billing.EventJSON(id, "account.updated", at, map[string]any{"id": creatorAcct, "object": "account",
			"charges_enabled": enabled, "payouts_enabled": enabled}, map[string]any{"payouts_enabled": i == 0}, creatorAcct))
	}
	for range 10 {
		id, at := next()
		events = append(events, billing.EventJSON(id, "customer.created", at, map[string]any{"id": "cus_" + id, "object": "customer"}, nil, ""))
	}
	return events, exp.owed
}

// monthFixture is the parties, shows and plans of the month, made the same way in each database.
func monthFixture(t *testing.T, ts *testServer) ([]monthShow, []int64, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	owner := ts.newUser(t, "ann@example.com", catalog.RoleCreator)
	effective := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	parties := map[string]int64{}
	dist, err := billing.DistributorParty(ctx, ts.db)
	if err != nil {
		t.Fatal(err)
	}
	parties["distributor"] = dist.ID
	creator, err := billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "Ann", "ann@example.com", &owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	parties["creator"] = creator.ID
	collab, err := billing.EnsureParty(ctx, ts.db, billing.PartyCollaborator, "Cole", "cole@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	parties["collaborator"] = collab.ID
	if _, err := ts.db.Exec(ctx, `UPDATE parties SET stripe_account_id = 'acct_ann' WHERE id = $1`, creator.ID); err != nil {
		t.Fatal(err)
	}
	shows := []monthShow{
		{gross: false, bps: map[string]int64{"distributor": 2500, "creator": 7500}},
		{gross: true, bps: map[string]int64{"distributor": 2500, "creator": 6000, "collaborator": 1500},
			sponsor: map[string]int64{"distributor": 1000, "creator": 9000}},
	}
	plan := func(bps map[string]int64) []billing.PlanLine {
		var l []billing.PlanLine
		for _, name := range []string{"distributor", "creator", "collaborator"} {
			if b, ok := bps[name]; ok {
				l = append(l, billing.PlanLine{PartyID: parties[name], BasisPoints: int(b)})
			}
		}
		return l
	}
	var sponsorships []int64
	for i := range shows {
		show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: fmt.Sprintf("month-%d", i), Title: "Month", Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		shows[i].id = show.ID
		fee := billing.FeePolicyNet
		if shows[i].gross {
			fee = billing.FeePolicyGross
		}
		if _, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceAll, fee, effective, plan(shows[i].bps), nil); err != nil {
			t.Fatal(err)
		}
		if shows[i].sponsor != nil {
			if _, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceSponsorship, billing.FeePolicyNet, effective, plan(shows[i].sponsor), nil); err != nil {
				t.Fatal(err)
			}
			for k := range 5 {
				sp, err := billing.CreateSponsorship(ctx, ts.db, show.ID, nil, billing.SponsorshipInput{SponsorName: fmt.Sprintf("Sponsor %d", k),
					ContactEmail: "deals@example.com", Episodes: "all of November", Amount: int64(40000 * (k + 1)), Currency: "USD"})
				if err != nil {
					t.Fatal(err)
				}
				sponsorships = append(sponsorships, sp.ID)
			}
		}
	}
	return shows, sponsorships, parties
}

// ledgerDump is every posting with what identifies it across databases, sorted.
func ledgerDump(t *testing.T, ts *testServer) []string {
	t.Helper()
	rows, _ := ts.db.Query(context.Background(), `
		SELECT concat_ws(' ', e.kind, e.idempotency_key, e.occurred_at, coalesce(e.source, '-'), a.kind, a.currency,
			coalesce(pa.name, '-'), p.role, p.amount, coalesce(r.idempotency_key, '-'))
		FROM postings p JOIN journal_entries e ON e.id = p.entry_id JOIN ledger_accounts a ON a.id = p.account_id
		LEFT JOIN parties pa ON pa.id = a.party_id LEFT JOIN journal_entries r ON r.id = e.reverses_entry_id`)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return lines
}

// A realistic month delivered three times over in shuffled order, concurrently, leaves exactly
// the ledger of one delivery in order, and every party's balance is what the events say.
func TestMonthDeliveredShuffledThreeTimes(t *testing.T) {
	t.Parallel()
	inOrder, _ := newMoneyServer(t)
	shuffled, _ := newMoneyServer(t)
	showsA, spA, partiesA := monthFixture(t, inOrder)
	showsB, spB, _ := monthFixture(t, shuffled)
	events, want := buildMonth(t, showsA, spA, "acct_ann")
	eventsB, _ := buildMonth(t, showsB, spB, "acct_ann")
	if len(events) < 200 {
		t.Fatalf("only %d events", len(events))
	}

	for _, e := range events {
		postSigned(t, inOrder.URL, e)
	}
	waitApplied(t, inOrder)

	var all [][]byte
	for range 3 {
		all = append(all, eventsB...)
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var wg sync.WaitGroup
	feed := make(chan []byte)
	for range 4 {
		wg.Go(func() {
			for e := range feed {
				postSigned(t, shuffled.URL, e)
			}
		})
	}
	for _, e := range all {
		feed <- e
	}
	close(feed)
	wg.Wait()
	waitApplied(t, shuffled)

	a, b := ledgerDump(t, inOrder), ledgerDump(t, shuffled)
	t.Logf("%d events (%d deliveries shuffled), %d postings; owed %v", len(events), len(all), len(a), want)
	if len(a) < 1000 {
		t.Fatalf("only %d postings", len(a))
	}
	if !slices.Equal(a, b) {
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("ledgers differ (%d and %d postings); first difference:\n in order: %s\n shuffled: %s", len(a), len(b), a[i], b[i])
			}
		}
		t.Fatalf("ledgers differ: %d postings in order, %d shuffled", len(a), len(b))
	}
	ctx := context.Background()
	for name, id := range partiesA {
		got := int64(0)
		bs, err := billing.PartyBalances(ctx, inOrder.db, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range bs {
			got += m.Amount
		}
		if got != want[name] {
			t.Errorf("%s is owed %d, want %d", name, got, want[name])
		}
		if want[name] <= 0 {
			t.Errorf("%s expected %d: the month should leave every party something", name, want[name])
		}
	}
	for _, ts := range []*testServer{inOrder, shuffled} {
		var events, waits, paidDeals, cancelled int
		var enabled bool
		err := ts.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM stripe_events), (SELECT count(*) FROM stripe_event_waits),
			(SELECT count(*) FROM sponsorships WHERE status = 'paid'),
			(SELECT count(*) FROM donations WHERE status = 'cancelled'),
			(SELECT payouts_enabled FROM parties WHERE stripe_account_id = 'acct_ann')`).Scan(&events, &waits, &paidDeals, &cancelled, &enabled)
		if err != nil {
			t.Fatal(err)
		}
		if events != len(eventsB) || waits != 0 || !enabled || paidDeals+refundedDeals(t, ts) != 5 {
			t.Errorf("%d events stored (want %d), %d still waiting, payouts enabled %v, %d deals paid", events, len(eventsB), waits, enabled, paidDeals)
		}
	}
	// The ledger balances as a whole: clearing plus fees equals what parties are owed plus the losses.
	var total int64
	if err := inOrder.db.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::bigint FROM postings`).Scan(&total); err != nil || total != 0 {
		t.Fatalf("postings sum to %d (%v)", total, err)
	}
}

func refundedDeals(t *testing.T, ts *testServer) int {
	var n int
	if err := ts.db.QueryRow(context.Background(), `SELECT count(*) FROM sponsorships WHERE status = 'refunded'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A new share plan splits only money received after it takes effect, even when the earlier
// payment's event arrives after the change; a refund of that payment reverses its own split.
func TestPlanChangeAppliesFromItsEffectiveTime(t *testing.T) {
	t.Parallel()
	ts, _ := newMoneyServer(t)
	ctx := context.Background()
	shows, _, parties := monthFixture(t, ts)
	show := shows[0] // 25/75 net from 2026-10-01
	change := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	if _, err := billing.CreatePlan(ctx, ts.db, show.id, billing.SourceAll, billing.FeePolicyNet, change,
		[]billing.PlanLine{{PartyID: parties["distributor"], BasisPoints: 5000}, {PartyID: parties["creator"], BasisPoints: 5000}}, nil); err != nil {
		t.Fatal(err)
	}
	md := map[string]string{billing.MetaKind: billing.KindDonation, billing.MetaShowID: strconv.FormatInt(show.id, 10)}
	donation := func(evt, ch string, at time.Time) []byte {
		return billing.EventJSON(evt, "checkout.session.completed", at, billing.CheckoutSessionObject("cs_"+ch,
			billing.ChargeObject(ch, 10000, 400, "USD", at), "", 10000, "USD", md), nil, "")
	}
	postSigned(t, ts.URL, donation("evt_after", "ch_after", change.Add(time.Hour)))    // 50/50 of 9600
	postSigned(t, ts.URL, donation("evt_before", "ch_before", change.Add(-time.Hour))) // 25/75 of 9600, delivered late
	waitApplied(t, ts)
	owedTo := func(name string) int64 {
		bs, err := billing.PartyBalances(ctx, ts.db, parties[name])
		if err != nil || len(bs) != 1 {
			t.Fatalf("balances of %s: %v %v", name, bs, err)
		}
		return bs[0].Amount
	}
	if d, c := owedTo("distributor"), owedTo("creator"); d != 2400+4800 || c != 7200+4800 {
		t.Fatalf("distributor %d, creator %d; want 7200 and 12000", d, c)
	}
	// Refunding the early payment in full takes back its own 25/75 split of what it left.
	postSigned(t, ts.URL, billing.EventJSON("evt_refund", "charge.refunded", change.Add(2*time.Hour),
		map[string]any{"id": "ch_before", "object": "charge", "amount": 10000, "amount_refunded": 10000, "currency": "usd"},
		map[string]any{"amount_refunded": 0}, ""))
	waitApplied(t, ts)
	if d, c := owedTo("distributor"), owedTo("creator"); d != 4800 || c != 4800 {
		t.Fatalf("after the refund: distributor %d, creator %d; want 4800 each", d, c)
	}
}

// An async payment (a bank debit) that fails marks the donation failed and leaves the deal
// offered with the reason on the creator's and the sponsor's pages; when the sponsor then pays
// the link another way, the deal is paid and the reason gone; a dispute the platform loses
// makes it refunded.
func TestAsyncPaymentFailed(t *testing.T) {
	t.Parallel()
	ts, _ := newMoneyServer(t)
	ctx := context.Background()
	shows, deals, _ := monthFixture(t, ts)
	show := shows[1]
	var donation int64
	if err := ts.db.QueryRow(ctx, `INSERT INTO donations (show_id, amount, currency) VALUES ($1, 1500, 'USD') RETURNING id`,
		show.id).Scan(&donation); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	pending := func(id, kind string, md map[string]string) map[string]any {
		md[billing.MetaKind], md[billing.MetaShowID] = kind, strconv.FormatInt(show.id, 10)
		return map[string]any{"id": id, "object": "checkout.session", "mode": "payment", "status": "complete",
			"payment_status": "unpaid", "amount_total": 40000, "currency": "usd", "metadata": md}
	}
	postSigned(t, ts.URL, billing.EventJSON("evt_don_failed", "checkout.session.async_payment_failed", at,
		pending("cs_don", billing.KindDonation, map[string]string{billing.MetaDonationID: strconv.FormatInt(donation, 10)}), nil, ""))
	dealMeta := map[string]string{billing.MetaSponsorshipID: strconv.FormatInt(deals[0], 10)}
	postSigned(t, ts.URL, billing.EventJSON("evt_deal_failed", "checkout.session.async_payment_failed", at,
		pending("cs_deal", billing.KindSponsorship, dealMeta), nil, ""))
	waitApplied(t, ts)

	var donationStatus, dealStatus, failure, token string
	if err := ts.db.QueryRow(ctx, `SELECT (SELECT status FROM donations WHERE id = $1), status, failure, pay_token
		FROM sponsorships WHERE id = $2`, donation, deals[0]).Scan(&donationStatus, &dealStatus, &failure, &token); err != nil {
		t.Fatal(err)
	}
	if donationStatus != "failed" || dealStatus != "offered" || !strings.Contains(failure, "20 Nov 2026 failed") {
		t.Fatalf("donation %s, deal %s (%q); want failed, offered with the reason", donationStatus, dealStatus, failure)
	}
	resp, err := http.Get(ts.URL + "/sponsor/" + token)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "failed (the bank did not honour the debit)") || !strings.Contains(string(page), "<button") {
		t.Fatalf("the sponsor's page does not show the failure and the pay button:\n%s", page)
	}

	gross := int64(40000)
	postSigned(t, ts.URL, billing.EventJSON("evt_deal_paid", "checkout.session.async_payment_succeeded", at.Add(time.Hour),
		billing.CheckoutSessionObject("cs_deal2", billing.ChargeObject("ch_deal", gross, 1200, "USD", at.Add(time.Hour)), "", gross, "USD",
			map[string]string{billing.MetaKind: billing.KindSponsorship, billing.MetaShowID: strconv.FormatInt(show.id, 10),
				billing.MetaSponsorshipID: strconv.FormatInt(deals[0], 10)}), nil, ""))
	waitApplied(t, ts)
	if err := ts.db.QueryRow(ctx, `SELECT status, failure FROM sponsorships WHERE id = $1`, deals[0]).Scan(&dealStatus, &failure); err != nil {
		t.Fatal(err)
	}
	if dealStatus != "paid" || failure != "" {
		t.Fatalf("after paying: deal %s (%q), want paid with no failure", dealStatus, failure)
	}
	// The sponsor disputes the payment and the platform loses: the deal is refunded.
	dispute := func(status string) map[string]any {
		return map[string]any{"id": "du_deal", "object": "dispute", "amount": gross, "currency": "usd", "charge": "ch_deal",
			"created": at.Add(2 * time.Hour).Unix(), "status": status}
	}
	postSigned(t, ts.URL, billing.EventJSON("evt_du_open", "charge.dispute.created", at.Add(2*time.Hour), dispute("needs_response"), nil, ""))
	postSigned(t, ts.URL, billing.EventJSON("evt_du_lost", "charge.dispute.closed", at.Add(3*time.Hour), dispute("lost"), nil, ""))
	waitApplied(t, ts)
	if err := ts.db.QueryRow(ctx, `SELECT status FROM sponsorships WHERE id = $1`, deals[0]).Scan(&dealStatus); err != nil {
		t.Fatal(err)
	}
	if dealStatus != "refunded" {
		t.Fatalf("after a lost dispute: deal %s, want refunded", dealStatus)
	}
}

// A payment for a show without a share plan cannot be split: its event is retried with its
// error on the admin page; once the plan exists, the admin tries it again and it is applied.
func TestStuckEventRetried(t *testing.T) {
	t.Parallel()
	ts, _ := newMoneyServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "ann@example.com", catalog.RoleCreator)
	admin := ts.newUser(t, "root@example.com", catalog.RoleAdmin)
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "no-plan", Title: "No plan", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	md := map[string]string{billing.MetaKind: billing.KindDonation, billing.MetaShowID: strconv.FormatInt(show.ID, 10)}
	postSigned(t, ts.URL, billing.EventJSON("evt_no_plan", "checkout.session.completed", at,
		billing.CheckoutSessionObject("cs_np", billing.ChargeObject("ch_np", 1000, 59, "USD", at), "", 1000, "USD", md), nil, ""))

	var lastError string
	deadline := time.Now().Add(30 * time.Second)
	for lastError == "" {
		if err := ts.db.QueryRow(ctx, `SELECT last_error FROM stripe_events WHERE id = 'evt_no_plan'`).Scan(&lastError); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no error recorded for the event after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	page := readBody(t, ts.do(t, &admin, "GET", "/admin/events", nil))
	if !strings.Contains(page, "evt_no_plan") || !strings.Contains(page, "has no share plan for donations") {
		t.Fatalf("the admin page does not list the event with its error (%q):\n%s", lastError, page)
	}

	dist, _ := billing.DistributorParty(ctx, ts.db)
	if _, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceAll, billing.FeePolicyNet, at.Add(-time.Hour),
		[]billing.PlanLine{{PartyID: dist.ID, BasisPoints: 10000}}, nil); err != nil {
		t.Fatal(err)
	}
	resp := ts.do(t, &admin, "POST", "/admin/events/retry", url.Values{"event": {"evt_no_plan"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/events?retried=1" {
		t.Fatalf("retry answered %d, to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	deadline = time.Now().Add(10 * time.Second) // a batch, not the job's next attempt 16 s on
	for {
		var applied bool
		ts.db.QueryRow(ctx, `SELECT applied_at IS NOT NULL FROM stripe_events WHERE id = 'evt_no_plan'`).Scan(&applied)
		if applied {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event retried is not applied after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if bs, err := billing.PartyBalances(ctx, ts.db, dist.ID); err != nil || len(bs) != 1 || bs[0].Amount != 1000-59 {
		t.Fatalf("distributor's balance %v (%v), want 9.41 USD", bs, err)
	}
	if page := readBody(t, ts.do(t, &admin, "GET", "/admin/events", nil)); !strings.Contains(page, "Every event received is applied.") {
		t.Fatalf("the admin page still lists events:\n%s", page)
	}

	// A type Fanseed does not handle is applied as ignored, and the admin sees it.
	postSigned(t, ts.URL, billing.EventJSON("evt_tax", "customer.tax_id.created", at, map[string]any{"id": "txi_1", "object": "tax_id"}, nil, ""))
	deadline = time.Now().Add(10 * time.Second)
	for {
		var ignored bool
		ts.db.QueryRow(ctx, `SELECT ignored FROM stripe_events WHERE id = 'evt_tax' AND applied_at IS NOT NULL`).Scan(&ignored)
		if ignored {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unknown event is not applied as ignored after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if page := readBody(t, ts.do(t, &admin, "GET", "/admin/events", nil)); !strings.Contains(page, "customer.tax_id.created") ||
		!strings.Contains(page, "evt_tax") {
		t.Fatalf("the admin page does not show the ignored event type:\n%s", page)
	}
}
