package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"
)

// An operator refunds a payment by asking Stripe (or, offline, by sending the webhook endpoint
// the charge.refunded event Stripe would send): the request is kept first, so a retry reuses its
// idempotency key, and the ledger changes only when the event is applied.

// MetaRefundRequestID names the refund request on the Stripe refund it made.
const MetaRefundRequestID = "fanseed_refund_request_id"

// Refund request statuses.
const (
	RefundPending = "pending" // kept, Stripe not answered yet: sending it again is safe
	RefundSent    = "sent"    // Stripe made the refund; the ledger follows its event
	RefundFailed  = "failed"  // Stripe refused it
)

// RefundAsk is what an operator asks to refund: Amount is a decimal of the charge's currency,
// empty for everything left.
type RefundAsk struct {
	Charge string
	Amount string
	Reason string
	By     string // who asked: an admin's email, or "cli"
}

// RefundRequest is a refund an operator asked for.
type RefundRequest struct {
	ID             int64     `db:"id"`
	ChargeID       string    `db:"charge_id"`
	Amount         int64     `db:"amount"`
	Currency       string    `db:"currency"`
	Reason         string    `db:"reason"`
	RequestedBy    string    `db:"requested_by"`
	Status         string    `db:"status"`
	StripeRefundID *string   `db:"stripe_refund_id"`
	Failure        string    `db:"failure"`
	CreatedAt      time.Time `db:"created_at"`
}

// Money is the amount asked for.
func (r RefundRequest) Money() Money { return Money{Amount: r.Amount, Currency: r.Currency} }

// IdempotencyKey is the key Stripe sees for every attempt of the request.
func (r RefundRequest) IdempotencyKey() string {
	return "refund_request:" + strconv.FormatInt(r.ID, 10)
}

// chargeLeft is what a charge may still be refunded, in its own currency.
type chargeLeft struct {
	amount, refunded int64
	currency         string
	created          time.Time
}

// leftOf reads the charge's amount and what was refunded: from Stripe with a key, else (offline,
// where a charge settles in its own currency) from the ledger and the requests already sent.
func (s *Service) leftOf(ctx context.Context, tx pgx.Tx, chargeID string) (chargeLeft, error) {
	var c chargeLeft
	err := tx.QueryRow(ctx, `
		SELECT p.amount, p.currency, e.occurred_at FROM journal_entries e JOIN postings p ON p.entry_id = e.id AND p.role = 'gross'
		WHERE e.idempotency_key = $1`, "payment:"+chargeID).Scan(&c.amount, &c.currency, &c.created)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("%w: charge: %s is not a payment in the ledger", ErrInvalid, chargeID)
	}
	if err != nil {
		return c, dbError(err)
	}
	if s.Stripe != nil {
		ch, err := s.Stripe.charge(ctx, chargeID)
		if err != nil {
			return c, err
		}
		c.amount, c.currency, c.refunded = ch.Amount, strings.ToUpper(string(ch.Currency)), ch.AmountRefunded
	} else if err := tx.QueryRow(ctx, `SELECT greatest(
			(SELECT coalesce(sum(amount) FILTER (WHERE NOT failed), 0) FROM refunds WHERE charge_id = $1),
			(SELECT coalesce(sum(amount), 0) FROM refund_requests WHERE charge_id = $1 AND status = 'sent'))`,
		chargeID).Scan(&c.refunded); err != nil {
		return c, dbError(err)
	}
	var pending int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM refund_requests WHERE charge_id = $1 AND status = 'pending'`,
		chargeID).Scan(&pending); err != nil {
		return c, dbError(err)
	}
	c.refunded += pending
	return c, nil
}

// RequestRefund checks and keeps an operator's refund, then sends it (see SendRefund). deliver
// posts an offline event to the webhook path; it is not called with a Stripe key.
func (s *Service) RequestRefund(ctx context.Context, ask RefundAsk, deliver func(ctx context.Context, payload []byte) error) (RefundRequest, error) {
	ask.Charge, ask.Reason, ask.By = strings.TrimSpace(ask.Charge), strings.TrimSpace(ask.Reason), strings.TrimSpace(ask.By)
	if ask.Charge == "" {
		return RefundRequest{}, fmt.Errorf("%w: charge: the charge id (ch_...) is required", ErrInvalid)
	}
	if len(ask.Reason) > 500 {
		return RefundRequest{}, fmt.Errorf("%w: reason: at most 500 characters", ErrInvalid)
	}
	if ask.By == "" {
		return RefundRequest{}, fmt.Errorf("%w: requested by: who asks is required", ErrInvalid)
	}
	var req RefundRequest
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := lockObject(ctx, tx, "refund_request:"+ask.Charge); err != nil {
			return err
		}
		c, err := s.leftOf(ctx, tx, ask.Charge)
		if err != nil {
			return err
		}
		left := c.amount - c.refunded
		cur, err := LookupCurrency(c.currency)
		if err != nil {
			return err
		}
		amount := left
		if strings.TrimSpace(ask.Amount) != "" {
			if amount, err = cur.Parse(ask.Amount); err != nil {
				return fmt.Errorf("amount: %w", err)
			}
		}
		leftText := Money{Amount: max(left, 0), Currency: c.currency}.String()
		switch {
		case left <= 0:
			return fmt.Errorf("%w: amount: %s has nothing left to refund", ErrInvalid, ask.Charge)
		case amount <= 0:
			return fmt.Errorf("%w: amount: must be more than zero", ErrInvalid)
		case amount > left:
			return fmt.Errorf("%w: amount: %s is more than the %s left to refund on %s", ErrInvalid,
				Money{Amount: amount, Currency: c.currency}, leftText, ask.Charge)
		}
		if err := CheckStripeStep(amount, c.currency); err != nil {
			return fmt.Errorf("amount: %w", err)
		}
		rows, _ := tx.Query(ctx, `INSERT INTO refund_requests (charge_id, amount, currency, reason, requested_by)
			VALUES ($1, $2, $3, $4, $5) RETURNING *`, ask.Charge, amount, c.currency, ask.Reason, ask.By)
		req, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[RefundRequest])
		return dbError(err)
	})
	if err != nil {
		return RefundRequest{}, err
	}
	s.Log.Info("refund requested", slog.Int64("refund_request_id", req.ID), slog.String("charge_id", req.ChargeID), slog.Int64("amount", req.Amount),
		slog.String("currency", req.Currency), slog.String("requested_by", req.RequestedBy))
	return s.SendRefund(ctx, req.ID, deliver)
}

// SendRefund sends a pending refund request: to Stripe under the request's idempotency key, or
// offline as the signed charge.refunded event deliver posts. A request already sent or refused
// is returned as it is, so sending again never refunds twice.
func (s *Service) SendRefund(ctx context.Context, id int64, deliver func(ctx context.Context, payload []byte) error) (RefundRequest, error) {
	req, err := FindRefundRequest(ctx, s.DB, id)
	if err != nil || req.Status != RefundPending {
		return req, err
	}
	var refundID string
	if s.Stripe != nil {
		refundID, err = s.Stripe.CreateRefund(ctx, req.IdempotencyKey(), req.ChargeID, req.Amount, req.ID)
		var se *stripe.Error
		if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != 409 && se.HTTPStatusCode != 429 {
			msg := se.Msg
			if msg == "" {
				msg = string(se.Code)
			}
			if _, uerr := s.DB.Exec(ctx, `UPDATE refund_requests SET status = 'failed', failure = left($2, 1000) WHERE id = $1`, id, msg); uerr != nil {
				return req, dbError(uerr)
			}
			req.Status, req.Failure = RefundFailed, msg
			return req, fmt.Errorf("%w: Stripe refused the refund: %s", ErrInvalid, msg)
		}
		if err != nil {
			return req, err // left pending: sending it again reuses the key
		}
	} else {
		payload, rid, err := s.testRefundEvent(ctx, req)
		if err != nil {
			return req, err
		}
		if err := deliver(ctx, payload); err != nil {
			return req, err
		}
		refundID = rid
	}
	if _, err := s.DB.Exec(ctx, `UPDATE refund_requests SET status = 'sent', stripe_refund_id = $2 WHERE id = $1 AND status = 'pending'`,
		id, refundID); err != nil {
		return req, dbError(err)
	}
	s.Log.Info("refund sent", slog.Int64("refund_request_id", req.ID), slog.String("charge_id", req.ChargeID), slog.String("stripe_refund_id", refundID))
	return FindRefundRequest(ctx, s.DB, id)
}

// testRefundEvent is the charge.refunded event Stripe would send for an offline request: the
// charge with its cumulative amount refunded and its list of refunds (those sent before and
// this one), each with its balance transaction, as a charge settled in its own currency.
func (s *Service) testRefundEvent(ctx context.Context, req RefundRequest) ([]byte, string, error) {
	var amount int64
	if err := s.DB.QueryRow(ctx, `SELECT p.amount FROM journal_entries e JOIN postings p ON p.entry_id = e.id AND p.role = 'gross'
		WHERE e.idempotency_key = $1`, "payment:"+req.ChargeID).Scan(&amount); err != nil {
		return nil, "", wrapNotFound(err, "payment of "+req.ChargeID)
	}
	rows, _ := s.DB.Query(ctx, `SELECT * FROM refund_requests WHERE charge_id = $1 AND (status = 'sent' OR id = $2) ORDER BY id`,
		req.ChargeID, req.ID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[RefundRequest])
	if err != nil {
		return nil, "", dbError(err)
	}
	cur := strings.ToLower(req.Currency)
	var data []map[string]any
	var total int64
	for _, r := range list {
		rid := "re_test_fanseed_" + strconv.FormatInt(r.ID, 10)
		created := r.CreatedAt.Unix()
		data = append(data, map[string]any{"id": rid, "object": "refund", "amount": r.Amount, "currency": cur, "charge": req.ChargeID,
			"status": "succeeded", "created": created, "metadata": map[string]string{MetaRefundRequestID: strconv.FormatInt(r.ID, 10)},
			"balance_transaction": map[string]any{"id": "txn_test_fanseed_refund_" + strconv.FormatInt(r.ID, 10), "object": "balance_transaction",
				"amount": -r.Amount, "fee": 0, "net": -r.Amount, "currency": cur, "created": created, "type": "refund"}})
		total += r.Amount
	}
	charge := map[string]any{"id": req.ChargeID, "object": "charge", "amount": amount, "amount_refunded": total, "currency": cur,
		"paid": true, "status": "succeeded", "refunded": total >= amount,
		"refunds": map[string]any{"object": "list", "has_more": false, "data": data, "url": "/v1/charges/" + req.ChargeID + "/refunds"}}
	id := strconv.FormatInt(req.ID, 10)
	payload := EventJSON("evt_test_fanseed_refund_"+id, "charge.refunded", time.Now(), charge,
		map[string]any{"amount_refunded": total - req.Amount}, "")
	return payload, "re_test_fanseed_" + id, nil
}

// FindRefundRequest loads a refund request.
func FindRefundRequest(ctx context.Context, db DBTX, id int64) (RefundRequest, error) {
	return findOne[RefundRequest](ctx, db, "refund request "+strconv.FormatInt(id, 10), `SELECT * FROM refund_requests WHERE id = $1`, id)
}

// PaymentLine is a payment as the admin's refunds page lists it: what it received, what was
// refunded (as booked) and the latest state of any dispute.
type PaymentLine struct {
	EntryID       int64     `db:"id"`
	ChargeID      string    `db:"charge_id"`
	OccurredAt    time.Time `db:"occurred_at"`
	ShowTitle     *string   `db:"title"`
	Amount        int64     `db:"amount"`
	Currency      string    `db:"currency"`
	Refunded      int64     `db:"refunded"`
	DisputeID     *string   `db:"dispute_id"`
	DisputeStatus *string   `db:"dispute_status"`
}

// AmountText and RefundedText format the amounts with their currency.
func (p PaymentLine) AmountText() string {
	return Money{Amount: p.Amount, Currency: p.Currency}.String()
}
func (p PaymentLine) RefundedText() string {
	return Money{Amount: p.Refunded, Currency: p.Currency}.String()
}

// Left is what may still be refunded, as the ledger has it.
func (p PaymentLine) Left() int64 { return p.Amount - p.Refunded }

// LeftText is Left as a decimal without its currency, for a form's value.
func (p PaymentLine) LeftText() string {
	cur, err := LookupCurrency(p.Currency)
	if err != nil {
		return ""
	}
	return cur.Format(p.Left())
}

// RecentPayments lists the latest payments with their refunds and the state of their latest
// dispute (from its newest stored event).
func RecentPayments(ctx context.Context, db DBTX, limit int) ([]PaymentLine, error) {
	return paymentLines(ctx, db, `e.kind = 'payment' AND e.stripe_object_id IS NOT NULL`, limit)
}

// FindPaymentLine is a charge's payment as RecentPayments lists it.
func FindPaymentLine(ctx context.Context, db DBTX, chargeID string) (PaymentLine, error) {
	list, err := paymentLines(ctx, db, `e.idempotency_key = 'payment:' || $2`, 1, chargeID)
	if err != nil {
		return PaymentLine{}, err
	}
	if len(list) == 0 {
		return PaymentLine{}, fmt.Errorf("payment of %s: %w", chargeID, ErrNotFound)
	}
	return list[0], nil
}

func paymentLines(ctx context.Context, db DBTX, where string, limit int, args ...any) ([]PaymentLine, error) {
	return findAll[PaymentLine](ctx, db, "payments", `
		SELECT e.id, e.stripe_object_id AS charge_id, e.occurred_at, s.title, p.amount, p.currency,
		       coalesce((SELECT sum(r.amount) FILTER (WHERE NOT r.failed) FROM refunds r WHERE r.charge_id = e.stripe_object_id), 0) AS refunded,
		       d.id AS dispute_id, d.status AS dispute_status
		FROM journal_entries e JOIN postings p ON p.entry_id = e.id AND p.role = 'gross'
		LEFT JOIN shows s ON s.id = e.show_id
		LEFT JOIN LATERAL (
			SELECT ev.payload->'data'->'object'->>'id' AS id, ev.payload->'data'->'object'->>'status' AS status
			FROM stripe_events ev
			WHERE ev.type LIKE 'charge.dispute.%' AND ev.payload->'data'->'object'->>'charge' = e.stripe_object_id
			ORDER BY ev.created DESC, ev.received_at DESC LIMIT 1) d ON true
		WHERE `+where+`
		ORDER BY e.occurred_at DESC, e.id DESC LIMIT $1`, append([]any{limit}, args...)...)
}

// RecentRefundRequests lists the latest refund requests.
func RecentRefundRequests(ctx context.Context, db DBTX, limit int) ([]RefundRequest, error) {
	return findAll[RefundRequest](ctx, db, "recent refund requests", `SELECT * FROM refund_requests ORDER BY id DESC LIMIT $1`, limit)
}
