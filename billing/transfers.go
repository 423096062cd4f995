package billing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Events about money leaving the platform and about connected accounts: a payout transfer
// reversed, a connected account's own payout to its bank paid or failed, an account's
// capabilities changed.

// applyTransferReversed takes back into a party's balance what a reversed payout transfer
// returned: the increase of the transfer's cumulative amount_reversed over what the ledger
// already took back for it.
func (s *Service) applyTransferReversed(ctx context.Context, tx pgx.Tx, ev *event) ([]string, error) {
	t := ev.transfer
	if err := lockObject(ctx, tx, t.ID); err != nil {
		return nil, err
	}
	var payoutID, partyID int64
	var currency string
	err := tx.QueryRow(ctx, `SELECT id, party_id, currency FROM payouts WHERE stripe_transfer_id = $1 FOR UPDATE`, t.ID).
		Scan(&payoutID, &partyID, &currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, waitFor(t.ID) // the payout run that made it has not recorded it yet
	}
	if err != nil {
		return nil, dbError(err)
	}
	var done int64
	if err := tx.QueryRow(ctx, `
		SELECT coalesce(sum(p.amount), 0) FROM journal_entries e
		JOIN postings p ON p.entry_id = e.id AND p.role = 'transfer'
		JOIN ledger_accounts a ON a.id = p.account_id AND a.kind = 'stripe_clearing'
		WHERE e.stripe_object_id = $1 AND e.kind = 'adjustment'`, t.ID).Scan(&done); err != nil {
		return nil, dbError(err)
	}
	if t.AmountReversed > done {
		b := postingBuilder{ctx: ctx, db: tx, currency: currency}
		amount := t.AmountReversed - done
		b.add(StripeClearing, 0, amount, RoleTransfer)
		b.add(PartyPayable, partyID, -amount, RoleTransfer)
		if b.err != nil {
			return nil, b.err
		}
		_, err := post(ctx, tx, Entry{
			Kind: EntryAdjustment, Description: fmt.Sprintf("Payout %d reversed", payoutID),
			IdempotencyKey: "transfer_reversed:" + t.ID + ":" + strconv.FormatInt(t.AmountReversed, 10),
			OccurredAt:     ev.Created, StripeObjectID: t.ID, StripeEventID: ev.ID, Postings: b.list,
		})
		if err != nil && !errors.Is(err, ErrDuplicate) {
			return nil, err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE payouts SET status = 'reversed', updated_at = now() WHERE id = $1`, payoutID)
	return nil, dbError(err)
}

// applyConnectedPayout settles the transfers a connected account's payout to its bank carried:
// those Stripe lists for it, or, offline, those made to the account before the payout was
// created and not settled by an earlier one.
func applyConnectedPayout(ctx context.Context, tx pgx.Tx, ev *event) error {
	p := ev.payout
	status := map[string]string{"payout.paid": "paid", "payout.failed": "failed"}[string(ev.Type)]
	if ev.transfers != nil {
		_, err := tx.Exec(ctx, `
			UPDATE payouts SET status = $2, failure = $3, updated_at = now()
			WHERE party_id = (SELECT id FROM parties WHERE stripe_account_id = $1)
			  AND status = 'transferred' AND stripe_transfer_id = ANY($4)`,
			ev.Account, status, p.FailureMessage, ev.transfers)
		return dbError(err)
	}
	made := ev.Created
	if p.Created != 0 {
		made = time.Unix(p.Created, 0).UTC()
	}
	_, err := tx.Exec(ctx, `
		UPDATE payouts SET status = $2, failure = $3, updated_at = now()
		WHERE party_id = (SELECT id FROM parties WHERE stripe_account_id = $1)
		  AND status = 'transferred' AND updated_at <= $4`,
		ev.Account, status, p.FailureMessage, made)
	return dbError(err)
}

// applyAccountUpdated records a connected account's capabilities; an older event never
// overrides a newer one.
func applyAccountUpdated(ctx context.Context, tx pgx.Tx, ev *event) error {
	a := ev.account
	_, err := tx.Exec(ctx, `
		UPDATE parties SET charges_enabled = $2, payouts_enabled = $3, stripe_updated_at = $4
		WHERE stripe_account_id = $1 AND (stripe_updated_at IS NULL OR stripe_updated_at <= $4)`,
		a.ID, a.ChargesEnabled, a.PayoutsEnabled, ev.Created)
	return dbError(err)
}
