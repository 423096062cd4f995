package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/billing/stripetest"
)

func ptr[T any](v T) *T { return &v }

// A payout for a month pays what was received before the month ended, never more than is owed
// now; each currency has its own threshold, the default or the party's own; a month that has
// not begun is refused.
func TestPayoutPeriodAndThresholds(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil) // offline test mode: transfers get test ids
	ctx := context.Background()
	plan := createPlan(t, f.db, f.show, SourceAll, FeePolicyGross, t0, lines([]int64{f.creator, f.collaborator, f.distributor}, 5000, 2500, 2500))
	received := func(key string, gross int64, currency string, at time.Time) int64 {
		t.Helper()
		id, err := PostPayment(ctx, f.db, Payment{Gross: gross, Currency: currency, OccurredAt: at, Source: SourceDonations, IdempotencyKey: key}, plan)
		must(t, err)
		return id
	}
	oct := time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC)
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	octPay := received("payment:oct", 10000, "USD", oct) // creator 5000, collaborator 2500
	received("payment:nov", 4000, "USD", nov)            // creator 2000, collaborator 1000
	jpy := received("payment:jpy", 6000, "JPY", oct)     // creator ¥3000, collaborator ¥1500
	refund := func(key string, entry, amount int64) {
		t.Helper()
		_, err := PostReversal(ctx, f.db, Reversal{EntryID: entry, Kind: EntryRefund, Amount: amount, OccurredAt: nov.Add(time.Hour),
			IdempotencyKey: key})
		must(t, err)
	}
	refund("refund:oct", octPay, 1000) // in November: creator 500, collaborator 250
	refund("refund:jpy", jpy, 2000)    // in November: creator ¥1000, collaborator ¥500
	for _, p := range []int64{f.creator, f.collaborator} {
		must(t, exec(f, `UPDATE parties SET stripe_account_id = 'acct_'||id, payouts_enabled = true WHERE id = $1`, p))
	}
	// The collaborator waits for ¥2,000 (the default would be ¥1,000) and takes any USD amount.
	must(t, SetPayoutThreshold(ctx, f.db, f.collaborator, "JPY", ptr(int64(2000))))
	must(t, SetPayoutThreshold(ctx, f.db, f.collaborator, "USD", ptr(int64(0))))

	if _, err := svc.RunPayouts(ctx, "2099-01", PayoutOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a month not begun: %v, want ErrInvalid", err)
	}
	if _, err := svc.RunPayouts(ctx, "2026-13", PayoutOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("month 13: %v, want ErrInvalid", err)
	}
	paid := func(period string) map[string]int64 {
		t.Helper()
		list, err := svc.RunPayouts(ctx, period, PayoutOptions{})
		must(t, err)
		got := map[string]int64{}
		for _, p := range list {
			who := map[int64]string{f.creator: "creator", f.collaborator: "collaborator"}[p.PartyID]
			got[who+" "+p.Currency] = p.Amount
		}
		return got
	}
	// October: USD received before November, without November's 2000 and 1000 (the refund made
	// in November is taken from November's payout). In yen nothing came in since, so the
	// creator is paid what is owed now, ¥2000, not the ¥3000 October brought; the
	// collaborator's ¥1000 is under its own threshold.
	want := map[string]int64{"creator USD": 5000, "collaborator USD": 2500, "creator JPY": 2000}
	if got := paid("2026-10"); !equalMaps(got, want) {
		t.Fatalf("October's payouts %v, want %v", got, want)
	}
	// November: the rest.
	want = map[string]int64{"creator USD": 2000 - 500, "collaborator USD": 1000 - 250}
	if got := paid("2026-11"); !equalMaps(got, want) {
		t.Fatalf("November's payouts %v, want %v", got, want)
	}
	if o, c := owed(t, f.db, f.creator, "USD"), owed(t, f.db, f.collaborator, "JPY"); o != 0 || c != 1000 {
		t.Fatalf("after both runs the creator is owed %d USD cents and the collaborator ¥%d; want 0 and ¥1000", o, c)
	}
	// Thresholds read back per currency: the collaborator's own, the creator's defaults.
	ths, err := PayoutThresholds(ctx, f.db, f.creator)
	must(t, err)
	if len(ths) != 2 || ths[0] != (PayoutThreshold{Currency: "JPY", Amount: 1000}) || ths[1] != (PayoutThreshold{Currency: "USD", Amount: 1000}) {
		t.Fatalf("creator's thresholds %+v", ths)
	}
	ths, err = PayoutThresholds(ctx, f.db, f.collaborator)
	must(t, err)
	if len(ths) != 2 || ths[0] != (PayoutThreshold{Currency: "JPY", Amount: 2000, Own: true}) || ths[1] != (PayoutThreshold{Currency: "USD", Amount: 0, Own: true}) {
		t.Fatalf("collaborator's thresholds %+v", ths)
	}
	if err := SetPayoutThreshold(ctx, f.db, f.collaborator, "USD", ptr(int64(-1))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative threshold: %v", err)
	}
	if err := SetPayoutThreshold(ctx, f.db, f.collaborator, "XYZ", ptr(int64(1))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown currency: %v", err)
	}
	must(t, SetPayoutThreshold(ctx, f.db, f.collaborator, "JPY", nil))
	ths, err = PayoutThresholds(ctx, f.db, f.collaborator)
	must(t, err)
	if ths[0] != (PayoutThreshold{Currency: "JPY", Amount: 1000}) {
		t.Fatalf("after going back to the default: %+v", ths[0])
	}
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A connected account's payout.paid settles the transfers made to it before the payout was
// created, and no later one; payout.failed marks them failed with Stripe's message.
func TestConnectedPayoutEvents(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	plan := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines([]int64{f.creator, f.collaborator, f.distributor}, 5000, 2500, 2500))
	pay(t, f, plan, "payment:1", 10000, 0)
	for _, p := range []int64{f.creator, f.collaborator} {
		must(t, exec(f, `UPDATE parties SET stripe_account_id = 'acct_'||id, payouts_enabled = true WHERE id = $1`, p))
	}
	_, err := svc.RunPayouts(ctx, "2026-11", PayoutOptions{})
	must(t, err)
	transferred := time.Now()
	status := func(party int64) (string, string) {
		t.Helper()
		var s, failure string
		must(t, f.db.QueryRow(ctx, `SELECT status, failure FROM payouts WHERE party_id = $1`, party).Scan(&s, &failure))
		return s, failure
	}
	acct := func(party int64) string { return "acct_" + strconv.FormatInt(party, 10) }
	payout := func(id string, created time.Time, status, failure string) map[string]any {
		return map[string]any{"id": id, "object": "payout", "amount": 5000, "currency": "usd", "created": created.Unix(),
			"status": status, "failure_message": failure}
	}
	// A payout the creator's account made before the transfer does not carry it.
	deliver(t, f, svc, EventJSON("evt_po_old", "payout.paid", transferred, payout("po_old", transferred.Add(-time.Hour), "paid", ""), nil, acct(f.creator)))
	if s, _ := status(f.creator); s != "transferred" {
		t.Fatalf("after an earlier payout: %s, want transferred", s)
	}
	deliver(t, f, svc, EventJSON("evt_po_new", "payout.paid", transferred.Add(time.Hour), payout("po_new", transferred.Add(time.Minute), "paid", ""), nil, acct(f.creator)))
	deliver(t, f, svc, EventJSON("evt_po_fail", "payout.failed", transferred.Add(time.Hour),
		payout("po_fail", transferred.Add(time.Minute), "failed", "The bank account has been closed."), nil, acct(f.collaborator)))
	if s, _ := status(f.creator); s != "paid" {
		t.Fatalf("creator's payout %s, want paid", s)
	}
	if s, failure := status(f.collaborator); s != "failed" || failure != "The bank account has been closed." {
		t.Fatalf("collaborator's payout %s (%q), want failed with Stripe's message", s, failure)
	}
}

// With a Stripe key, a connected account's payout.paid settles exactly the transfers Stripe
// lists in the payout's balance transactions (each a payment on the account whose
// source_transfer is ours), in a job of its own.
func TestConnectedPayoutMatchedByStripe(t *testing.T) {
	t.Parallel()
	var listed atomic.Int32
	// Stripe's answer for the payout: one payment funded by the transfer tr_ours. (stripe-mock
	// checks the request's shape below; its fixture cannot name our transfer.)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/balance_transactions" || r.URL.Query().Get("payout") != "po_1" ||
			r.Header.Get("Stripe-Account") != "acct_creator" || r.URL.Query().Get("expand[0]") != "data.source" {
			http.Error(w, `{"error":{"type":"invalid_request_error","message":"unexpected request"}}`, http.StatusBadRequest)
			return
		}
		listed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","url":"/v1/balance_transactions","has_more":false,"data":[
			{"id":"txn_1","object":"balance_transaction","amount":5000,"currency":"usd","fee":0,"net":5000,"type":"payment",
			 "source":{"id":"py_1","object":"charge","amount":5000,"currency":"usd","source_transfer":"tr_ours"}},
			{"id":"txn_2","object":"balance_transaction","amount":-5000,"currency":"usd","fee":0,"net":-5000,"type":"payout",
			 "source":{"id":"po_1","object":"payout","amount":5000,"currency":"usd"}}]}`)
	}))
	defer api.Close()
	f, svc := newService(t, NewStripe("sk_test_123", api.URL, nil))
	ctx := context.Background()
	must(t, exec(f, `UPDATE parties SET stripe_account_id = 'acct_creator', payouts_enabled = true WHERE id = $1`, f.creator))
	// Two transferred payouts (the entry they point to is any entry: only the statuses matter here).
	plan := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines([]int64{f.creator, f.distributor}, 5000, 5000))
	entry := pay(t, f, plan, "payment:1", 20000, 0)
	must(t, exec(f, `INSERT INTO payouts (party_id, currency, period, amount, status, stripe_transfer_id, entry_id)
		VALUES ($1, 'USD', '2026-09', 5000, 'transferred', 'tr_ours', $2), ($1, 'USD', '2026-10', 700, 'transferred', 'tr_later', $2)`,
		f.creator, entry))

	payout := map[string]any{"id": "po_1", "object": "payout", "amount": 5000, "currency": "usd", "status": "paid",
		"created": time.Now().Add(time.Hour).Unix()} // created after both: matching by time would settle both
	deliver(t, f, svc, EventJSON("evt_po_1", "payout.paid", time.Now(), payout, nil, "acct_creator"))
	rows, _ := f.db.Query(ctx, `SELECT period || ' ' || status FROM payouts ORDER BY period`)
	statuses, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err)
	if listed.Load() != 1 || fmt.Sprint(statuses) != "[2026-09 paid 2026-10 transferred]" {
		t.Fatalf("Stripe asked %d times; payouts %v, want the transfer the payout carried paid and the other still transferred",
			listed.Load(), statuses)
	}

	// The same request against stripe-mock: accepted, and its payout carries none of ours.
	mock := NewStripe("sk_test_123", stripetest.URL(t), nil)
	if ids, err := mock.payoutTransfers(ctx, "acct_creator", "po_1"); err != nil || len(ids) != 0 {
		t.Fatalf("stripe-mock: %v %v", ids, err)
	}
}
