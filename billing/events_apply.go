package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
)

// Applying stored events: one by one in a job of an event's own (ApplyEvent), or many in one
// transaction (applyBatch), both through apply; the payments of a batch are posted together by
// the same postPayments that posts one.

// waitFor is returned by an event handler that needs something not yet applied, such as the
// payment a refund reverses: the event waits on that Stripe object and runs again when
// anything is posted for it.
type waitFor string

func (w waitFor) Error() string { return "waiting for " + string(w) }

// applyBatchSize is how many pending events one transaction applies at most, so that a
// commit serves many.
const applyBatchSize = 100

// ApplyEvent applies a stored event exactly once: its effect and its applied_at are written in
// one transaction, under a lock on the event row. An event that waits for another is parked
// and applied when that one is. It is the job of an event a batch could not apply.
func (s *Service) ApplyEvent(ctx context.Context, id string) error {
	var payload []byte
	var applied bool
	if err := s.DB.QueryRow(ctx, `SELECT applied_at IS NOT NULL, CASE WHEN applied_at IS NULL THEN payload END
		FROM stripe_events WHERE id = $1`, id).Scan(&applied, &payload); err != nil {
		return wrapNotFound(err, "stripe event "+id)
	}
	if applied {
		return nil
	}
	ev, err := decodeEvent(id, payload)
	if err != nil {
		return err // kept and retried: the event is not lost to a decoder that cannot read it yet
	}
	// Facts fetched from Stripe, before any lock is taken.
	if err := s.gather(ctx, ev, true); err != nil {
		return err
	}
	var failure error
	found := make(map[accountKey]int64)
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var appliedAt *time.Time
		if err := tx.QueryRow(ctx, `SELECT applied_at FROM stripe_events WHERE id = $1 FOR UPDATE`, id).Scan(&appliedAt); err != nil {
			return dbError(err)
		}
		if appliedAt != nil {
			return nil
		}
		touched, ok, f, err := s.applyInSavepoint(ctx, tx, ev, found)
		if err != nil || f != nil {
			failure = f
			return err
		}
		if ok {
			if err := markApplied(ctx, tx, []*event{ev}); err != nil {
				return err
			}
		}
		return s.wake(ctx, tx, touched)
	})
	if err != nil {
		return err
	}
	s.accounts.add(found)
	return failure
}

// applyBatch applies up to applyBatchSize pending events in one transaction and returns how
// many it took: the payments first, posted together, then the others one by one, the oldest
// first, each under a savepoint. Should posting the payments together fail, they are posted
// one by one too. An event that fails is rolled back and handed to a job of its own
// (ApplyEventArgs), which retries it with backoff and keeps its error for the operator; so is
// one that needs something fetched from Stripe, or that does not decode.
func (s *Service) applyBatch(ctx context.Context) (int, error) {
	var n int
	found := make(map[accountKey]int64)
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		batch, alone, err := s.claimPending(ctx, tx, applyBatchSize)
		if err != nil {
			return err
		}
		n = len(batch) + len(alone)
		var done []*event
		var touched []string
		var payments []*event
		var rest []*event
		for _, ev := range batch {
			if ev.pay != nil && ev.pay.showID != 0 { // one naming no show fails alone
				payments = append(payments, ev)
			} else {
				rest = append(rest, ev)
			}
		}
		if len(payments) > 0 {
			ok, err := s.postPaymentsInSavepoint(ctx, tx, payments, found)
			if err != nil {
				return err
			}
			if ok {
				for _, ev := range payments {
					done, touched = append(done, ev), append(touched, ev.pay.facts.ChargeID)
				}
			} else {
				rest = append(payments, rest...)
			}
		}
		for _, ev := range rest {
			t, ok, failure, err := s.applyInSavepoint(ctx, tx, ev, found)
			if err != nil {
				return err
			}
			switch {
			case failure != nil:
				s.Log.ErrorContext(ctx, "stripe event failed in a batch: left to a job of its own",
					slog.String("event_id", ev.ID), slog.Any("error", failure))
				alone = append(alone, ev.ID)
			case ok:
				done = append(done, ev)
				touched = append(touched, t...)
			}
		}
		if err := markApplied(ctx, tx, done); err != nil {
			return err
		}
		if err := s.enqueueAlone(ctx, tx, alone); err != nil {
			return err
		}
		return s.wake(ctx, tx, touched)
	})
	if err != nil {
		return 0, fmt.Errorf("apply pending stripe events: %w", err)
	}
	s.accounts.add(found)
	return n, nil
}

// markApplied records events as applied, those of types Fanseed does not handle as ignored.
func markApplied(ctx context.Context, tx pgx.Tx, events []*event) error {
	if len(events) == 0 {
		return nil
	}
	ids, ignored := make([]string, len(events)), make([]bool, len(events))
	for i, ev := range events {
		ids[i], ignored[i] = ev.ID, !ev.handled()
	}
	_, err := tx.Exec(ctx, `UPDATE stripe_events e SET applied_at = now(), ignored = t.ignored
		FROM unnest($1::text[], $2::bool[]) AS t(id, ignored) WHERE e.id = t.id`, ids, ignored)
	return dbError(err)
}

// postPaymentsInSavepoint posts a batch's payments together under a savepoint; it reports
// false, the savepoint rolled back, if that failed. err is an error that ends the transaction.
func (s *Service) postPaymentsInSavepoint(ctx context.Context, tx pgx.Tx, events []*event, found map[accountKey]int64) (bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	payments := make([]*incoming, len(events))
	for i, ev := range events {
		payments[i] = ev.pay
	}
	accounts := &accountLookup{known: &s.accounts}
	if failure := s.postPayments(ctx, sp, payments, accounts); failure != nil {
		s.Log.ErrorContext(ctx, "stripe payments failed together: applied one by one", slog.Int("payments", len(payments)),
			slog.Any("error", failure))
		return false, sp.Rollback(ctx)
	}
	if err := sp.Commit(ctx); err != nil {
		return false, err
	}
	maps.Copy(found, accounts.found)
	return true, nil
}

// claimPending locks up to n pending events that no other transaction has locked, the
// oldest first, leaving out those waiting for another and those handed to a job of their own
// (which applies them, or has given up on them). It returns the ones to apply, decoded and
// with their facts, and the ids of those to hand to a job of their own: they do not decode, or
// need something fetched from Stripe.
func (s *Service) claimPending(ctx context.Context, tx pgx.Tx, n int) (batch []*event, alone []string, err error) {
	type row struct {
		ID      string `db:"id"`
		Payload []byte `db:"payload"`
	}
	rows, _ := tx.Query(ctx, `
		SELECT id, payload FROM stripe_events e
		WHERE applied_at IS NULL AND alone_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM stripe_event_waits w WHERE w.event_id = e.id)
		ORDER BY created LIMIT $1
		FOR UPDATE OF e SKIP LOCKED`, n)
	claimed, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
	if err != nil {
		return nil, nil, fmt.Errorf("claim pending stripe events: %w", dbError(err))
	}
	for _, c := range claimed {
		ev, err := decodeEvent(c.ID, c.Payload)
		if err == nil {
			err = s.gather(ctx, ev, false)
		}
		if err != nil {
			if !errors.Is(err, errFetchLater) {
				s.Log.ErrorContext(ctx, "stripe event does not decode: left to a job of its own", slog.String("event_id", c.ID),
					slog.Any("error", err))
			}
			alone = append(alone, c.ID)
			continue
		}
		batch = append(batch, ev)
	}
	return batch, alone, nil
}

// applyInSavepoint applies one event under a savepoint and reports the Stripe objects it
// posted for and whether it was applied (not parked to wait). failure is the event's own
// error, its savepoint rolled back; err is an error that ends the transaction. The ledger
// accounts it found are added to found.
func (s *Service) applyInSavepoint(ctx context.Context, tx pgx.Tx, ev *event, found map[accountKey]int64) (
	touched []string, applied bool, failure, err error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, false, nil, err
	}
	accounts := &accountLookup{known: &s.accounts}
	touched, failure = s.apply(ctx, sp, ev, accounts)
	applied = true
	var wait waitFor
	if errors.As(failure, &wait) {
		touched, applied = nil, false
		_, failure = sp.Exec(ctx, `INSERT INTO stripe_event_waits (event_id, object_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, ev.ID, string(wait))
		failure = dbError(failure)
	}
	if failure != nil {
		if err := sp.Rollback(ctx); err != nil {
			return nil, false, nil, err
		}
		return nil, false, fmt.Errorf("apply %s %s: %w", ev.Type, ev.ID, failure), nil
	}
	if err := sp.Commit(ctx); err != nil {
		return nil, false, nil, err
	}
	maps.Copy(found, accounts.found)
	return touched, applied, nil, nil
}

// apply makes an event's effect and returns the Stripe objects it posted for, whose waiting
// events are then woken. One function per state change; each reads the typed object decoded
// once.
func (s *Service) apply(ctx context.Context, tx pgx.Tx, ev *event, accounts *accountLookup) ([]string, error) {
	switch {
	case ev.pay != nil:
		if err := s.postPayments(ctx, tx, []*incoming{ev.pay}, accounts); err != nil {
			return nil, err
		}
		return []string{ev.pay.facts.ChargeID}, nil
	case ev.session != nil:
		return s.applySession(ctx, tx, ev)
	case ev.invoice != nil:
		return nil, nil // not a Fanseed subscription, or nothing paid
	case ev.charge != nil:
		return s.applyChargeRefunded(ctx, tx, ev)
	case ev.refund != nil:
		return s.applyRefundEvent(ctx, tx, ev)
	case ev.dispute != nil:
		return s.applyDispute(ctx, tx, ev)
	case ev.subscription != nil:
		return s.applySubscriptionDeleted(ctx, tx, ev)
	case ev.account != nil:
		return nil, applyAccountUpdated(ctx, tx, ev)
	case ev.transfer != nil:
		return s.applyTransferReversed(ctx, tx, ev)
	case ev.payout != nil:
		return nil, applyConnectedPayout(ctx, tx, ev)
	case ev.paymentIntent != nil:
		return nil, nil // not a pledge's, or not succeeded
	}
	return nil, nil // ignored: markApplied records it so
}
