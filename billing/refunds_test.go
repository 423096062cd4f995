package billing

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing/stripetest"
)

// refundObject is a charge.refunded payload's charge, with its refunds and their balance
// transactions when refunds is not nil.
func refundObject(charge string, amount, refunded int64, refunds []map[string]any) map[string]any {
	ch := map[string]any{"id": charge, "object": "charge", "amount": amount, "amount_refunded": refunded,
		"currency": "usd", "refunded": refunded == amount}
	if refunds != nil {
		data := make([]any, len(refunds))
		for i, r := range refunds {
			data[i] = r
		}
		ch["refunds"] = map[string]any{"object": "list", "data": data, "has_more": false}
	}
	return ch
}

func refundWithFee(id string, amount, fee int64, created time.Time) map[string]any {
	return map[string]any{"id": id, "object": "refund", "amount": amount, "status": "succeeded", "created": created.Unix(),
		"balance_transaction": map[string]any{"id": "txn_" + id, "object": "balance_transaction", "type": "refund",
			"amount": -amount, "fee": fee, "currency": "usd", "created": created.Unix()}}
}

// The fee effects Stripe reports on refunds are posted: a fee charged on a refund is a platform
// loss, part of the payment's fee returned reduces it. The second refund's event arrives first:
// it waits for the payment, then books both refunds Stripe lists, each by its id with its own
// fee; the first refund's event then changes nothing, and the parties give back exactly what
// they got.
func TestRefundFeeEffects(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7000, 3000))
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	md := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(f.show, 10)}
	pay := EventJSON("evt_pay", "checkout.session.completed", at,
		CheckoutSessionObject("cs_fee", ChargeObject("ch_fee", 2000, 88, "USD", at), "", 2000, "USD", md), nil, "")
	r1 := refundWithFee("re_1", 500, 15, at.Add(time.Hour))
	r2 := refundWithFee("re_2", 1500, -30, at.Add(2*time.Hour))
	second := EventJSON("evt_refund_2", "charge.refunded", at.Add(2*time.Hour),
		refundObject("ch_fee", 2000, 2000, []map[string]any{r2, r1}), map[string]any{"amount_refunded": 500}, "")
	first := EventJSON("evt_refund_1", "charge.refunded", at.Add(time.Hour),
		refundObject("ch_fee", 2000, 500, []map[string]any{r1}), map[string]any{"amount_refunded": 0}, "")

	deliver(t, f, svc, second)
	if got := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE kind = 'refund'`); got != 0 {
		t.Fatalf("%d refunds posted before their payment, want 0 (the event waits for it)", got)
	}
	deliver(t, f, svc, pay)
	if got := count(t, f.db, `SELECT count(*) FROM refunds WHERE charge_id = 'ch_fee'`); got != 2 {
		t.Fatalf("%d refunds booked once the payment was, want the 2 Stripe lists", got)
	}
	deliver(t, f, svc, first)
	deliver(t, f, svc, second) // a duplicate changes nothing
	if got := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE kind = 'refund'`); got != 2 {
		t.Fatalf("%d refund entries, want 2", got)
	}

	fees := count(t, f.db, `SELECT coalesce(-sum(p.amount), 0) FROM postings p JOIN journal_entries e ON e.id = p.entry_id
		JOIN ledger_accounts a ON a.id = p.account_id WHERE a.kind = 'processor_fees' AND e.idempotency_key = $1`, "refund:re_1")
	if fees != 15 {
		t.Fatalf("first refund's fee effect = %d, want 15", fees)
	}
	for _, c := range []struct {
		kind  AccountKind
		party int64
		want  int64
	}{
		{ProcessorFees, 0, -88 - 15 + 30},
		{Refunds, 0, 88 + 15 - 30}, // the fee the parties never received, plus the refund fee, less the fee returned
		{StripeClearing, 0, 0},
		{PartyPayable, f.creator, 0},
		{PartyPayable, f.distributor, 0},
	} {
		if got := balance(t, f.db, c.kind, "USD", c.party); got != c.want {
			t.Errorf("%s (party %d) = %d, want %d", c.kind, c.party, got, c.want)
		}
	}
}

// With a Stripe key and a charge.refunded payload that does not carry its refunds, the refunds
// and their balance transactions are fetched from Stripe (stripe-mock here) in a job of the
// event's own, and the fee they report is posted.
func TestRefundFeesFetchedFromStripe(t *testing.T) {
	t.Parallel()
	var fetches atomic.Int32
	st := NewStripe("sk_test_123", stripetest.URL(t), &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Path == "/v1/refunds" && req.URL.Query().Get("charge") == "ch_fetched" {
			fetches.Add(1)
		}
		return http.DefaultTransport.RoundTrip(req)
	})})
	f, svc := newService(t, st)
	ctx := context.Background()
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7000, 3000))

	// What stripe-mock says, read here with the same client.
	list, err := st.refunds(ctx, "ch_fetched")
	must(t, err)
	var refunded, fee int64
	for _, r := range list {
		if r.BalanceTransaction == nil || r.BalanceTransaction.Type == "" {
			t.Fatalf("stripe-mock's refund %s has no expanded balance transaction", r.ID)
		}
		refunded += r.Amount
		fee += r.BalanceTransaction.Fee
	}
	if refunded <= 0 {
		t.Fatalf("stripe-mock lists no refunded amount: %+v", list)
	}
	fetches.Store(0)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	gross := 10 * refunded
	md := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(f.show, 10)}
	deliver(t, f, svc, EventJSON("evt_pay", "checkout.session.completed", at,
		CheckoutSessionObject("cs_f", ChargeObject("ch_fetched", gross, 0, "USD", at), "", gross, "USD", md), nil, ""))
	deliver(t, f, svc, EventJSON("evt_refund", "charge.refunded", at.Add(time.Hour),
		refundObject("ch_fetched", gross, refunded, nil), map[string]any{"amount_refunded": 0}, ""))

	if got := count(t, f.db, `SELECT count(*) FROM stripe_events WHERE applied_at IS NOT NULL`); got != 2 {
		t.Fatalf("%d events applied, want 2", got)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("the refunds were fetched %d times, want once", n)
	}
	if got := balance(t, f.db, StripeClearing, "USD", 0); got != gross-refunded {
		t.Fatalf("clearing = %d, want %d", got, gross-refunded)
	}
	if got := balance(t, f.db, ProcessorFees, "USD", 0); got != -fee {
		t.Fatalf("processor fees = %d, want the refunds' %d", got, -fee)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
