package billing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/billing/stripetest"
)

// With a Stripe key, a monthly donation is managed in Stripe's customer portal: a session is
// opened for the subscription's customer (against stripe-mock).
func TestPortalURL(t *testing.T) {
	t.Parallel()
	s := billing.NewStripe("sk_test_fanseed", stripetest.URL(t), nil)
	url, err := s.PortalURL(context.Background(), "sub_fanseed", "http://fanseed.test/donations/manage?token=x")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("portal URL %q", url)
	}
	svc := &billing.Service{Stripe: s}
	if _, err := svc.ManageDonation(context.Background(), billing.Donation{ID: 1, Monthly: true}, "http://x"); err == nil {
		t.Fatal("a donation without a subscription got a portal")
	}
	if err := svc.CancelMonthlyOffline(context.Background(), 1); err == nil {
		t.Fatal("offline cancel worked with a Stripe key")
	}
}
