package billing

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/billing/stripetest"
)

// The property test: thousands of random Stripe operations (one-off donations, monthly
// donations with invoices, sponsorships, partial and full refunds, refunds that fail, disputes
// won, lost, partly won and inquiries, under plans that change over time, in USD, in EUR
// settled as USD, in JPY and in KWD), delivered shuffled with duplicates through both the batch
// path and the single path, with payout runs between (some transfers refused by Stripe, some
// runs crashing between the transfer and the commit) and transfers reversed; then the ledger is
// checked against a model of its own: every event applied once, every entry balanced, each
// party owed exactly its largest-remainder splits less what reversals took back (replayed in
// the ledger's order) less what was paid out, refunds summing to Stripe's amount refunded, and
// nothing paid twice.
//
// FANSEED_PROPERTY_SEED sets the seed (CI uses a fixed one), FANSEED_PROPERTY_OPS the number of
// charges generated.
func TestLedgerProperty(t *testing.T) {
	t.Parallel()
	seed := uint64(20261203)
	if v := os.Getenv("FANSEED_PROPERTY_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		must(t, err)
		seed = n
	}
	charges := 800
	if v := os.Getenv("FANSEED_PROPERTY_OPS"); v != "" {
		n, err := strconv.Atoi(v)
		must(t, err)
		charges = n
	}
	t.Logf("seed %d (FANSEED_PROPERTY_SEED), %d charges", seed, charges)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	front := &stripeFront{refuse: map[string]bool{}}
	st := NewStripe("sk_test_123", stripetest.URL(t), &http.Client{Transport: front})
	f, svc := newService(t, st)
	ctx := context.Background()

	// Plans over November: all sources 70/20/10 from the start, sponsorship money 50/50 from
	// the 5th, all sources 60/25/15 from the 15th.
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	parties := []int64{f.creator, f.collaborator, f.distributor}
	m := &model{owed: map[partyCur]int64{}, plans: []modelPlan{
		{at: nov.AddDate(0, -1, 0), source: SourceAll, parties: parties, bps: []int{7000, 2000, 1000}},
		{at: nov.AddDate(0, 0, 4), source: SourceSponsorship, parties: parties[:2], bps: []int{5000, 5000}},
		{at: nov.AddDate(0, 0, 14), source: SourceAll, parties: parties, bps: []int{6000, 2500, 1500}},
	}}
	for _, p := range m.plans {
		l := make([]PlanLine, len(p.parties))
		for i := range p.parties {
			l[i] = PlanLine{PartyID: p.parties[i], BasisPoints: p.bps[i]}
		}
		createPlan(t, f.db, f.show, p.source, FeePolicyNet, p.at, l)
	}

	gen := &generator{rng: rng, show: f.show, start: nov, charges: map[string]*modelCharge{}}
	for range charges {
		gen.charge()
	}
	events := gen.events
	t.Logf("%d events", len(events))

	// Delivery: shuffled, a tenth twice; each stored (the batch path) or stored and applied at
	// once (the single path); payout runs in between.
	order := make([]int, 0, len(events)+len(events)/10)
	for i := range events {
		order = append(order, i)
		if rng.IntN(10) == 0 {
			order = append(order, i)
		}
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, a := range []string{"acct_creator", "acct_collab"} {
		party := map[string]int64{"acct_creator": f.creator, "acct_collab": f.collaborator}[a]
		must(t, exec(f, `UPDATE parties SET stripe_account_id = $2, payouts_enabled = true WHERE id = $1`, party, a))
		must(t, SetPayoutThreshold(ctx, f.db, party, "USD", ptr(int64(0))))
	}
	runs := 0
	for k, i := range order {
		payload := events[i]
		ev, err := ParseEventHeader(payload)
		must(t, err)
		_, err = svc.StoreEvent(ctx, ev, payload)
		must(t, err)
		if rng.IntN(3) == 0 {
			if err := svc.ApplyEvent(ctx, ev.ID); err != nil && !strings.Contains(err.Error(), "waiting") {
				// A job may hold the event; an event that fails here is retried by its job.
				t.Logf("apply %s at once: %v", ev.ID, err)
			}
		}
		if k > 0 && k%(len(order)/6) == 0 {
			runs++
			waitIdle(t, f)
			front.mu.Lock()
			front.refuse["acct_collab"] = runs%3 == 1 // Stripe refuses some runs' transfers to one party
			front.mu.Unlock()
			opts := PayoutOptions{}
			if runs%4 == 2 {
				opts.AfterTransfer = func(Payout, string) error { return fmt.Errorf("crash between the transfer and the commit") }
			}
			if _, err := svc.RunPayouts(ctx, "2026-11", opts); err != nil && opts.AfterTransfer == nil {
				t.Fatalf("payout run %d: %v", runs, err)
			}
			// Some transfers made are reversed, in part or whole.
			reversals := gen.reverseSome(t, f)
			for _, p := range reversals {
				deliver(t, f, svc, p)
			}
		}
	}
	waitIdle(t, f)
	front.mu.Lock()
	front.refuse = map[string]bool{}
	front.mu.Unlock()
	_, err := svc.RunPayouts(ctx, "2026-11", PayoutOptions{}) // finishes what crashed
	must(t, err)
	waitIdle(t, f)

	// Every event applied, once: the ledger holds one entry per fact.
	if n := count(t, f.db, `SELECT count(*) FROM stripe_events WHERE applied_at IS NULL`); n != 0 {
		rows, _ := f.db.Query(ctx, `SELECT id || ' ' || type || ' ' || last_error FROM stripe_events WHERE applied_at IS NULL LIMIT 10`)
		left, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		t.Fatalf("%d events not applied: %q", n, left)
	}
	if n := count(t, f.db, `SELECT count(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id, currency HAVING sum(amount) <> 0) x`); n != 0 {
		t.Fatalf("%d entries do not balance", n)
	}
	if n, want := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE kind = 'payment'`), len(gen.paid); n != want {
		t.Fatalf("%d payment entries, want %d", n, want)
	}

	// Replay the reversals in the ledger's order through the model.
	rows, _ := f.db.Query(ctx, `SELECT e.idempotency_key FROM journal_entries e
		WHERE e.kind IN ('refund', 'refund_failed', 'dispute', 'dispute_won') ORDER BY e.id`)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err)
	for _, c := range gen.paidInOrder() {
		m.pay(t, c)
	}
	for _, k := range keys {
		m.reverse(t, gen, k)
	}

	kinds := map[string]int{}
	for _, k := range keys {
		kind, _, _ := strings.Cut(k, ":")
		kinds[kind]++
	}
	t.Logf("ledger: %d payments, reversals %v, %d payout runs, %d transfers reversed", len(gen.paid), kinds, runs, len(gen.revCount))

	// Refunds sum to what Stripe says the charge's amount refunded is.
	for _, c := range gen.charges {
		if !c.posted {
			continue
		}
		var booked int64
		must(t, f.db.QueryRow(ctx, `SELECT coalesce(sum(amount) FILTER (WHERE NOT failed), 0) FROM refunds WHERE charge_id = $1`, c.id).Scan(&booked))
		if booked != c.refunded() {
			t.Errorf("charge %s: refunds booked %d, Stripe's amount refunded %d", c.id, booked, c.refunded())
		}
	}

	// Nothing paid twice: one transfer asked for per payout (a crashed run's retry uses the
	// same key), and each party owed what the model says less what was paid out.
	var transferred int
	must(t, f.db.QueryRow(ctx, `SELECT count(*) FROM payouts WHERE stripe_transfer_id IS NOT NULL`).Scan(&transferred))
	var distinctTransfers int
	must(t, f.db.QueryRow(ctx, `SELECT count(DISTINCT stripe_transfer_id) FROM payouts WHERE stripe_transfer_id IS NOT NULL`).Scan(&distinctTransfers))
	if transferred != distinctTransfers || transferred == 0 {
		t.Fatalf("%d payouts transferred with %d distinct transfers", transferred, distinctTransfers)
	}
	if n := count(t, f.db, `SELECT count(*) FROM payouts WHERE status = 'pending'`); n != 0 {
		t.Fatalf("%d payouts still pending after the last run", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM payouts WHERE status = 'refused'`); n == 0 {
		t.Fatal("no transfer was refused: the test did not exercise refusals")
	}
	paidOut := map[partyCur]int64{}
	rows, _ = f.db.Query(ctx, `SELECT party_id, currency, sum(amount) FROM payouts WHERE stripe_transfer_id IS NOT NULL GROUP BY 1, 2`)
	var pid, amt int64
	var cur string
	_, err = pgx.ForEachRow(rows, []any{&pid, &cur, &amt}, func() error { paidOut[partyCur{pid, cur}] = amt; return nil })
	must(t, err)
	for k, v := range gen.reversed {
		paidOut[k] -= v
	}
	for _, cur := range []string{"USD", "JPY", "KWD"} {
		for _, p := range parties {
			k := partyCur{p, cur}
			want := m.owed[k] - paidOut[k]
			if got := owed(t, f.db, p, cur); got != want {
				t.Errorf("party %d owed %d %s, want %d (splits %d, paid out net %d)", p, got, cur, want, m.owed[k], paidOut[k])
			}
			if transit := balance(t, f.db, PayoutsInTransit, cur, p); transit != 0 {
				t.Errorf("party %d has %d %s in transit after the last run", p, transit, cur)
			}
		}
	}
}

type partyCur struct {
	party    int64
	currency string
}

// modelCharge is one charge as the generator made it and as Stripe would report it.
type modelCharge struct {
	id       string
	currency string // the charge's
	ledger   string // what it settled in
	amount   int64  // in the charge's currency
	gross    int64  // settled
	fee      int64
	at       time.Time
	source   string
	rate     float64 // ledger per charge unit
	posted   bool    // an event posts it
	refunds  []modelRefund
	dispute  *modelDispute
}

type modelRefund struct {
	id      string
	amount  int64 // charge currency
	settled int64
	failed  bool
}

type modelDispute struct {
	id         string
	inquiry    bool
	withdrawn  int64 // settled
	fee        int64
	reinstated int64
}

func (c *modelCharge) refunded() int64 {
	var n int64
	for _, r := range c.refunds {
		if !r.failed {
			n += r.amount
		}
	}
	return n
}

type generator struct {
	rng      *rand.Rand
	show     int64
	start    time.Time
	n        int
	events   [][]byte
	charges  map[string]*modelCharge
	paid     []*modelCharge
	reversed map[partyCur]int64
	revCount map[string]int64 // transfer id: amount reversed so far
}

func (g *generator) paidInOrder() []*modelCharge { return g.paid }

func (g *generator) id(prefix string) string {
	g.n++
	return fmt.Sprintf("%s_%d", prefix, g.n)
}

func (g *generator) event(typ string, at time.Time, object any, previous map[string]any) {
	g.events = append(g.events, EventJSON(g.id("evt"), typ, at, object, previous, ""))
}

// charge makes a payment and what befalls it.
func (g *generator) charge() {
	r := g.rng
	c := &modelCharge{id: g.id("ch"), at: g.start.Add(time.Duration(r.IntN(28*24)) * time.Hour), source: SourceDonations}
	switch r.IntN(5) {
	case 0, 1:
		c.currency, c.ledger, c.amount, c.rate = "USD", "USD", int64(100+r.IntN(20000)), 1
	case 2:
		c.currency, c.ledger, c.amount, c.rate = "EUR", "USD", int64(100+r.IntN(20000)), 1.08
	case 3:
		c.currency, c.ledger, c.amount, c.rate = "JPY", "JPY", int64(100+r.IntN(50000)), 1
	default:
		c.currency, c.ledger, c.amount, c.rate = "KWD", "KWD", int64(10*(100+r.IntN(2000))), 1
	}
	c.gross = settle(c.amount, c.rate)
	c.fee = TestFee(c.gross, c.ledger)
	if c.fee >= c.gross {
		c.fee = 0
	}
	g.charges[c.id] = c
	ch := ChargeObject(c.id, c.amount, c.fee, c.currency, c.at)
	bt := ch["balance_transaction"].(map[string]any)
	bt["amount"], bt["currency"], bt["net"] = c.gross, strings.ToLower(c.ledger), c.gross-c.fee
	md := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(g.show, 10)}
	switch r.IntN(4) {
	case 0: // a sponsorship
		c.source = SourceSponsorship
		md[MetaKind] = KindSponsorship
		g.event("checkout.session.completed", c.at, CheckoutSessionObject(g.id("cs"), ch, "", c.amount, c.currency, md), nil)
	case 1: // a monthly donation's invoice (its session and, sometimes, its end too)
		sub := g.id("sub")
		g.event("checkout.session.completed", c.at, CheckoutSessionObject(g.id("cs"), nil, sub, c.amount, c.currency, md), nil)
		g.event("invoice.paid", c.at, InvoiceObject(g.id("in"), ch, sub, md), nil)
		if r.IntN(3) == 0 {
			g.event("customer.subscription.deleted", c.at.Add(time.Hour),
				map[string]any{"id": sub, "object": "subscription", "status": "canceled", "metadata": md}, nil)
		}
	default: // a one-off donation, sometimes async
		typ := "checkout.session.completed"
		if r.IntN(5) == 0 {
			typ = "checkout.session.async_payment_succeeded"
		}
		g.event(typ, c.at, CheckoutSessionObject(g.id("cs"), ch, "", c.amount, c.currency, md), nil)
	}
	c.posted = true
	g.paid = append(g.paid, c)

	// Refunds: none, some partial, all; some fail.
	at := c.at.Add(time.Hour)
	left := c.amount
	for k := r.IntN(4); k > 0 && left > 0; k-- {
		amount := left
		if r.IntN(2) == 0 {
			amount = max(1, left/int64(2+r.IntN(3)))
		}
		if c.currency == "KWD" {
			amount -= amount % 10
			if amount == 0 {
				break
			}
		}
		rf := modelRefund{id: g.id("re"), amount: amount, settled: settle(amount, c.rate)}
		c.refunds = append(c.refunds, rf)
		left -= amount
		g.refundEvent(c, at)
		if r.IntN(5) == 0 { // it fails
			c.refunds[len(c.refunds)-1].failed = true
			left += amount
			failed := map[string]any{"id": rf.id, "object": "refund", "amount": rf.amount, "charge": c.id, "status": "failed",
				"currency": strings.ToLower(c.currency), "created": at.Unix()}
			g.event([]string{"charge.refund.updated", "refund.failed"}[r.IntN(2)], at.Add(time.Minute), failed, nil)
		}
		at = at.Add(time.Hour)
	}
	// A dispute, an inquiry, or neither.
	switch r.IntN(6) {
	case 0: // an inquiry that closes
		du := &modelDispute{id: g.id("du"), inquiry: true}
		c.dispute = du
		g.event("charge.dispute.created", at, g.disputeObject(c, "warning_needs_response"), nil)
		g.event("charge.dispute.closed", at.Add(time.Hour), g.disputeObject(c, "warning_closed"), nil)
	case 1, 2:
		du := &modelDispute{id: g.id("du"), withdrawn: c.gross, fee: map[string]int64{"USD": 1500, "JPY": 1500, "KWD": 5000}[c.ledger]}
		c.dispute = du
		g.event("charge.dispute.created", at, g.disputeObject(c, "needs_response"), nil)
		switch r.IntN(3) {
		case 0:
			du.reinstated = du.withdrawn
			g.event("charge.dispute.closed", at.Add(time.Hour), g.disputeObject(c, "won"), nil)
		case 1:
			g.event("charge.dispute.closed", at.Add(time.Hour), g.disputeObject(c, "lost"), nil)
		default:
			du.reinstated = max(1, du.withdrawn*int64(1+r.IntN(9))/10)
			g.event("charge.dispute.closed", at.Add(time.Hour), g.disputeObject(c, "lost"), nil)
		}
	}
}

// refundEvent is the charge.refunded event of the charge's latest refund: the charge's
// cumulative amount refunded and Stripe's list of its refunds so far.
func (g *generator) refundEvent(c *modelCharge, at time.Time) {
	var list []map[string]any
	var total, prev int64
	for i, rf := range c.refunds {
		status := "succeeded"
		if rf.failed {
			status = "failed"
		} else {
			total += rf.amount
			if i < len(c.refunds)-1 {
				prev += rf.amount
			}
		}
		list = append(list, stripeRefund(rf.id, c.id, rf.amount, rf.settled, strings.ToLower(c.ledger), status, at))
	}
	g.events = append(g.events, chargeRefunded(g.id("evt"), c.id, c.amount, total, strings.ToLower(c.currency), prev, list, at))
}

func (g *generator) disputeObject(c *modelCharge, status string) map[string]any {
	du := c.dispute
	var bts []any
	if !du.inquiry {
		bts = append(bts, disputeTxn("txn_"+du.id+"_w", -du.withdrawn, du.fee, strings.ToLower(c.ledger), c.at))
		if du.reinstated > 0 && (status == "won" || status == "lost") {
			bts = append(bts, disputeTxn("txn_"+du.id+"_r", du.reinstated, 0, strings.ToLower(c.ledger), c.at))
		}
	}
	return map[string]any{"id": du.id, "object": "dispute", "amount": c.amount, "currency": strings.ToLower(c.currency),
		"charge": c.id, "status": status, "created": c.at.Unix(), "balance_transactions": bts}
}

// reverseSome reverses some of the transfers made so far, in part or whole, and returns the
// events; the model counts what came back.
func (g *generator) reverseSome(t *testing.T, f fixture) [][]byte {
	t.Helper()
	if g.reversed == nil {
		g.reversed, g.revCount = map[partyCur]int64{}, map[string]int64{}
	}
	rows, _ := f.db.Query(context.Background(), `SELECT stripe_transfer_id, party_id, currency, amount FROM payouts
		WHERE stripe_transfer_id IS NOT NULL ORDER BY id`)
	type tr struct {
		id       string
		party    int64
		currency string
		amount   int64
	}
	var list []tr
	var x tr
	_, err := pgx.ForEachRow(rows, []any{&x.id, &x.party, &x.currency, &x.amount}, func() error { list = append(list, x); return nil })
	must(t, err)
	var out [][]byte
	for _, x := range list {
		if g.rng.IntN(4) != 0 || g.revCount[x.id] >= x.amount {
			continue
		}
		step := StripeStep(x.currency)
		more := max(step, (x.amount-g.revCount[x.id])/2/step*step)
		total := g.revCount[x.id] + more
		obj := map[string]any{"id": x.id, "object": "transfer", "amount": x.amount, "amount_reversed": total,
			"currency": strings.ToLower(x.currency), "reversed": total == x.amount}
		out = append(out, EventJSON(g.id("evt"), "transfer.reversed", time.Now(), obj, map[string]any{"amount_reversed": g.revCount[x.id]}, ""))
		g.revCount[x.id] = total
		g.reversed[partyCur{x.party, x.currency}] += more
	}
	return out
}

func settle(amount int64, rate float64) int64 {
	if rate == 1 {
		return amount
	}
	return int64(float64(amount)*rate + 0.5)
}

// model computes what each party is owed from the charges and the reversals in the order the
// ledger applied them, with a largest-remainder division of its own.
type model struct {
	plans    []modelPlan
	owed     map[partyCur]int64
	payments map[string]*modelPayment
}

type modelPlan struct {
	at      time.Time
	source  string
	parties []int64
	bps     []int
}

type modelPayment struct {
	charge   *modelCharge
	parties  []int64
	received []int64
	taken    []int64
	lines    map[string][]int64 // reversal key: the parts it took from each party, then its loss
}

func (m *model) plan(source string, at time.Time) modelPlan {
	var best *modelPlan
	for i := range m.plans {
		p := &m.plans[i]
		if p.at.After(at) || (p.source != source && p.source != SourceAll) {
			continue
		}
		own, bestOwn := p.source == source, best != nil && best.source == source
		if best == nil || (own && !bestOwn) || (own == bestOwn && p.at.After(best.at)) {
			best = p
		}
	}
	return *best
}

func (m *model) pay(t *testing.T, c *modelCharge) {
	t.Helper()
	if m.payments == nil {
		m.payments = map[string]*modelPayment{}
	}
	p := m.plan(c.source, time.Unix(c.at.Unix(), 999_999_000))
	w := make([]int64, len(p.bps))
	for i, b := range p.bps {
		w[i] = int64(b)
	}
	received := largestRemainder(c.gross-c.fee, w)
	mp := &modelPayment{charge: c, parties: p.parties, received: received, taken: make([]int64, len(p.parties)),
		lines: map[string][]int64{}}
	m.payments[c.id] = mp
	for i, party := range p.parties {
		m.owed[partyCur{party, c.ledger}] += received[i]
	}
}

// reverse applies one reversal entry, by its idempotency key, as the ledger should have.
func (m *model) reverse(t *testing.T, g *generator, key string) {
	t.Helper()
	kind, id, _ := strings.Cut(key, ":")
	var mp *modelPayment
	var amount int64
	var undo string // the reversal whose lines this one turns round
	for _, c := range g.charges {
		for _, r := range c.refunds {
			if r.id == id {
				mp, amount = m.payments[c.id], r.settled
			}
		}
		if c.dispute != nil && c.dispute.id == id {
			mp = m.payments[c.id]
			amount = c.dispute.withdrawn
			if kind == "dispute_won" {
				amount = c.dispute.reinstated
			}
		}
	}
	if mp == nil {
		t.Fatalf("ledger entry %q names nothing the generator made", key)
	}
	switch kind {
	case "refund", "dispute":
		w := make([]int64, len(mp.parties))
		var sum int64
		for i := range w {
			w[i] = mp.received[i] - mp.taken[i]
			sum += w[i]
		}
		take := min(amount, sum)
		parts := largestRemainder(take, w)
		for i := range parts {
			mp.taken[i] += parts[i]
			m.owed[partyCur{mp.parties[i], mp.charge.ledger}] -= parts[i]
		}
		mp.lines[key] = append(parts, amount-take)
		return
	case "refund_failed":
		undo = "refund:" + id
	case "dispute_won":
		undo = "dispute:" + id
	default:
		t.Fatalf("ledger entry %q of an unknown kind", key)
	}
	lines, ok := mp.lines[undo]
	if !ok {
		t.Fatalf("%s before %s in the ledger", key, undo)
	}
	var withdrawn int64
	for _, l := range lines {
		withdrawn += l
	}
	back := lines
	if kind == "dispute_won" && amount != withdrawn {
		back = largestRemainder(amount, lines)
	}
	for i := range mp.parties {
		mp.taken[i] -= back[i]
		m.owed[partyCur{mp.parties[i], mp.charge.ledger}] += back[i]
	}
}

// largestRemainder divides amount in proportion to weights: each part its exact share rounded
// down, the units left one each to the largest remainders, ties to the earlier weight.
func largestRemainder(amount int64, weights []int64) []int64 {
	total := big.NewInt(0)
	for _, w := range weights {
		total.Add(total, big.NewInt(w))
	}
	parts := make([]int64, len(weights))
	if total.Sign() == 0 {
		return parts
	}
	rems := make([]*big.Int, len(weights))
	var sum int64
	for i, w := range weights {
		q, r := new(big.Int).QuoRem(new(big.Int).Mul(big.NewInt(amount), big.NewInt(w)), total, new(big.Int))
		parts[i], rems[i] = q.Int64(), r
		sum += parts[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]].Cmp(rems[order[b]]) > 0 })
	for k := int64(0); k < amount-sum; k++ {
		parts[order[k]]++
	}
	return parts
}
