package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// ErrStripe reports that Stripe refused or failed a request; the detail is in the chain.
var ErrStripe = errors.New("stripe")

// Stripe is the Stripe API as Fanseed uses it, through a client value of its own (never the
// global stripe.Key), so that tests point it at stripe-mock.
type Stripe struct {
	api *client.API
}

// NewStripe returns a client for the secret key. apiBase overrides https://api.stripe.com
// (STRIPE_API_BASE, for stripe-mock); httpClient may be nil.
func NewStripe(key, apiBase string, httpClient *http.Client) *Stripe {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	cfg := &stripe.BackendConfig{
		HTTPClient:        httpClient,
		MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if apiBase != "" {
		cfg.URL = stripe.String(strings.TrimRight(apiBase, "/"))
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	}
	api := &client.API{}
	api.Init(key, backends)
	return &Stripe{api: api}
}

// Checkout is what a Checkout session needs: one line of Amount in Currency, paid once or
// monthly, tied by Metadata to what it pays for.
type Checkout struct {
	Monthly    bool
	Donate     bool // submit type "donate" (one-off payments only)
	Amount     int64
	Currency   string
	Name       string // the line item's name, as the payer sees it
	Email      string // prefilled payer email, if known
	Customer   string // the Stripe customer paying, if known (a backer paying a pledge on-session)
	SuccessURL string
	CancelURL  string
	Reference  string // client_reference_id
	Metadata   map[string]string
}

// CreateCheckout opens a Checkout session and returns its id and the URL to send the payer to.
// The metadata goes on the session and on the payment intent or subscription it creates, so
// that later events (renewals, refunds) can be tied back to the show.
func (s *Stripe) CreateCheckout(ctx context.Context, c Checkout) (id, url string, err error) {
	price := &stripe.CheckoutSessionLineItemPriceDataParams{
		Currency:    stripe.String(strings.ToLower(c.Currency)),
		UnitAmount:  stripe.Int64(c.Amount),
		ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String(c.Name)},
	}
	p := &stripe.CheckoutSessionParams{
		SuccessURL:        stripe.String(c.SuccessURL),
		CancelURL:         stripe.String(c.CancelURL),
		ClientReferenceID: stripe.String(c.Reference),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{PriceData: price, Quantity: stripe.Int64(1)}},
		Metadata:          c.Metadata,
	}
	p.Context = ctx
	switch {
	case c.Customer != "":
		p.Customer = stripe.String(c.Customer)
	case c.Email != "":
		p.CustomerEmail = stripe.String(c.Email)
	}
	if c.Monthly {
		price.Recurring = &stripe.CheckoutSessionLineItemPriceDataRecurringParams{Interval: stripe.String("month")}
		p.Mode = stripe.String(string(stripe.CheckoutSessionModeSubscription))
		p.SubscriptionData = &stripe.CheckoutSessionSubscriptionDataParams{Metadata: c.Metadata}
	} else {
		p.Mode = stripe.String(string(stripe.CheckoutSessionModePayment))
		p.PaymentIntentData = &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: c.Metadata}
		if c.Donate {
			p.SubmitType = stripe.String(string(stripe.CheckoutSessionSubmitTypeDonate))
		}
	}
	sess, err := s.api.CheckoutSessions.New(p)
	if err != nil {
		return "", "", fmt.Errorf("%w: create checkout session: %w", ErrStripe, err)
	}
	return sess.ID, sess.URL, nil
}

// chargeOfPaymentIntent fetches a payment intent's charge with its balance transaction.
func (s *Stripe) chargeOfPaymentIntent(ctx context.Context, id string) (*stripe.Charge, error) {
	p := &stripe.PaymentIntentParams{}
	p.Context = ctx
	p.AddExpand("latest_charge.balance_transaction")
	pi, err := s.api.PaymentIntents.Get(id, p)
	if err != nil {
		return nil, fmt.Errorf("%w: payment intent %s: %w", ErrStripe, id, err)
	}
	if pi.LatestCharge == nil {
		return nil, fmt.Errorf("%w: payment intent %s has no charge", ErrStripe, id)
	}
	return pi.LatestCharge, nil
}

// charge fetches a charge with its balance transaction.
func (s *Stripe) charge(ctx context.Context, id string) (*stripe.Charge, error) {
	p := &stripe.ChargeParams{}
	p.Context = ctx
	p.AddExpand("balance_transaction")
	ch, err := s.api.Charges.Get(id, p)
	if err != nil {
		return nil, fmt.Errorf("%w: charge %s: %w", ErrStripe, id, err)
	}
	return ch, nil
}

// refunds fetches a charge's refunds with their balance transactions, oldest first.
func (s *Stripe) refunds(ctx context.Context, chargeID string) ([]*stripe.Refund, error) {
	p := &stripe.RefundListParams{Charge: stripe.String(chargeID)}
	p.Context = ctx
	p.AddExpand("data.balance_transaction")
	var list []*stripe.Refund
	it := s.api.Refunds.List(p)
	for it.Next() {
		list = append(list, it.Refund())
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("%w: refunds of charge %s: %w", ErrStripe, chargeID, err)
	}
	return list, nil
}

// refund fetches a refund with its balance transaction.
func (s *Stripe) refund(ctx context.Context, id string) (*stripe.Refund, error) {
	p := &stripe.RefundParams{}
	p.Context = ctx
	p.AddExpand("balance_transaction")
	r, err := s.api.Refunds.Get(id, p)
	if err != nil {
		return nil, fmt.Errorf("%w: refund %s: %w", ErrStripe, id, err)
	}
	return r, nil
}

// CreateRefund refunds amount (in the charge's currency) of a charge, under an idempotency key
// so that a retry of the same request makes no second refund, and returns the refund's id.
func (s *Stripe) CreateRefund(ctx context.Context, idempotencyKey, chargeID string, amount int64, requestID int64) (string, error) {
	p := &stripe.RefundParams{Charge: stripe.String(chargeID), Amount: stripe.Int64(amount)}
	p.Context = ctx
	p.SetIdempotencyKey(idempotencyKey)
	p.AddMetadata(MetaRefundRequestID, strconv.FormatInt(requestID, 10))
	r, err := s.api.Refunds.New(p)
	if err != nil {
		return "", fmt.Errorf("%w: refund charge %s: %w", ErrStripe, chargeID, err)
	}
	return r.ID, nil
}

// payoutTransfers lists the platform transfers a connected account's automatic payout carried
// to its bank: the payout's balance transactions on that account, whose sources are the
// payments the transfers made there.
func (s *Stripe) payoutTransfers(ctx context.Context, account, payoutID string) ([]string, error) {
	p := &stripe.BalanceTransactionListParams{Payout: stripe.String(payoutID)}
	p.Context = ctx
	p.SetStripeAccount(account)
	p.AddExpand("data.source") // its source_transfer, unexpanded, is the transfer's id
	var ids []string
	it := s.api.BalanceTransactions.List(p)
	for it.Next() {
		bt := it.BalanceTransaction()
		if bt.Source != nil && bt.Source.Charge != nil && bt.Source.Charge.SourceTransfer != nil && bt.Source.Charge.SourceTransfer.ID != "" {
			ids = append(ids, bt.Source.Charge.SourceTransfer.ID)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("%w: balance transactions of payout %s: %w", ErrStripe, payoutID, err)
	}
	return ids, nil
}

// Transfer sends amount to a connected account. The idempotency key makes a retry of the same
// payout return the first transfer instead of paying twice.
func (s *Stripe) Transfer(ctx context.Context, idempotencyKey, destination string, amount int64, currency, group string, payoutID int64) (string, error) {
	p := &stripe.TransferParams{
		Amount:        stripe.Int64(amount),
		Currency:      stripe.String(strings.ToLower(currency)),
		Destination:   stripe.String(destination),
		TransferGroup: stripe.String(group),
	}
	p.Context = ctx
	p.SetIdempotencyKey(idempotencyKey)
	p.AddMetadata(MetaPayoutID, strconv.FormatInt(payoutID, 10))
	t, err := s.api.Transfers.New(p)
	if err != nil {
		return "", fmt.Errorf("%w: transfer %s: %w", ErrStripe, idempotencyKey, err)
	}
	return t.ID, nil
}

// FindTransfer looks for the transfer made for a payout among the transfers of its group, by the
// payout id in their metadata, and returns its id, or "" when there is none.
func (s *Stripe) FindTransfer(ctx context.Context, group string, payoutID int64) (string, error) {
	p := &stripe.TransferListParams{TransferGroup: stripe.String(group)}
	p.Context = ctx
	want := strconv.FormatInt(payoutID, 10)
	it := s.api.Transfers.List(p)
	for it.Next() {
		if t := it.Transfer(); t.Metadata[MetaPayoutID] == want {
			return t.ID, nil
		}
	}
	if err := it.Err(); err != nil {
		return "", fmt.Errorf("%w: transfers of %s: %w", ErrStripe, group, err)
	}
	return "", nil
}

// CreateExpressAccount makes a connected account for a party to onboard through Stripe.
func (s *Stripe) CreateExpressAccount(ctx context.Context, email string, partyID int64) (string, error) {
	p := &stripe.AccountParams{
		Type:  stripe.String(string(stripe.AccountTypeExpress)),
		Email: stripe.String(email),
		Capabilities: &stripe.AccountCapabilitiesParams{
			Transfers: &stripe.AccountCapabilitiesTransfersParams{Requested: stripe.Bool(true)},
		},
	}
	p.Context = ctx
	p.AddMetadata("fanseed_party_id", strconv.FormatInt(partyID, 10))
	a, err := s.api.Accounts.New(p)
	if err != nil {
		return "", fmt.Errorf("%w: create account: %w", ErrStripe, err)
	}
	return a.ID, nil
}

// OnboardingLink returns the URL of Stripe's Express onboarding for a connected account.
func (s *Stripe) OnboardingLink(ctx context.Context, accountID, refreshURL, returnURL string) (string, error) {
	p := &stripe.AccountLinkParams{
		Account:    stripe.String(accountID),
		RefreshURL: stripe.String(refreshURL),
		ReturnURL:  stripe.String(returnURL),
		Type:       stripe.String("account_onboarding"),
	}
	p.Context = ctx
	l, err := s.api.AccountLinks.New(p)
	if err != nil {
		return "", fmt.Errorf("%w: account link: %w", ErrStripe, err)
	}
	return l.URL, nil
}
