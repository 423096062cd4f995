package billing

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// paymentEvent is a donation's checkout.session.completed, its charge of amount in currency
// settled as settled (in ledger currency) with fee.
func paymentEvent(id, charge string, show int64, amount int64, currency string, settled, fee int64, ledger string, at time.Time) []byte {
	ch := ChargeObject(charge, amount, fee, currency, at)
	bt := ch["balance_transaction"].(map[string]any)
	bt["amount"], bt["currency"], bt["net"] = settled, ledger, settled-fee
	md := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(show, 10)}
	return EventJSON(id, "checkout.session.completed", at, CheckoutSessionObject("cs_"+charge, ch, "", amount, currency, md), nil, "")
}

// stripeRefund is a refund as Stripe lists it, with its balance transaction when settled > 0.
func stripeRefund(id, charge string, amount, settled int64, ledger, status string, at time.Time) map[string]any {
	r := map[string]any{"id": id, "object": "refund", "amount": amount, "charge": charge, "status": status, "created": at.Unix()}
	if settled > 0 {
		r["balance_transaction"] = map[string]any{"id": "txn_" + id, "object": "balance_transaction", "type": "refund",
			"amount": -settled, "fee": 0, "currency": ledger, "created": at.Unix()}
	}
	return r
}

func chargeRefunded(id, charge string, amount, refunded int64, currency string, prev int64, refunds []map[string]any, at time.Time) []byte {
	ch := map[string]any{"id": charge, "object": "charge", "amount": amount, "amount_refunded": refunded, "currency": currency,
		"refunded": refunded == amount}
	if refunds != nil {
		data := make([]any, len(refunds))
		for i, r := range refunds {
			data[i] = r
		}
		ch["refunds"] = map[string]any{"object": "list", "data": data, "has_more": false}
	}
	return EventJSON(id, "charge.refunded", at, ch, map[string]any{"amount_refunded": prev}, "")
}

func disputeEvent(id, typ, dispute, charge string, amount int64, currency, status string, at time.Time, bts ...map[string]any) []byte {
	list := make([]any, len(bts))
	for i, bt := range bts {
		list[i] = bt
	}
	return EventJSON(id, typ, at, map[string]any{"id": dispute, "object": "dispute", "amount": amount, "currency": currency,
		"charge": charge, "status": status, "created": at.Unix(), "balance_transactions": list}, nil, "")
}

func disputeTxn(id string, amount, fee int64, currency string, at time.Time) map[string]any {
	return map[string]any{"id": id, "object": "balance_transaction", "type": "adjustment", "amount": amount, "fee": fee,
		"currency": currency, "created": at.Unix()}
}

type partyBalances struct{ clearing, creator, distributor int64 }

func balances(t *testing.T, f fixture, currency string) partyBalances {
	t.Helper()
	return partyBalances{balance(t, f.db, StripeClearing, currency, 0), balance(t, f.db, PartyPayable, currency, f.creator),
		balance(t, f.db, PartyPayable, currency, f.distributor)}
}

func unapplied(t *testing.T, f fixture) int {
	t.Helper()
	return count(t, f.db, `SELECT count(*) FROM stripe_events WHERE applied_at IS NULL`)
}

// A 10.00 EUR charge that settled as 10.80 USD, refunded in two halves, takes 5.40 USD back
// each time, as Stripe's balance transactions say: after the full refund, clearing and every
// party are at zero. Offline (no refund list), the halves are converted at the payment's rate,
// with the same result.
func TestRefundsOfAChargeSettledInAnotherCurrency(t *testing.T) {
	t.Parallel()
	for _, listed := range []bool{true, false} {
		t.Run(map[bool]string{true: "StripesBalanceTransactions", false: "Offline"}[listed], func(t *testing.T) {
			t.Parallel()
			f, svc := newService(t, nil)
			createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7500, 2500))
			at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
			deliver(t, f, svc, paymentEvent("evt_pay", "ch_eur", f.show, 1000, "EUR", 1080, 61, "usd", at))
			r1 := stripeRefund("re_1", "ch_eur", 500, 540, "usd", "succeeded", at.Add(time.Hour))
			r2 := stripeRefund("re_2", "ch_eur", 500, 540, "usd", "succeeded", at.Add(2*time.Hour))
			var first, second []map[string]any
			if listed {
				first, second = []map[string]any{r1}, []map[string]any{r1, r2}
			}
			deliver(t, f, svc, chargeRefunded("evt_re_1", "ch_eur", 1000, 500, "eur", 0, first, at.Add(time.Hour)))
			if got := balance(t, f.db, StripeClearing, "USD", 0); got != 1080-540 {
				t.Fatalf("clearing after the first half = %d, want %d (5.40 USD taken)", got, 1080-540)
			}
			deliver(t, f, svc, chargeRefunded("evt_re_2", "ch_eur", 1000, 1000, "eur", 500, second, at.Add(2*time.Hour)))
			if got := balances(t, f, "USD"); got != (partyBalances{}) {
				t.Fatalf("after the full refund: %+v, want all zero", got)
			}
			if got := balance(t, f.db, Refunds, "USD", 0); got != 61 {
				t.Fatalf("refunds account = %d, want the 0.61 fee the parties never received", got)
			}
			if n := unapplied(t, f); n != 0 {
				t.Fatalf("%d events not applied", n)
			}
		})
	}
}

// A dispute of the whole charge after a partial refund is booked as Stripe withdrew it: the
// parties give back what they had left of the payment, and the rest and the fee are a loss.
func TestDisputeLargerThanWhatIsLeft(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7500, 2500))
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	deliver(t, f, svc, paymentEvent("evt_pay", "ch_1", f.show, 1000, "USD", 1000, 59, "usd", at))
	deliver(t, f, svc, chargeRefunded("evt_re", "ch_1", 1000, 500, "usd", 0,
		[]map[string]any{stripeRefund("re_1", "ch_1", 500, 500, "usd", "succeeded", at.Add(time.Hour))}, at.Add(time.Hour)))
	deliver(t, f, svc, disputeEvent("evt_du", "charge.dispute.created", "du_1", "ch_1", 1000, "usd", "needs_response",
		at.Add(2*time.Hour), disputeTxn("txn_du", -1000, 1500, "usd", at.Add(2*time.Hour))))
	if n := unapplied(t, f); n != 0 {
		t.Fatalf("%d events not applied: the dispute must be booked", n)
	}
	if got := balances(t, f, "USD"); got != (partyBalances{clearing: 1000 - 500 - 1000}) {
		t.Fatalf("after the dispute: %+v, want clearing -500 and the parties at zero", got)
	}
	// The parties had 9.41 - 5.00 = 4.41 left; the other 5.59 and the 15.00 fee are the loss.
	if got := balance(t, f.db, DisputeLosses, "USD", 0); got != 559+1500 {
		t.Fatalf("dispute losses = %d, want %d", got, 559+1500)
	}
}

// An inquiry moves no money, opened or closed; a dispute lost with a reinstating balance
// transaction gives back what Stripe reinstated, in proportion to what it took.
func TestInquiriesAndPartlyWonDisputes(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7500, 2500))
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	deliver(t, f, svc, paymentEvent("evt_pay", "ch_1", f.show, 1000, "USD", 1000, 59, "usd", at))
	paid := balances(t, f, "USD")
	deliver(t, f, svc, disputeEvent("evt_inq", "charge.dispute.created", "du_inq", "ch_1", 1000, "usd", "warning_needs_response", at.Add(time.Hour)))
	deliver(t, f, svc, disputeEvent("evt_inq_closed", "charge.dispute.closed", "du_inq", "ch_1", 1000, "usd", "warning_closed", at.Add(2*time.Hour)))
	if got := balances(t, f, "USD"); got != paid {
		t.Fatalf("after an inquiry: %+v, want unchanged %+v", got, paid)
	}
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE kind <> 'payment'`); n != 0 || unapplied(t, f) != 0 {
		t.Fatalf("an inquiry posted %d entries (unapplied events: %d), want none", n, unapplied(t, f))
	}

	deliver(t, f, svc, paymentEvent("evt_pay_2", "ch_2", f.show, 1000, "USD", 1000, 59, "usd", at))
	withdrawn := disputeTxn("txn_w", -1000, 1500, "usd", at.Add(time.Hour))
	deliver(t, f, svc, disputeEvent("evt_du", "charge.dispute.created", "du_2", "ch_2", 1000, "usd", "needs_response", at.Add(time.Hour), withdrawn))
	deliver(t, f, svc, disputeEvent("evt_du_closed", "charge.dispute.closed", "du_2", "ch_2", 1000, "usd", "lost", at.Add(3*time.Hour),
		withdrawn, disputeTxn("txn_r", 400, 0, "usd", at.Add(3*time.Hour))))
	// The dispute took the parties' 7.06 and 2.35 and booked the 0.59 fee they never had as a
	// loss; 4.00 of the 10.00 comes back in that proportion (2.824, 0.94, 0.236, by largest
	// remainder 2.82, 0.94, 0.24), and the 15.00 fee stays a loss.
	want := partyBalances{clearing: 2*1000 - 1000 + 400, creator: paid.creator - 282, distributor: paid.distributor - 94}
	if got := balances(t, f, "USD"); got != want {
		t.Fatalf("after the partly won dispute: %+v, want %+v", got, want)
	}
	if got := balance(t, f.db, DisputeLosses, "USD", 0); got != 59+1500-24 {
		t.Fatalf("dispute losses = %d, want %d", got, 59+1500-24)
	}
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE kind = 'dispute_won' AND stripe_object_id = 'du_2'`); n != 1 {
		t.Fatalf("%d reinstatements of the partly won dispute, want 1", n)
	}
}

// A refund that fails puts its split back; a later refund that brings the amount refunded back
// to a total already seen is still booked.
func TestFailedRefundPutsTheSplitBack(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7500, 2500))
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	donation, err := CreateDonation(context.Background(), f.db, DonationInput{ShowID: f.show, Amount: 1000, Currency: "USD"})
	must(t, err)
	md := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(f.show, 10), MetaDonationID: strconv.FormatInt(donation.ID, 10)}
	pay := EventJSON("evt_pay", "checkout.session.completed", at,
		CheckoutSessionObject("cs_1", ChargeObject("ch_1", 1000, 59, "USD", at), "", 1000, "USD", md), nil, "")
	deliver(t, f, svc, pay)
	paid := balances(t, f, "USD")

	r1 := stripeRefund("re_1", "ch_1", 1000, 1000, "usd", "succeeded", at.Add(time.Hour))
	deliver(t, f, svc, chargeRefunded("evt_re_1", "ch_1", 1000, 1000, "usd", 0, []map[string]any{r1}, at.Add(time.Hour)))
	if got := balances(t, f, "USD"); got != (partyBalances{}) {
		t.Fatalf("after the refund: %+v, want all zero", got)
	}
	if status := donationStatus(t, f, donation.ID); status != "refunded" {
		t.Fatalf("donation %s after the full refund, want refunded", status)
	}
	failed := stripeRefund("re_1", "ch_1", 1000, 0, "usd", "failed", at.Add(2*time.Hour))
	deliver(t, f, svc, EventJSON("evt_re_1_failed", "charge.refund.updated", at.Add(2*time.Hour), failed, nil, ""))
	if got := balances(t, f, "USD"); got != paid {
		t.Fatalf("after the refund failed: %+v, want the split back: %+v", got, paid)
	}
	if status := donationStatus(t, f, donation.ID); status != "paid" {
		t.Fatalf("donation %s after its refund failed, want paid", status)
	}
	deliver(t, f, svc, EventJSON("evt_re_1_failed_again", "refund.failed", at.Add(2*time.Hour), failed, nil, ""))
	if got := balances(t, f, "USD"); got != paid {
		t.Fatalf("a second failure event changed the ledger: %+v", got)
	}
	// A new refund of 4.00 takes the amount refunded to 4.00; then another to 10.00, a total
	// the charge had reached before the failure: both are booked.
	r2 := stripeRefund("re_2", "ch_1", 400, 400, "usd", "succeeded", at.Add(3*time.Hour))
	r3 := stripeRefund("re_3", "ch_1", 600, 600, "usd", "succeeded", at.Add(4*time.Hour))
	failedListed := stripeRefund("re_1", "ch_1", 1000, 1000, "usd", "failed", at.Add(time.Hour))
	deliver(t, f, svc, chargeRefunded("evt_re_2", "ch_1", 1000, 400, "usd", 0, []map[string]any{failedListed, r2}, at.Add(3*time.Hour)))
	deliver(t, f, svc, chargeRefunded("evt_re_3", "ch_1", 1000, 1000, "usd", 400, []map[string]any{failedListed, r2, r3}, at.Add(4*time.Hour)))
	if got := balances(t, f, "USD"); got != (partyBalances{}) {
		t.Fatalf("after the refunds since: %+v, want all zero", got)
	}
	if n := count(t, f.db, `SELECT count(*) FROM refunds WHERE charge_id = 'ch_1'`); n != 3 {
		t.Fatalf("%d refunds kept, want 3", n)
	}
	if n := unapplied(t, f); n != 0 {
		t.Fatalf("%d events not applied", n)
	}
}

func donationStatus(t *testing.T, f fixture, id int64) string {
	t.Helper()
	var s string
	must(t, f.db.QueryRow(context.Background(), `SELECT status FROM donations WHERE id = $1`, id).Scan(&s))
	return s
}

// customer.subscription.deleted applied before the checkout.session.completed that started the
// subscription still ends with the monthly donation cancelled.
func TestSubscriptionDeletedBeforeItsSession(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	d, err := CreateDonation(context.Background(), f.db, DonationInput{ShowID: f.show, Amount: 500, Currency: "USD", Monthly: true})
	must(t, err)
	md := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(f.show, 10), MetaDonationID: strconv.FormatInt(d.ID, 10)}
	deliver(t, f, svc, EventJSON("evt_sub_deleted", "customer.subscription.deleted", at.Add(time.Hour),
		map[string]any{"id": "sub_1", "object": "subscription", "status": "canceled", "metadata": md}, nil, ""))
	deliver(t, f, svc, EventJSON("evt_sess", "checkout.session.completed", at,
		CheckoutSessionObject("cs_1", nil, "sub_1", 500, "USD", md), nil, ""))
	if s := donationStatus(t, f, d.ID); s != "cancelled" {
		t.Fatalf("monthly donation %s, want cancelled", s)
	}
}

// An event of a type Fanseed does not handle is applied as ignored; one whose object does not
// decode is kept, not applied, with its error, for a retry.
func TestUnknownAndUndecodableEvents(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	deliver(t, f, svc, EventJSON("evt_unknown", "customer.tax_id.created", at, map[string]any{"id": "txi_1", "object": "tax_id"}, nil, ""))
	if n := count(t, f.db, `SELECT count(*) FROM stripe_events WHERE id = 'evt_unknown' AND applied_at IS NOT NULL AND ignored`); n != 1 {
		t.Fatalf("unknown event: ignored and applied %d times, want 1", n)
	}
	bad := EventJSON("evt_bad", "charge.refunded", at, map[string]any{"id": "ch_1", "object": "charge", "amount": "ten"}, nil, "")
	ev, err := ParseEventHeader(bad)
	must(t, err)
	_, err = svc.StoreEvent(context.Background(), ev, bad)
	must(t, err)
	var lastError string
	for deadline := time.Now().Add(20 * time.Second); lastError == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		must(t, f.db.QueryRow(context.Background(), `SELECT last_error FROM stripe_events WHERE id = 'evt_bad' AND applied_at IS NULL`).Scan(&lastError))
	}
	if !strings.Contains(lastError, "does not parse") {
		t.Fatalf("an undecodable event's error = %q, want it kept, saying it does not parse", lastError)
	}
	if n := count(t, f.db, `SELECT count(*) FROM river_job WHERE kind = 'stripe_event' AND args->>'event_id' = 'evt_bad'
		AND state IN ('retryable', 'available', 'scheduled', 'running')`); n != 1 {
		t.Fatalf("%d retries pending for the undecodable event, want 1", n)
	}
}

// A plan made with an earlier effective time after Stripe received a payment, but before the
// payment's event was applied, does not re-split it: the plan in force when the charge was made
// splits it.
func TestLaterPlanDoesNotResplitAPaymentReceived(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	before := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7500, 2500))
	charged := time.Now()
	pay := paymentEvent("evt_pay", "ch_1", f.show, 1000, "USD", 1000, 59, "usd", charged)
	time.Sleep(time.Until(time.Unix(charged.Unix()+1, 0))) // Stripe's second of the charge is over
	later, err := CreatePlan(ctx, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(3600, 0),
		lines([]int64{f.creator, f.distributor}, 5000, 5000), nil)
	must(t, err)
	deliver(t, f, svc, pay)
	var planID int64
	must(t, f.db.QueryRow(ctx, `SELECT share_plan_id FROM journal_entries WHERE kind = 'payment'`).Scan(&planID))
	if planID != before.ID {
		t.Fatalf("payment split by plan %d, want %d, in force when Stripe received it (not %d, made later)", planID, before.ID, later.ID)
	}
	if got := balance(t, f.db, PartyPayable, "USD", f.creator); got != -706 {
		t.Fatalf("creator's share %d, want 75%% of 9.41", -got)
	}
}
