package billing

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing/stripetest"
)

// With a Stripe key, a refund request is kept, then made at Stripe (stripe-mock) with the
// charge, the amount and the request's idempotency key; an attempt that failed on the way is
// sent again under the same key, a request already sent is not sent again, and the ledger is
// left to the event that follows.
func TestRefundRequestStripe(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var keys []string
	var forms []url.Values
	broken, made := true, 0
	st := NewStripe("sk_test_123", stripetest.URL(t), &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/refunds" {
			return http.DefaultTransport.RoundTrip(req)
		}
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		form, _ := url.ParseQuery(string(b))
		mu.Lock()
		defer mu.Unlock()
		keys, forms = append(keys, req.Header.Get("Idempotency-Key")), append(forms, form)
		if broken {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(`{"error":{"type":"api_error","message":"try again"}}`)), Request: req}, nil
		}
		made++
		req.Body = io.NopCloser(strings.NewReader(string(b)))
		return http.DefaultTransport.RoundTrip(req)
	})})
	f, svc := newService(t, st)
	ctx := context.Background()
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7000, 3000))
	at := time.Now().Add(-time.Hour)
	md := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(f.show, 10)}
	deliver(t, f, svc, EventJSON("evt_pay", "checkout.session.completed", at,
		CheckoutSessionObject("cs_r", ChargeObject("ch_asked", 100, 3, "USD", at), "", 100, "USD", md), nil, ""))
	noOffline := func(context.Context, []byte) error { return errors.New("offline delivery with a Stripe key") }

	// stripe-mock's charge is 1.00 USD with nothing refunded.
	if _, err := svc.RequestRefund(ctx, RefundAsk{Charge: "ch_asked", Amount: "1.01", By: "ops@example.com"}, noOffline); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "amount: 1.01 USD is more than the 1.00 USD left to refund on ch_asked") {
		t.Fatalf("over-refund: %v", err)
	}
	if _, err := svc.RequestRefund(ctx, RefundAsk{Charge: "ch_unknown", Amount: "1", By: "ops@example.com"}, noOffline); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "charge: ch_unknown is not a payment") {
		t.Fatalf("unknown charge: %v", err)
	}

	req, err := svc.RequestRefund(ctx, RefundAsk{Charge: "ch_asked", Amount: "0.60", Reason: "duplicate", By: "ops@example.com"}, noOffline)
	if err == nil || req.Status != RefundPending {
		t.Fatalf("with Stripe failing: %+v, %v; want the request left pending with an error", req, err)
	}
	if n := len(keys); n < 1 {
		t.Fatal("Stripe was not asked")
	}
	// The same amount is not refundable twice while one request is pending.
	if _, err := svc.RequestRefund(ctx, RefundAsk{Charge: "ch_asked", Amount: "0.50", By: "ops@example.com"}, noOffline); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "the 0.40 USD left") {
		t.Fatalf("refund beyond a pending one: %v", err)
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	got, err := svc.SendRefund(ctx, req.ID, noOffline)
	if err != nil || got.Status != RefundSent || got.StripeRefundID == nil || !strings.HasPrefix(*got.StripeRefundID, "re_") {
		t.Fatalf("sent again: %+v, %v", got, err)
	}
	again, err := svc.SendRefund(ctx, req.ID, noOffline)
	if err != nil || *again.StripeRefundID != *got.StripeRefundID {
		t.Fatalf("a request already sent, sent again: %+v, %v", again, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := "refund_request:" + strconv.FormatInt(req.ID, 10)
	for i, k := range keys {
		if k != want {
			t.Errorf("attempt %d had idempotency key %q, want %q", i, k, want)
		}
		if fm := forms[i]; fm.Get("charge") != "ch_asked" || fm.Get("amount") != "60" ||
			fm.Get("metadata["+MetaRefundRequestID+"]") != strconv.FormatInt(req.ID, 10) {
			t.Errorf("attempt %d asked %v", i, fm)
		}
	}
	if made != 1 {
		t.Fatalf("Stripe made %d refunds, want 1 (after %d attempts)", made, len(keys))
	}
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE kind = 'refund'`); n != 0 {
		t.Fatalf("%d refund entries before Stripe's event, want 0", n)
	}
}
