package billing

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"
)

// Refunds and disputes take money back from a payment as Stripe's balance transactions say it
// left the platform's balance, in the ledger's (settlement) currency: a refund is booked once
// per Stripe refund, a failed refund puts its split back, an inquiry moves nothing, and a
// dispute books what Stripe withdrew and reinstated.

// paymentRef is a charge's payment entry in the ledger.
type paymentRef struct {
	entryID int64
	gross   int64 // what reached the balance, in the ledger's currency
	ccy     string
}

// paymentOf finds the payment entry of a charge; an event about a charge not posted yet waits
// for it.
func paymentOf(ctx context.Context, tx pgx.Tx, chargeID string) (paymentRef, error) {
	var p paymentRef
	err := tx.QueryRow(ctx, `
		SELECT e.id, p.amount, p.currency FROM journal_entries e JOIN postings p ON p.entry_id = e.id AND p.role = 'gross'
		WHERE e.idempotency_key = $1`, "payment:"+chargeID).Scan(&p.entryID, &p.gross, &p.ccy)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, waitFor(chargeID)
	}
	return p, dbError(err)
}

// toLedger converts an amount of a charge's currency into the ledger's in proportion to what
// the charge settled as, rounding half up; the same amount when the charge settled in its own
// currency. It serves only where Stripe's balance transaction is not known: offline test mode,
// whose charges settle in their own currency.
func toLedger(x, gross, chargeAmount int64) int64 {
	if chargeAmount <= 0 || gross == chargeAmount {
		return x
	}
	n := new(big.Int).Mul(big.NewInt(x), big.NewInt(gross))
	n.Add(n, big.NewInt(chargeAmount/2))
	return n.Quo(n, big.NewInt(chargeAmount)).Int64()
}

// applyChargeRefunded books the refunds of a charge.refunded event's charge: each refund in
// Stripe's list once, by its id, at what its balance transaction took from the balance. Offline
// (no list), the increase of the charge's cumulative amount refunded is booked as one refund;
// one that arrives before an earlier one waits for it.
func (s *Service) applyChargeRefunded(ctx context.Context, tx pgx.Tx, ev *event) ([]string, error) {
	ch := ev.charge
	if err := lockObject(ctx, tx, ch.ID); err != nil {
		return nil, err
	}
	pay, err := paymentOf(ctx, tx, ch.ID)
	if err != nil {
		return nil, err
	}
	if ev.refunds != nil {
		// Refunds booked before they were kept by Stripe's id are the charge's earliest.
		var legacy int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM refunds WHERE charge_id = $1 AND id LIKE 'legacy:%'`,
			ch.ID).Scan(&legacy); err != nil {
			return nil, dbError(err)
		}
		var earlier int64
		for _, r := range ev.refunds {
			if !r.Failed && earlier+r.Amount <= legacy {
				earlier += r.Amount
				continue
			}
			if err := bookRefund(ctx, tx, ev, pay, ch.Amount, r); err != nil {
				return nil, err
			}
		}
	} else {
		var booked int64 // in the charge's currency, less refunds that failed
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount) FILTER (WHERE NOT failed), 0) FROM refunds
			WHERE charge_id = $1`, ch.ID).Scan(&booked); err != nil {
			return nil, dbError(err)
		}
		total := ch.AmountRefunded
		switch {
		case total <= booked:
			// applied already, through a later event
		case ev.prevRefunded > booked:
			return nil, waitFor(ch.ID) // an earlier refund has not been applied yet
		default:
			r := refundFact{ID: ch.ID + "@" + ev.ID, Charge: ch.ID, Amount: total - booked, Created: ev.Created.Unix(),
				Settled: toLedger(total, pay.gross, ch.Amount) - toLedger(booked, pay.gross, ch.Amount)}
			if err := bookRefund(ctx, tx, ev, pay, ch.Amount, r); err != nil {
				return nil, err
			}
		}
	}
	if ch.AmountRefunded >= ch.Amount {
		if err := markRefunded(ctx, tx, ch.ID); err != nil {
			return nil, err
		}
	}
	return []string{ch.ID}, nil
}

// applyRefundEvent books a refund that a refund event reports, or puts back the split of one
// that failed.
func (s *Service) applyRefundEvent(ctx context.Context, tx pgx.Tx, ev *event) ([]string, error) {
	r := refundFactOf(ev.refund, "")
	if r.Charge == "" {
		return nil, fmt.Errorf("%w: refund %s of event %s names no charge", ErrInvalid, r.ID, ev.ID)
	}
	if err := lockObject(ctx, tx, r.Charge); err != nil {
		return nil, err
	}
	pay, err := paymentOf(ctx, tx, r.Charge)
	if err != nil {
		return nil, err
	}
	if !r.Failed && !r.expanded() && !strings.EqualFold(string(ev.refund.Currency), pay.ccy) {
		return nil, fmt.Errorf("%w: refund %s is in %s and its charge settled in %s: its balance transaction is needed",
			ErrInvalid, r.ID, strings.ToUpper(string(ev.refund.Currency)), pay.ccy)
	}
	if err := bookRefund(ctx, tx, ev, pay, 0, r); err != nil {
		return nil, err
	}
	return []string{r.Charge}, nil
}

// bookRefund posts a refund not booked yet, keeping it by its id with the amounts it moved; a
// failed refund that was booked has its split put back. Without Stripe's balance transaction
// the amount is converted at the payment's rate (chargeAmount 0: the same currency).
func bookRefund(ctx context.Context, tx pgx.Tx, ev *event, pay paymentRef, chargeAmount int64, r refundFact) error {
	var entryID, failedID *int64
	var failed bool
	err := tx.QueryRow(ctx, `SELECT entry_id, failed, failed_entry_id FROM refunds WHERE id = $1`, r.ID).Scan(&entryID, &failed, &failedID)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return dbError(err)
	}
	switch {
	case r.Failed && found && entryID != nil && failedID == nil:
		return failRefund(ctx, tx, ev, r, *entryID)
	case r.Failed && !found:
		// Failed before any event booked it: an older event saying it succeeded books nothing.
		_, err := tx.Exec(ctx, `INSERT INTO refunds (id, charge_id, amount, settled, failed) VALUES ($1, $2, $3, 0, true)`,
			r.ID, r.Charge, max(r.Amount, 1))
		return dbError(err)
	case r.Failed, found, r.Amount <= 0:
		return nil
	}
	settled := r.Settled
	if !r.expanded() {
		settled = toLedger(r.Amount, pay.gross, chargeAmount)
	}
	if settled <= 0 {
		return nil
	}
	at := ev.Created
	if r.Created != 0 {
		at = time.Unix(r.Created, 0).UTC()
	}
	id, err := PostReversal(ctx, tx, Reversal{
		EntryID: pay.entryID, Kind: EntryRefund, Amount: settled, Fee: r.Fee, OccurredAt: at,
		IdempotencyKey: "refund:" + r.ID, StripeObjectID: r.ID, StripeEventID: ev.ID, Description: "Refund",
	})
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO refunds (id, charge_id, amount, settled, entry_id) VALUES ($1, $2, $3, $4, $5)`,
		r.ID, r.Charge, r.Amount, settled, id)
	return dbError(err)
}

// failRefund puts back the split of a booked refund that failed: the entry posts the refund's
// lines with their signs turned round, so each party has again what the refund took from it.
func failRefund(ctx context.Context, tx pgx.Tx, ev *event, r refundFact, refundEntryID int64) error {
	var showID, planID, payID int64
	var source string
	if err := tx.QueryRow(ctx, `SELECT coalesce(show_id, 0), coalesce(source, ''), coalesce(share_plan_id, 0), reverses_entry_id
		FROM journal_entries WHERE id = $1`, refundEntryID).Scan(&showID, &source, &planID, &payID); err != nil {
		return dbError(err)
	}
	// Under the payment's lock, as reversals of it are.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM journal_entries WHERE id = $1 FOR UPDATE`, payID); err != nil {
		return dbError(err)
	}
	lines, err := entryPostings(ctx, tx, refundEntryID)
	if err != nil {
		return err
	}
	for i := range lines {
		lines[i].Amount = -lines[i].Amount
	}
	id, err := post(ctx, tx, Entry{
		Kind: EntryRefundFailed, Description: "Refund failed", IdempotencyKey: "refund_failed:" + r.ID,
		OccurredAt: ev.Created, StripeObjectID: r.ID, StripeEventID: ev.ID, ShowID: showID, Source: source,
		SharePlanID: planID, ReversesEntryID: refundEntryID, Postings: lines,
	})
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE refunds SET failed = true, failed_entry_id = $2 WHERE id = $1`, r.ID, id); err != nil {
		return dbError(err)
	}
	var charge string
	if err := tx.QueryRow(ctx, `SELECT charge_id FROM refunds WHERE id = $1`, r.ID).Scan(&charge); err != nil {
		return dbError(err)
	}
	return unmarkRefunded(ctx, tx, charge)
}

// entryPostings reads an entry's postings in order.
func entryPostings(ctx context.Context, db DBTX, entryID int64) ([]Posting, error) {
	rows, _ := db.Query(ctx, `SELECT account_id, amount, currency, role FROM postings WHERE entry_id = $1 ORDER BY id`, entryID)
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Posting])
	if err != nil {
		return nil, fmt.Errorf("postings of entry %d: %w", entryID, dbError(err))
	}
	return lines, nil
}

// inquiry reports whether a dispute is an inquiry (a retrieval request): it moves no money.
func inquiry(status stripe.DisputeStatus) bool {
	return strings.HasPrefix(string(status), "warning_")
}

// applyDispute books a dispute as Stripe moved its money: the withdrawal its balance
// transaction reports (once, whichever of its events comes first), and what a reinstating
// balance transaction gave back (all of it for a won dispute, part for a partly won one). An
// inquiry moves nothing. A dispute lost leaves the payer with the money: what it paid for
// counts as refunded.
func (s *Service) applyDispute(ctx context.Context, tx pgx.Tx, ev *event) ([]string, error) {
	du := ev.dispute
	if du.Charge == nil || du.Charge.ID == "" {
		return nil, fmt.Errorf("%w: dispute %s names no charge", ErrInvalid, du.ID)
	}
	chargeID := du.Charge.ID
	if err := lockObject(ctx, tx, chargeID); err != nil {
		return nil, err
	}
	pay, err := paymentOf(ctx, tx, chargeID)
	if err != nil {
		return nil, err
	}
	var withdrawn, reinstated *stripe.BalanceTransaction
	for _, bt := range du.BalanceTransactions {
		if bt != nil && bt.Amount < 0 && withdrawn == nil {
			withdrawn = bt
		} else if bt != nil && bt.Amount > 0 && reinstated == nil {
			reinstated = bt
		}
	}
	var amount, fee int64
	switch {
	case withdrawn != nil:
		amount, fee = -withdrawn.Amount, withdrawn.Fee
	case inquiry(du.Status):
		// An inquiry withdraws nothing unless it becomes a dispute.
	case strings.EqualFold(string(du.Currency), pay.ccy):
		// A payload without the balance transactions Stripe's own disputes carry: its amount.
		amount = du.Amount
	default:
		return nil, fmt.Errorf("%w: dispute %s is in %s and its charge settled in %s: its balance transaction is needed",
			ErrInvalid, du.ID, strings.ToUpper(string(du.Currency)), pay.ccy)
	}
	var disputeID int64
	if amount > 0 {
		disputeID, err = PostReversal(ctx, tx, Reversal{
			EntryID: pay.entryID, Kind: EntryDispute, Amount: amount, Fee: fee, OccurredAt: time.Unix(du.Created, 0).UTC(),
			IdempotencyKey: "dispute:" + du.ID, StripeObjectID: du.ID, StripeEventID: ev.ID, Description: "Dispute opened",
		})
		if err != nil && !errors.Is(err, ErrDuplicate) {
			return nil, err
		}
	} else if err := tx.QueryRow(ctx, `SELECT id FROM journal_entries WHERE idempotency_key = $1`, "dispute:"+du.ID).
		Scan(&disputeID); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, dbError(err)
	}
	if disputeID == 0 {
		return nil, nil // an inquiry: nothing withdrawn, nothing to give back
	}
	closed := ev.Type == "charge.dispute.closed"
	switch {
	case reinstated != nil:
		_, err = PostDisputeWon(ctx, tx, DisputeWon{
			DisputeEntryID: disputeID, Amount: reinstated.Amount, Fee: reinstated.Fee,
			OccurredAt: time.Unix(reinstated.Created, 0).UTC(), IdempotencyKey: "dispute_won:" + du.ID,
			StripeObjectID: du.ID, StripeEventID: ev.ID,
		})
	case closed && du.Status == stripe.DisputeStatusWon:
		_, err = PostDisputeWon(ctx, tx, DisputeWon{
			DisputeEntryID: disputeID, OccurredAt: ev.Created, IdempotencyKey: "dispute_won:" + du.ID,
			StripeObjectID: du.ID, StripeEventID: ev.ID,
		})
	}
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return nil, err
	}
	if closed && du.Status == stripe.DisputeStatusLost {
		if err := markRefunded(ctx, tx, chargeID); err != nil {
			return nil, err
		}
	}
	return []string{chargeID}, nil
}
