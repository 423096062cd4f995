package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// EventJSON builds the payload of a Stripe event of the API version stripe-go expects.
// previous is data.previous_attributes (nil for none); account is set for events from a
// connected account.
func EventJSON(id, typ string, created time.Time, object any, previous map[string]any, account string) []byte {
	data := map[string]any{"object": object}
	if previous != nil {
		data["previous_attributes"] = previous
	}
	ev := map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion, "created": created.Unix(),
		"type": typ, "livemode": false, "pending_webhooks": 1, "data": data}
	if account != "" {
		ev["account"] = account
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
	return b
}

// SignEvent returns the Stripe-Signature header for a payload, signed now with secret.
func SignEvent(payload []byte, secret string) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret}).Header
}

// ChargeObject is a charge with its balance transaction expanded, as offline test mode
// reports it: gross and fee in currency, made at created.
func ChargeObject(id string, gross, fee int64, currency string, created time.Time) map[string]any {
	cur := strings.ToLower(currency)
	return map[string]any{"id": id, "object": "charge", "amount": gross, "amount_refunded": 0, "currency": cur,
		"created": created.Unix(), "paid": true, "status": "succeeded",
		"balance_transaction": map[string]any{"id": "txn_" + strings.TrimPrefix(id, "ch_"), "object": "balance_transaction",
			"amount": gross, "fee": fee, "net": gross - fee, "currency": cur, "created": created.Unix(), "type": "charge"}}
}

// CheckoutSessionObject is a completed Checkout session: in payment mode paid by charge (its
// payment intent expanded down to the balance transaction), in subscription mode starting
// subscription.
func CheckoutSessionObject(id string, charge map[string]any, subscription string, amount int64, currency string, md map[string]string) map[string]any {
	s := map[string]any{"id": id, "object": "checkout.session", "status": "complete", "payment_status": "paid",
		"amount_total": amount, "currency": strings.ToLower(currency), "metadata": md}
	if subscription != "" {
		s["mode"], s["subscription"] = "subscription", subscription
	} else {
		s["mode"], s["submit_type"] = "payment", "donate"
		s["payment_intent"] = map[string]any{"id": "pi_" + strings.TrimPrefix(charge["id"].(string), "ch_"),
			"object": "payment_intent", "amount": amount, "currency": strings.ToLower(currency), "latest_charge": charge, "metadata": md}
	}
	return s
}

// SetupSessionObject is a completed setup-mode Checkout session, its setup intent expanded
// with the payment method it saved for customer.
func SetupSessionObject(id, setupIntent, paymentMethod, customer, currency string, md map[string]string) map[string]any {
	return map[string]any{"id": id, "object": "checkout.session", "status": "complete", "payment_status": "no_payment_required",
		"mode": "setup", "currency": strings.ToLower(currency), "customer": customer, "metadata": md,
		"setup_intent": map[string]any{"id": setupIntent, "object": "setup_intent", "status": "succeeded", "customer": customer,
			"usage": "off_session", "metadata": md, "payment_method": map[string]any{"id": paymentMethod, "object": "payment_method"}}}
}

// InvoiceObject is a paid subscription invoice, its charge expanded, the subscription's
// metadata in subscription_details.
func InvoiceObject(id string, charge map[string]any, subscription string, md map[string]string) map[string]any {
	return map[string]any{"id": id, "object": "invoice", "status": "paid", "paid": true, "amount_paid": charge["amount"],
		"currency": charge["currency"], "charge": charge, "subscription": subscription,
		"billing_reason": "subscription_cycle", "subscription_details": map[string]any{"metadata": md}}
}

// TestCheckout is a payment waiting on the offline test checkout page.
type TestCheckout struct {
	SessionID string
	Kind      string // KindDonation or KindSponsorship
	ShowID    int64
	Amount    Money
	Monthly   bool
	Fee       int64 // TestFee of the amount
	Status    string
	RecordID  int64 // the donation's, sponsorship's or pledge's id
	EpisodeID int64
	PayToken  string // a sponsorship's payment link token; a pledge's token
	Card      string // a pledge's test card (TestCard...), chosen on the page
}

// KindPledgePayment is the test checkout of a pledge paid on-session; KindPledge's saves a
// card (setup mode).
const KindPledgePayment = "pledge_payment"

// Open reports whether the test checkout can still be completed.
func (c TestCheckout) Open() bool {
	switch c.Kind {
	case KindSponsorship:
		return c.Status == SponsorshipOffered
	case KindPledgePayment:
		return c.Status == PledgeNeedsAction
	}
	return c.Status == "pending"
}

// FindTestCheckout loads what an offline test Checkout session pays for.
func FindTestCheckout(ctx context.Context, db DBTX, sessionID string) (TestCheckout, error) {
	if !strings.HasPrefix(sessionID, TestSessionPrefix) {
		return TestCheckout{}, fmt.Errorf("test checkout %q: %w", sessionID, ErrNotFound)
	}
	c := TestCheckout{SessionID: sessionID}
	var episode *int64
	err := db.QueryRow(ctx, `
		SELECT 'donation', id, show_id, amount, currency, monthly, status, episode_id, '' FROM donations
		WHERE checkout_session_id = $1
		UNION ALL
		SELECT 'sponsorship', id, show_id, amount, currency, false, status, NULL, pay_token FROM sponsorships
		WHERE checkout_session_id = $1
		UNION ALL
		SELECT CASE WHEN p.pay_session_id = $1 THEN 'pledge_payment' ELSE 'pledge' END, p.id, c.show_id, p.amount, p.currency,
			false, p.status, NULL, p.token
		FROM pledges p JOIN campaigns c ON c.id = p.campaign_id
		WHERE p.checkout_session_id = $1 OR p.pay_session_id = $1
		LIMIT 1`, sessionID).Scan(&c.Kind, &c.RecordID, &c.ShowID, &c.Amount.Amount, &c.Amount.Currency, &c.Monthly, &c.Status,
		&episode, &c.PayToken)
	if err != nil {
		return TestCheckout{}, wrapNotFound(err, "test checkout "+sessionID)
	}
	if episode != nil {
		c.EpisodeID = *episode
	}
	c.Fee = TestFee(c.Amount.Amount, c.Amount.Currency)
	return c, nil
}

// Events are the signed-to-be events Stripe would send when the test payment completes: the
// session completed and, for a monthly donation, the first invoice paid.
func (c TestCheckout) Events(now time.Time) [][]byte {
	suffix := strings.TrimPrefix(c.SessionID, TestSessionPrefix)
	if c.Kind == KindPledge || c.Kind == KindPledgePayment {
		md := map[string]string{MetaKind: KindPledge, MetaShowID: strconv.FormatInt(c.ShowID, 10),
			MetaPledgeID: strconv.FormatInt(c.RecordID, 10)}
		if c.Kind == KindPledgePayment {
			charge := ChargeObject("ch_test_fanseed_"+suffix, c.Amount.Amount, c.Fee, c.Amount.Currency, now)
			sess := CheckoutSessionObject(c.SessionID, charge, "", c.Amount.Amount, c.Amount.Currency, md)
			return [][]byte{EventJSON("evt_test_fanseed_"+suffix, "checkout.session.completed", now, sess, nil, "")}
		}
		sess := SetupSessionObject(c.SessionID, "seti_test_fanseed_"+suffix, testPaymentMethod(c.Card, suffix),
			"cus_test_fanseed_"+suffix, c.Amount.Currency, md)
		return [][]byte{EventJSON("evt_test_fanseed_"+suffix, "checkout.session.completed", now, sess, nil, "")}
	}
	md := map[string]string{MetaKind: c.Kind, MetaShowID: strconv.FormatInt(c.ShowID, 10)}
	if c.Kind == KindDonation {
		md[MetaDonationID] = strconv.FormatInt(c.RecordID, 10)
	} else {
		md[MetaSponsorshipID] = strconv.FormatInt(c.RecordID, 10)
	}
	if c.EpisodeID != 0 {
		md[MetaEpisodeID] = strconv.FormatInt(c.EpisodeID, 10)
	}
	charge := ChargeObject("ch_test_fanseed_"+suffix, c.Amount.Amount, c.Fee, c.Amount.Currency, now)
	if !c.Monthly {
		sess := CheckoutSessionObject(c.SessionID, charge, "", c.Amount.Amount, c.Amount.Currency, md)
		return [][]byte{EventJSON("evt_test_fanseed_"+suffix, "checkout.session.completed", now, sess, nil, "")}
	}
	sub := "sub_test_fanseed_" + suffix
	sess := CheckoutSessionObject(c.SessionID, nil, sub, c.Amount.Amount, c.Amount.Currency, md)
	inv := InvoiceObject("in_test_fanseed_"+suffix, charge, sub, md)
	return [][]byte{
		EventJSON("evt_test_fanseed_"+suffix, "checkout.session.completed", now, sess, nil, ""),
		EventJSON("evt_test_fanseed_inv_"+suffix, "invoice.paid", now, inv, nil, ""),
	}
}
