package billing

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"
)

// PortalURL opens a Stripe customer portal session for the customer of a subscription, where
// the donor changes or cancels it, and returns its URL.
func (s *Stripe) PortalURL(ctx context.Context, subscriptionID, returnURL string) (string, error) {
	sp := &stripe.SubscriptionParams{}
	sp.Context = ctx
	sub, err := s.api.Subscriptions.Get(subscriptionID, sp)
	if err != nil {
		return "", fmt.Errorf("%w: subscription %s: %w", ErrStripe, subscriptionID, err)
	}
	if sub.Customer == nil || sub.Customer.ID == "" {
		return "", fmt.Errorf("%w: subscription %s has no customer", ErrStripe, subscriptionID)
	}
	pp := &stripe.BillingPortalSessionParams{Customer: stripe.String(sub.Customer.ID), ReturnURL: stripe.String(returnURL)}
	pp.Context = ctx
	sess, err := s.api.BillingPortalSessions.New(pp)
	if err != nil {
		return "", fmt.Errorf("%w: portal session for %s: %w", ErrStripe, sub.Customer.ID, err)
	}
	return sess.URL, nil
}
