package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// event is a stored Stripe event decoded once, at the edge, into the object its type carries,
// with what it needs from Stripe gathered before any lock is taken. Exactly one of the object
// fields is set for a type Fanseed handles; none for a type it ignores.
type event struct {
	ID      string
	Type    stripe.EventType
	Created time.Time // Stripe's time for the event
	Account string    // the connected account, for Connect events

	session       *stripe.CheckoutSession // checkout.session.*
	invoice       *stripe.Invoice         // invoice.paid
	charge        *stripe.Charge          // charge.refunded
	refund        *stripe.Refund          // charge.refund.updated, refund.*
	dispute       *stripe.Dispute         // charge.dispute.*
	subscription  *stripe.Subscription    // customer.subscription.deleted
	account       *stripe.Account         // account.updated
	transfer      *stripe.Transfer        // transfer.reversed
	payout        *stripe.Payout          // payout.paid, payout.failed
	paymentIntent *stripe.PaymentIntent   // payment_intent.succeeded (a pledge charged off-session)
	prevRefunded  int64                   // charge.refunded: amount_refunded before it, -1 when not said

	// Gathered from the payload, else fetched from Stripe.
	pay       *incoming    // the payment it posts, if it posts one
	refunds   []refundFact // charge.refunded: Stripe's list of the charge's refunds; nil when unknown (offline test mode)
	transfers []string     // payout.*: the platform transfers it carried; nil when matched by time (offline)
}

// envelope is a Stripe event as stored, its object left raw to be decoded once into its type.
type envelope struct {
	ID         string           `json:"id"`
	Type       stripe.EventType `json:"type"`
	APIVersion string           `json:"api_version"`
	Livemode   bool             `json:"livemode"`
	Created    int64            `json:"created"`
	Account    string           `json:"account"`
	Data       *struct {
		Object   json.RawMessage            `json:"object"`
		Previous map[string]json.RawMessage `json:"previous_attributes"`
	} `json:"data"`
}

// EventHeader is what the webhook endpoint reads of an event to store it: the payload's object
// is decoded only when the event is applied.
type EventHeader struct {
	ID         string
	Type       string
	APIVersion string
	Livemode   bool
	Created    time.Time
}

// ParseEventHeader reads an event's header, refusing a payload that is not an event.
func ParseEventHeader(payload []byte) (EventHeader, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return EventHeader{}, fmt.Errorf("%w: stripe event does not parse: %v", ErrInvalid, err)
	}
	if env.ID == "" || env.Type == "" || env.Data == nil || len(env.Data.Object) == 0 {
		return EventHeader{}, fmt.Errorf("%w: stripe event without id, type or data", ErrInvalid)
	}
	return EventHeader{ID: env.ID, Type: string(env.Type), APIVersion: env.APIVersion, Livemode: env.Livemode,
		Created: time.Unix(env.Created, 0).UTC()}, nil
}

// decodeEvent decodes a stored payload. A payload that does not parse is an error: the event
// is kept, not applied, and retried (a fix of the decoder applies it).
func decodeEvent(id string, payload []byte) (*event, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return nil, fmt.Errorf("%w: stripe event %s does not parse: %v", ErrInvalid, id, err)
	}
	if env.ID != id || env.Type == "" || env.Data == nil {
		return nil, fmt.Errorf("%w: stripe event %s has no id, type or data", ErrInvalid, id)
	}
	ev := &event{ID: env.ID, Type: env.Type, Created: time.Unix(env.Created, 0).UTC(), Account: env.Account, prevRefunded: -1}
	var object any
	switch env.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed":
		object = into(&ev.session)
	case "invoice.paid":
		object = into(&ev.invoice)
	case "charge.refunded":
		object = into(&ev.charge)
	case "charge.refund.updated", "refund.created", "refund.updated", "refund.failed":
		object = into(&ev.refund)
	case "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
		"charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated":
		object = into(&ev.dispute)
	case "customer.subscription.deleted":
		object = into(&ev.subscription)
	case "account.updated":
		object = into(&ev.account)
	case "transfer.reversed":
		object = into(&ev.transfer)
	case "payout.paid", "payout.failed":
		object = into(&ev.payout)
	case "payment_intent.succeeded":
		object = into(&ev.paymentIntent)
	default:
		return ev, nil // a type Fanseed does not handle: applied as ignored
	}
	if err := json.Unmarshal(env.Data.Object, object); err != nil {
		return nil, fmt.Errorf("%w: %s event %s: its object does not parse: %v", ErrInvalid, env.Type, id, err)
	}
	if raw, ok := env.Data.Previous["amount_refunded"]; ok && ev.charge != nil {
		if err := json.Unmarshal(raw, &ev.prevRefunded); err != nil {
			return nil, fmt.Errorf("%w: %s event %s: previous amount_refunded: %v", ErrInvalid, env.Type, id, err)
		}
	}
	ev.pay = incomingOf(ev)
	return ev, nil
}

// into points p at a new value to decode into, and returns it.
func into[T any](p **T) any {
	*p = new(T)
	return *p
}

// handled reports whether the event's type is one Fanseed applies.
func (ev *event) handled() bool {
	return ev.session != nil || ev.invoice != nil || ev.charge != nil || ev.refund != nil || ev.dispute != nil ||
		ev.subscription != nil || ev.account != nil || ev.transfer != nil || ev.payout != nil || ev.paymentIntent != nil
}

// errFetchLater is gather's answer, when it may not call Stripe, for an event that needs
// something fetched: a batch leaves such an event to a job of its own.
var errFetchLater = errors.New("facts to fetch from Stripe")

// gather learns what the event needs from Stripe: from its payload, else fetched (or
// errFetchLater unless fetch is set).
func (s *Service) gather(ctx context.Context, ev *event, fetch bool) error {
	if ev.pay != nil {
		if err := s.gatherCharge(ctx, ev, fetch); err != nil {
			return err
		}
	}
	switch {
	case ev.session != nil && ev.session.Mode == stripe.CheckoutSessionModeSetup:
		return s.gatherSetupIntent(ctx, ev, fetch)
	case ev.charge != nil:
		return s.gatherRefunds(ctx, ev, fetch)
	case ev.refund != nil:
		return s.gatherRefund(ctx, ev, fetch)
	case ev.payout != nil:
		return s.gatherPayoutTransfers(ctx, ev, fetch)
	}
	return nil
}

// chargeFacts is a charge as its balance transaction reports it: what reached the platform's
// balance, in the settlement currency, and Stripe's fee.
type chargeFacts struct {
	ChargeID string
	Gross    int64
	Fee      int64
	Currency string
	At       time.Time
}

// factsOf reads a charge whose balance transaction is expanded (as the payload of offline test
// mode and of tests carries it); ok is false when it is not.
func factsOf(ch *stripe.Charge) (chargeFacts, bool) {
	if ch == nil || ch.ID == "" || ch.BalanceTransaction == nil || ch.BalanceTransaction.Amount == 0 {
		return chargeFacts{}, false
	}
	bt := ch.BalanceTransaction
	at := ch.Created
	if at == 0 {
		at = bt.Created
	}
	// Stripe's times are whole seconds: a charge counts as received at the end of its second,
	// so that a plan made earlier in that second applies to it.
	return chargeFacts{ChargeID: ch.ID, Gross: bt.Amount, Fee: bt.Fee, Currency: strings.ToUpper(string(bt.Currency)),
		At: time.Unix(at, 999_999_000).UTC()}, true
}

// gatherCharge learns the charge behind a payment: from the payload when it carries the
// balance transaction, else from Stripe.
func (s *Service) gatherCharge(ctx context.Context, ev *event, fetch bool) error {
	pay := ev.pay
	if f, ok := factsOf(pay.charge); ok {
		pay.facts = f
		return nil
	}
	if !fetch {
		return errFetchLater
	}
	if s.Stripe == nil {
		return fmt.Errorf("%w: event %s has no balance transaction and there is no Stripe key to fetch it", ErrInvalid, ev.ID)
	}
	var ch *stripe.Charge
	var err error
	switch {
	case pay.charge != nil && pay.charge.ID != "":
		ch, err = s.Stripe.charge(ctx, pay.charge.ID)
	case pay.paymentIntent != "":
		ch, err = s.Stripe.chargeOfPaymentIntent(ctx, pay.paymentIntent)
	default:
		return fmt.Errorf("%w: event %s names no charge", ErrInvalid, ev.ID)
	}
	if err != nil {
		return err
	}
	f, ok := factsOf(ch)
	if !ok {
		return fmt.Errorf("%w: charge of event %s has no balance transaction", ErrStripe, ev.ID)
	}
	pay.facts = f
	return nil
}

// refundFact is one refund of a charge as Stripe reports it: its amount in the charge's
// currency, what left the platform's balance for it (Settled, in the ledger's currency; 0 when
// Stripe's balance transaction is not known, offline) and the fee on that balance transaction
// (positive for a fee charged on the refund, negative for part of the payment's fee returned).
type refundFact struct {
	ID      string
	Charge  string
	Amount  int64
	Settled int64
	Fee     int64
	Failed  bool // failed or cancelled: it moved no money, or Stripe gave it back
	Created int64
}

func refundFactOf(r *stripe.Refund, charge string) refundFact {
	f := refundFact{ID: r.ID, Charge: charge, Amount: r.Amount, Created: r.Created,
		Failed: r.Status == stripe.RefundStatusFailed || r.Status == stripe.RefundStatusCanceled}
	if r.Charge != nil && r.Charge.ID != "" {
		f.Charge = r.Charge.ID
	}
	if bt := r.BalanceTransaction; bt != nil && bt.Type != "" {
		f.Settled, f.Fee = -bt.Amount, bt.Fee
	}
	return f
}

// expanded reports whether the refund's balance transaction was read, not only its id.
func (f refundFact) expanded() bool { return f.Settled > 0 }

// gatherRefunds learns the refunds of a charge.refunded event's charge with their balance
// transactions: from the payload when it carries them all, else from Stripe. Without a Stripe
// key (offline test mode, where a charge settles in its own currency) a payload without them
// leaves the refunds unknown, and the charge's cumulative amount refunded is booked.
func (s *Service) gatherRefunds(ctx context.Context, ev *event, fetch bool) error {
	ch := ev.charge
	var list []*stripe.Refund
	switch {
	case ch.Refunds != nil && !ch.Refunds.HasMore && refundsExpanded(ch.Refunds.Data):
		list = ch.Refunds.Data
	case s.Stripe == nil:
		return nil
	case !fetch:
		return errFetchLater
	default:
		var err error
		if list, err = s.Stripe.refunds(ctx, ch.ID); err != nil {
			return err
		}
	}
	ev.refunds = make([]refundFact, 0, len(list))
	for _, r := range list {
		if r != nil {
			ev.refunds = append(ev.refunds, refundFactOf(r, ch.ID))
		}
	}
	slices.SortFunc(ev.refunds, func(a, b refundFact) int {
		if a.Created != b.Created {
			return int(a.Created - b.Created)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return nil
}

// gatherRefund learns the balance transaction of a refund event's refund when it is to be
// booked (not failed) and the payload carries only its id.
func (s *Service) gatherRefund(ctx context.Context, ev *event, fetch bool) error {
	r := ev.refund
	if r.Status == stripe.RefundStatusFailed || r.Status == stripe.RefundStatusCanceled || s.Stripe == nil ||
		(r.BalanceTransaction != nil && r.BalanceTransaction.Type != "") {
		return nil
	}
	if !fetch {
		return errFetchLater
	}
	got, err := s.Stripe.refund(ctx, r.ID)
	if err != nil {
		return err
	}
	ev.refund = got
	return nil
}

// refundsExpanded reports whether every refund carries its balance transaction, not only its id.
func refundsExpanded(list []*stripe.Refund) bool {
	for _, r := range list {
		if r == nil || r.BalanceTransaction == nil || r.BalanceTransaction.Type == "" {
			return false
		}
	}
	return true
}

// gatherPayoutTransfers learns which platform transfers a connected account's payout event
// carried, from Stripe. Without a Stripe key there is no one to ask, and the event is matched
// by time.
func (s *Service) gatherPayoutTransfers(ctx context.Context, ev *event, fetch bool) error {
	if ev.Account == "" || s.Stripe == nil {
		return nil
	}
	if !fetch {
		return errFetchLater
	}
	if ev.payout.ID == "" {
		return fmt.Errorf("%w: payout of event %s has no id", ErrInvalid, ev.ID)
	}
	ids, err := s.Stripe.payoutTransfers(ctx, ev.Account, ev.payout.ID)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []string{} // known: it carried none of ours
	}
	ev.transfers = ids
	return nil
}
