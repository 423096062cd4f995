package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stripe/stripe-go/v76"
)

// PledgeConsent is the text a backer agrees to when saving a card for a pledge, shown on
// Stripe Checkout and on the test checkout page: the mandate for the off-session charge.
const PledgeConsent = "I authorise Fanseed to charge this card the amount of my pledge once, off-session, if the campaign " +
	"reaches its goal by its deadline (or, for a campaign that keeps what it raises, at its deadline). Nothing is charged now; " +
	"I can change or cancel my pledge until the deadline."

// SetupCheckout is a Checkout session in setup mode: it saves a payment method for a later
// off-session charge, charging nothing.
type SetupCheckout struct {
	Email      string
	Currency   string
	SuccessURL string
	CancelURL  string
	Reference  string
	Metadata   map[string]string
}

// CreateSetupCheckout makes a customer for the backer and opens a setup-mode session for it,
// the consent text beside the button; it returns the session's id, its URL and the customer.
func (s *Stripe) CreateSetupCheckout(ctx context.Context, c SetupCheckout) (id, url, customer string, err error) {
	cp := &stripe.CustomerParams{Email: stripe.String(c.Email)}
	cp.Context = ctx
	cp.Metadata = c.Metadata
	cust, err := s.api.Customers.New(cp)
	if err != nil {
		return "", "", "", fmt.Errorf("%w: create customer: %w", ErrStripe, err)
	}
	p := &stripe.CheckoutSessionParams{
		Mode:               stripe.String(string(stripe.CheckoutSessionModeSetup)),
		Customer:           stripe.String(cust.ID),
		Currency:           stripe.String(strings.ToLower(c.Currency)),
		PaymentMethodTypes: []*string{stripe.String("card")},
		SuccessURL:         stripe.String(c.SuccessURL),
		CancelURL:          stripe.String(c.CancelURL),
		ClientReferenceID:  stripe.String(c.Reference),
		Metadata:           c.Metadata,
		SetupIntentData:    &stripe.CheckoutSessionSetupIntentDataParams{Metadata: c.Metadata},
		CustomText: &stripe.CheckoutSessionCustomTextParams{
			Submit: &stripe.CheckoutSessionCustomTextSubmitParams{Message: stripe.String(PledgeConsent)},
		},
	}
	p.Context = ctx
	sess, err := s.api.CheckoutSessions.New(p)
	if err != nil {
		return "", "", "", fmt.Errorf("%w: create setup checkout session: %w", ErrStripe, err)
	}
	return sess.ID, sess.URL, cust.ID, nil
}

// setupIntent fetches a setup intent with its payment method's id.
func (s *Stripe) setupIntent(ctx context.Context, id string) (*stripe.SetupIntent, error) {
	p := &stripe.SetupIntentParams{}
	p.Context = ctx
	si, err := s.api.SetupIntents.Get(id, p)
	if err != nil {
		return nil, fmt.Errorf("%w: setup intent %s: %w", ErrStripe, id, err)
	}
	return si, nil
}

// offSessionResult is what an off-session charge came to: the payment intent when Stripe made
// one, and declined set (with Stripe's message) when the bank asked for authentication or
// refused the card, which the backer must then fix on-session.
type offSessionResult struct {
	intent   *stripe.PaymentIntent
	declined string
	code     string
}

// chargeOffSession charges a saved payment method without the backer present, under an
// idempotency key so that a retried job never charges twice; the charge's balance
// transaction comes expanded, to be posted at once.
func (s *Stripe) chargeOffSession(ctx context.Context, key, customer, paymentMethod string, amount int64, currency string,
	md map[string]string) (offSessionResult, error) {
	p := &stripe.PaymentIntentParams{
		Amount:        stripe.Int64(amount),
		Currency:      stripe.String(strings.ToLower(currency)),
		Customer:      stripe.String(customer),
		PaymentMethod: stripe.String(paymentMethod),
		OffSession:    stripe.Bool(true),
		Confirm:       stripe.Bool(true),
	}
	p.Context = ctx
	p.Metadata = md
	p.SetIdempotencyKey(key)
	p.AddExpand("latest_charge.balance_transaction")
	pi, err := s.api.PaymentIntents.New(p)
	var se *stripe.Error
	if errors.As(err, &se) && se.Type == stripe.ErrorTypeCard {
		return offSessionResult{intent: se.PaymentIntent, declined: se.Msg, code: string(se.Code)}, nil
	}
	if err != nil {
		return offSessionResult{}, fmt.Errorf("%w: charge pledge %s: %w", ErrStripe, key, err)
	}
	if pi.Status == stripe.PaymentIntentStatusRequiresAction || pi.Status == stripe.PaymentIntentStatusRequiresPaymentMethod {
		return offSessionResult{intent: pi, declined: "The bank asks the cardholder to authenticate this payment.",
			code: string(stripe.ErrorCodeAuthenticationRequired)}, nil
	}
	return offSessionResult{intent: pi}, nil
}

// detachPaymentMethod forgets a saved payment method: nobody can charge it any more.
func (s *Stripe) detachPaymentMethod(ctx context.Context, id string) error {
	p := &stripe.PaymentMethodDetachParams{}
	p.Context = ctx
	if _, err := s.api.PaymentMethods.Detach(id, p); err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && se.Code == stripe.ErrorCodeResourceMissing {
			return nil // already gone
		}
		return fmt.Errorf("%w: detach payment method %s: %w", ErrStripe, id, err)
	}
	return nil
}
