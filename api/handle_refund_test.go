package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// paidDonation posts a 100.00 USD donation (4.00 fee) to the first month show and waits for it.
func paidDonation(t *testing.T, ts *testServer, charge string) (shows []monthShow, parties map[string]int64) {
	t.Helper()
	shows, _, parties = monthFixture(t, ts)
	md := map[string]string{billing.MetaKind: billing.KindDonation, billing.MetaShowID: strconv.FormatInt(shows[0].id, 10)}
	at := time.Now().Add(-time.Hour)
	postSigned(t, ts.URL, billing.EventJSON("evt_"+charge, "checkout.session.completed", at, billing.CheckoutSessionObject("cs_"+charge,
		billing.ChargeObject(charge, 10000, 400, "USD", at), "", 10000, "USD", md), nil, ""))
	waitApplied(t, ts)
	return shows, parties
}

// Offline, the admin refunds half a payment and then the rest from /admin/refunds: each goes
// through the signed charge.refunded event to the webhook, and the ledger takes back the
// payment's split as it books them; more than is left is refused naming the amount.
func TestAdminRefundOffline(t *testing.T) {
	t.Parallel()
	ts, _ := newMoneyServer(t)
	ctx := context.Background()
	_, parties := paidDonation(t, ts, "ch_refund_me")
	admin := ts.newUser(t, "admin@example.com", catalog.RoleAdmin)
	owed := func(name string) int64 {
		t.Helper()
		bs, err := billing.PartyBalances(ctx, ts.db, parties[name])
		if err != nil || len(bs) != 1 {
			t.Fatalf("balances of %s: %v %v", name, bs, err)
		}
		return bs[0].Amount
	}
	if d, c := owed("distributor"), owed("creator"); d != 2400 || c != 7200 {
		t.Fatalf("before: distributor %d, creator %d; want 2400 and 7200", d, c)
	}
	page := readBody(t, ts.do(t, &admin, "GET", "/admin", nil))
	if !strings.Contains(page, `href="/admin/refunds"`) {
		t.Fatal("/admin does not link the refunds page")
	}
	page = readBody(t, ts.do(t, &admin, "GET", "/admin/refunds", nil))
	if !strings.Contains(page, "ch_refund_me") || !strings.Contains(page, `value="100.00"`) {
		t.Fatalf("refunds page does not offer the payment with 100.00 left:\n%s", page)
	}

	refund := func(amount string) *http.Response {
		return ts.do(t, &admin, "POST", "/admin/refunds", url.Values{"charge": {"ch_refund_me"}, "amount": {amount}, "reason": {"asked by the fan"}})
	}
	resp := refund("50.00")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("refund of half answered %d: %s", resp.StatusCode, readBody(t, resp))
	}
	waitApplied(t, ts)
	if d, c := owed("distributor"), owed("creator"); d != 1150 || c != 3450 { // as the ledger divides half of the gross
		t.Fatalf("after half: distributor %d, creator %d; want 1150 and 3450", d, c)
	}
	var ids []string
	rows, _ := ts.db.Query(ctx, `SELECT id || ':' || amount FROM refunds WHERE charge_id = 'ch_refund_me' ORDER BY id`)
	for rows.Next() {
		var s string
		rows.Scan(&s)
		ids = append(ids, s)
	}
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "re_test_fanseed_") || !strings.HasSuffix(ids[0], ":5000") {
		t.Fatalf("refunds booked: %v; want one Stripe-style refund of 5000", ids)
	}

	resp = refund("60.00")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "60.00 USD is more than the 50.00 USD left to refund") {
		t.Fatalf("over-refund answered %d:\n%s", resp.StatusCode, body)
	}
	for _, bad := range []struct{ amount, want string }{{"0", "must be more than zero"}, {"1.005", "decimal places"}, {"ten", "not a number"}} {
		resp := refund(bad.amount)
		if body := readBody(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Amount: ") ||
			!strings.Contains(body, bad.want) {
			t.Errorf("amount %q answered %d without %q", bad.amount, resp.StatusCode, bad.want)
		}
	}

	if resp := refund(""); resp.StatusCode != http.StatusSeeOther { // the rest
		t.Fatalf("refund of the rest answered %d: %s", resp.StatusCode, readBody(t, resp))
	}
	waitApplied(t, ts)
	if d, c := owed("distributor"), owed("creator"); d != 0 || c != 0 {
		t.Fatalf("after the rest: distributor %d, creator %d; want 0", d, c)
	}
	var booked, requests int64
	if err := ts.db.QueryRow(ctx, `SELECT (SELECT sum(amount) FROM refunds WHERE charge_id = 'ch_refund_me'),
		(SELECT count(*) FROM refund_requests WHERE status = 'sent' AND requested_by = 'admin@example.com')`).Scan(&booked, &requests); err != nil {
		t.Fatal(err)
	}
	if booked != 10000 || requests != 2 {
		t.Fatalf("booked %d in refunds from %d requests; want 10000 from 2", booked, requests)
	}
	if resp := refund("1"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(readBody(t, resp), "nothing left to refund") {
		t.Fatal("a fully refunded payment was not refused")
	}

	// A dispute shows with its state.
	postSigned(t, ts.URL, billing.EventJSON("evt_dp", "charge.dispute.created", time.Now(), map[string]any{"id": "dp_shown", "object": "dispute",
		"charge": "ch_refund_me", "amount": 1000, "currency": "usd", "status": "warning_needs_response", "created": time.Now().Unix()}, nil, ""))
	waitApplied(t, ts)
	page = readBody(t, ts.do(t, &admin, "GET", "/admin/refunds", nil))
	for _, want := range []string{"dp_shown", "warning_needs_response", "100.00 USD", "asked by the fan"} {
		if !strings.Contains(page, want) {
			t.Errorf("refunds page lacks %q", want)
		}
	}
}

// Only an admin refunds: a creator, even the show's owner, is refused and nothing is asked.
func TestRefundNeedsAdmin(t *testing.T) {
	t.Parallel()
	ts, _ := newMoneyServer(t)
	paidDonation(t, ts, "ch_not_yours")
	creator := ts.newUser(t, "creator@example.com", catalog.RoleCreator)
	if resp := ts.do(t, &creator, "POST", "/admin/refunds", url.Values{"charge": {"ch_not_yours"}, "amount": {"10"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("creator's refund answered %d", resp.StatusCode)
	}
	var n int
	if err := ts.db.QueryRow(context.Background(), `SELECT count(*) FROM refund_requests`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d refund requests after a refused one (%v)", n, err)
	}
}
