package billing

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stripe/stripe-go/v76"
)

// CampaignQueue is the River queue of closing campaigns and charging their pledges.
const CampaignQueue = "campaigns"

// campaignSweepEvery is how often live campaigns past their deadline are closed (should the
// job scheduled at the deadline be lost) and pledges waiting too long are dropped.
const campaignSweepEvery = time.Minute

// CloseCampaignArgs is the job that closes a campaign at its deadline.
type CloseCampaignArgs struct {
	CampaignID int64 `json:"campaign_id"`
}

// Kind names the job in River.
func (CloseCampaignArgs) Kind() string { return "campaign_close" }

// InsertOpts puts the job on the campaign queue.
func (CloseCampaignArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: CampaignQueue, MaxAttempts: 25}
}

type closeCampaignWorker struct {
	river.WorkerDefaults[CloseCampaignArgs]
	svc *Service
}

// Work closes the campaign once the service's clock has reached its deadline; a job that
// starts early (a clock behind the database's) waits until then.
func (w *closeCampaignWorker) Work(ctx context.Context, job *river.Job[CloseCampaignArgs]) error {
	wait, err := w.svc.CloseCampaign(ctx, job.Args.CampaignID)
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	return nil
}

// CloseCampaign closes a live campaign whose deadline has passed, by the service's clock, and
// returns how long to wait when it has not. A campaign that met its goal (or keeps what it
// raises) succeeds and each standing pledge gets a job that charges it; an all-or-nothing
// campaign short of its goal fails: nobody is charged and every saved payment method is
// detached. Pledges whose checkout never completed are cancelled.
func (s *Service) CloseCampaign(ctx context.Context, id int64) (time.Duration, error) {
	var wait time.Duration
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		c, err := findCampaign(ctx, tx, id, true) // pledges wait: they lock it shared
		if err != nil {
			return err
		}
		if c.Status != CampaignLive {
			return nil // closed before, or cancelled
		}
		now := s.now()
		if now.Before(c.Deadline) {
			wait = c.Deadline.Sub(now)
			return nil
		}
		var pledged int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM pledges WHERE campaign_id = $1 AND status = 'active'`,
			id).Scan(&pledged); err != nil {
			return dbError(err)
		}
		rows, _ := tx.Query(ctx, `SELECT `+pledgeColumns+` FROM pledges WHERE campaign_id = $1 AND status = 'pending' FOR UPDATE`, id)
		pending, err := pgx.CollectRows(rows, pgx.RowToStructByName[Pledge])
		if err != nil {
			return dbError(err)
		}
		for _, p := range pending {
			if _, err := s.endPledge(ctx, tx, p, PledgeCancelled, "The checkout was not completed before the deadline."); err != nil {
				return err
			}
		}
		status, next := CampaignSucceeded, PledgeCharging
		if c.AllOrNothing && pledged < c.Goal {
			status, next = CampaignFailed, PledgeReleased
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, closed_at = $3 WHERE id = $1`, id, status, now); err != nil {
			return dbError(err)
		}
		rows, _ = tx.Query(ctx, `UPDATE pledges SET status = $2, updated_at = now() WHERE campaign_id = $1 AND status = 'active'
			RETURNING id`, id, next)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return dbError(err)
		}
		jobs := make([]river.InsertManyParams, len(ids))
		for i, pid := range ids {
			if status == CampaignSucceeded {
				jobs[i] = river.InsertManyParams{Args: ChargePledgeArgs{PledgeID: pid}}
			} else {
				jobs[i] = river.InsertManyParams{Args: DetachPledgeArgs{PledgeID: pid}}
			}
		}
		if len(jobs) > 0 {
			if _, err := s.Jobs.InsertManyTx(ctx, tx, jobs); err != nil {
				return fmt.Errorf("enqueue pledges of campaign %d: %w", id, err)
			}
		}
		s.Log.InfoContext(ctx, "campaign closed", slog.Int64("campaign_id", id), slog.String("status", status),
			slog.Int64("pledged", pledged), slog.Int64("goal", c.Goal), slog.Int("pledges", len(ids)))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("close campaign %d: %w", id, err)
	}
	return wait, nil
}

// ChargePledgeArgs is the job that charges one pledge of a campaign that succeeded.
type ChargePledgeArgs struct {
	PledgeID int64 `json:"pledge_id"`
}

// Kind names the job in River.
func (ChargePledgeArgs) Kind() string { return "pledge_charge" }

// InsertOpts puts the job on the campaign queue, retried while Stripe is unreachable.
func (ChargePledgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: CampaignQueue, MaxAttempts: 20}
}

type chargePledgeWorker struct {
	river.WorkerDefaults[ChargePledgeArgs]
	svc *Service
}

func (w *chargePledgeWorker) Work(ctx context.Context, job *river.Job[ChargePledgeArgs]) error {
	return w.svc.ChargePledge(ctx, job.Args.PledgeID)
}

// PledgeChargeKey is the idempotency key of a pledge's off-session charge: however often the
// job runs, Stripe makes one payment intent.
func PledgeChargeKey(pledgeID int64) string {
	return "pledge_charge:" + strconv.FormatInt(pledgeID, 10)
}

// ChargePledge charges a pledge off-session, once (the pledge must be charging and its campaign
// succeeded), and posts the charge to the ledger split by the campaign's plan, through the
// same postPayments that posts every payment. A bank that asks for authentication, or a
// declined card, leaves the pledge needing the backer's action: they are emailed a link to pay
// on-session.
func (s *Service) ChargePledge(ctx context.Context, id int64) error {
	p, err := FindPledge(ctx, s.DB, id)
	if err != nil {
		return err
	}
	if p.Status != PledgeCharging {
		return nil
	}
	c, err := FindCampaign(ctx, s.DB, p.CampaignID)
	if err != nil {
		return err
	}
	if c.Status != CampaignSucceeded {
		return river.JobCancel(fmt.Errorf("%w: pledge %d of a %s campaign is never charged", ErrInvalid, id, c.Status))
	}
	md := map[string]string{MetaKind: KindPledge, MetaPledgeID: strconv.FormatInt(p.ID, 10),
		MetaCampaignID: strconv.FormatInt(c.ID, 10), MetaShowID: strconv.FormatInt(c.ShowID, 10)}
	var res offSessionResult
	if s.Stripe == nil {
		res = offlineCharge(p, s.now())
	} else if res, err = s.Stripe.chargeOffSession(ctx, PledgeChargeKey(p.ID), deref(p.CustomerID), deref(p.PaymentMethodID),
		p.Amount, p.Currency, md); err != nil {
		return err
	}
	piID := ""
	if res.intent != nil {
		piID = res.intent.ID
	}
	if res.declined != "" {
		_, err := s.DB.Exec(ctx, `UPDATE pledges SET status = 'needs_action', needs_action_since = $2, failure = $3,
				payment_intent_id = coalesce(NULLIF($4, ''), payment_intent_id), updated_at = now()
			WHERE id = $1 AND status = 'charging'`, p.ID, s.now(), strings.TrimSpace(res.code+": "+res.declined), piID)
		if err != nil {
			return fmt.Errorf("pledge %d: %w", p.ID, dbError(err))
		}
		s.Log.InfoContext(ctx, "pledge needs the backer", slog.Int64("pledge_id", p.ID), slog.String("code", res.code))
		return nil
	}
	pay := pledgeIncoming("", md, res.intent.LatestCharge, piID)
	f, ok := factsOf(pay.charge)
	if !ok {
		ch, err := s.Stripe.chargeOfPaymentIntent(ctx, piID)
		if err != nil {
			return err
		}
		if f, ok = factsOf(ch); !ok {
			return fmt.Errorf("%w: charge of pledge %d has no balance transaction", ErrStripe, p.ID)
		}
	}
	pay.facts = f
	return s.postPledge(ctx, pay)
}

// postPledge posts a pledge's charge and marks it collected, as an event's payment is posted.
func (s *Service) postPledge(ctx context.Context, pay *incoming) error {
	found := make(map[accountKey]int64)
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		accounts := &accountLookup{known: &s.accounts}
		if err := s.postPayments(ctx, tx, []*incoming{pay}, accounts); err != nil {
			return err
		}
		maps.Copy(found, accounts.found)
		return s.wake(ctx, tx, []string{pay.facts.ChargeID})
	})
	if err != nil {
		return fmt.Errorf("post pledge %d: %w", pay.pledgeID, err)
	}
	s.accounts.add(found)
	return nil
}

// Offline test cards: the test checkout page saves one of these, and the off-session charge
// of a pledge behaves as Stripe's test card of the same number would.
const (
	TestCardSucceeds     = "4242424242424242"
	TestCardAuthenticate = "4000002760003184" // the bank asks for authentication off-session
	TestCardDeclined     = "4000000000000341" // saved, then declined when charged
)

// testPaymentMethod is the id offline test mode gives a saved test card.
func testPaymentMethod(card, suffix string) string {
	switch card {
	case TestCardAuthenticate:
		return "pm_test_fanseed_authenticate_" + suffix
	case TestCardDeclined:
		return "pm_test_fanseed_declined_" + suffix
	}
	return "pm_test_fanseed_ok_" + suffix
}

// offlineCharge is what Stripe would answer for a pledge's off-session charge in offline test
// mode: its test card decides.
func offlineCharge(p Pledge, now time.Time) offSessionResult {
	pm := deref(p.PaymentMethodID)
	pi := &stripe.PaymentIntent{ID: "pi_test_fanseed_pledge_" + strconv.FormatInt(p.ID, 10)}
	switch {
	case strings.HasPrefix(pm, "pm_test_fanseed_authenticate_"):
		return offSessionResult{intent: pi, code: string(stripe.ErrorCodeAuthenticationRequired),
			declined: "Your card was declined. This transaction requires authentication."}
	case strings.HasPrefix(pm, "pm_test_fanseed_declined_"):
		return offSessionResult{intent: pi, code: string(stripe.ErrorCodeCardDeclined), declined: "Your card was declined."}
	}
	cur := stripe.Currency(strings.ToLower(p.Currency))
	pi.LatestCharge = &stripe.Charge{ID: "ch_test_fanseed_pledge_" + strconv.FormatInt(p.ID, 10), Amount: p.Amount, Currency: cur,
		Created: now.Unix(), BalanceTransaction: &stripe.BalanceTransaction{ID: "txn_test_fanseed_pledge_" + strconv.FormatInt(p.ID, 10),
			Amount: p.Amount, Fee: TestFee(p.Amount, p.Currency), Currency: cur, Created: now.Unix()}}
	pi.Status = stripe.PaymentIntentStatusSucceeded
	return offSessionResult{intent: pi}
}

// DetachPledgeArgs is the job that detaches a pledge's saved payment method once it will
// never be charged.
type DetachPledgeArgs struct {
	PledgeID int64 `json:"pledge_id"`
}

// Kind names the job in River.
func (DetachPledgeArgs) Kind() string { return "pledge_detach" }

// InsertOpts puts the job on the campaign queue.
func (DetachPledgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: CampaignQueue, MaxAttempts: 20}
}

type detachPledgeWorker struct {
	river.WorkerDefaults[DetachPledgeArgs]
	svc *Service
}

func (w *detachPledgeWorker) Work(ctx context.Context, job *river.Job[DetachPledgeArgs]) error {
	s := w.svc
	p, err := FindPledge(ctx, s.DB, job.Args.PledgeID)
	if err != nil || p.DetachedAt != nil {
		return err
	}
	if p.Status == PledgeCharging || p.Status == PledgeActive || p.Status == PledgeNeedsAction {
		return nil // it may still be charged
	}
	if s.Stripe != nil && p.PaymentMethodID != nil {
		if err := s.Stripe.detachPaymentMethod(ctx, *p.PaymentMethodID); err != nil {
			return err
		}
	}
	_, err = s.DB.Exec(ctx, `UPDATE pledges SET detached_at = now() WHERE id = $1`, p.ID)
	return dbError(err)
}

// CampaignSweepArgs is the periodic job that closes campaigns past their deadline and drops
// pledges that waited too long.
type CampaignSweepArgs struct{}

// Kind names the job in River.
func (CampaignSweepArgs) Kind() string { return "campaign_sweep" }

// InsertOpts puts the job on the campaign queue.
func (CampaignSweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: CampaignQueue, MaxAttempts: 3}
}

type campaignSweepWorker struct {
	river.WorkerDefaults[CampaignSweepArgs]
	svc *Service
}

func (w *campaignSweepWorker) Work(ctx context.Context, _ *river.Job[CampaignSweepArgs]) error {
	return w.svc.SweepCampaigns(ctx)
}

// SweepCampaigns, by the service's clock: enqueues the close of every live campaign past its
// deadline (closing twice changes nothing), drops pledges that needed the backer for
// NeedsActionFor without being paid, and cancels pledges whose checkout was left unfinished
// for PendingPledgeFor, giving their tiers back.
func (s *Service) SweepCampaigns(ctx context.Context) error {
	now := s.now()
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id FROM campaigns WHERE status = 'live' AND deadline <= $1`, now)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return dbError(err)
		}
		for _, id := range ids {
			if _, err := s.Jobs.InsertTx(ctx, tx, CloseCampaignArgs{CampaignID: id}, nil); err != nil {
				return err
			}
		}
		rows, _ = tx.Query(ctx, `SELECT `+pledgeColumns+` FROM pledges
			WHERE (status = 'needs_action' AND needs_action_since <= $1) OR (status = 'pending' AND created_at <= $2)
			FOR UPDATE SKIP LOCKED`, now.Add(-NeedsActionFor), now.Add(-PendingPledgeFor))
		stale, err := pgx.CollectRows(rows, pgx.RowToStructByName[Pledge])
		if err != nil {
			return dbError(err)
		}
		for _, p := range stale {
			status, why := PledgeDropped, "Not paid within 7 days of the campaign's close."
			if p.Status == PledgePending {
				status, why = PledgeCancelled, "The checkout was not completed."
			}
			if _, err := s.endPledge(ctx, tx, p, status, why); err != nil {
				return err
			}
		}
		return nil
	})
}

// campaignWorkers adds the campaign jobs' workers.
func (s *Service) campaignWorkers(workers *river.Workers) error {
	if err := river.AddWorkerSafely(workers, &closeCampaignWorker{svc: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(workers, &chargePledgeWorker{svc: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(workers, &detachPledgeWorker{svc: s}); err != nil {
		return err
	}
	return river.AddWorkerSafely(workers, &campaignSweepWorker{svc: s})
}

// CancelCampaign cancels a draft, or a live campaign before its deadline: nobody is charged,
// every pledge is cancelled and its saved payment method detached.
func (s *Service) CancelCampaign(ctx context.Context, id int64) error {
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		c, err := findCampaign(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if c.Status != CampaignDraft && c.Status != CampaignLive {
			return fmt.Errorf("%w: a %s campaign cannot be cancelled; a succeeded one can be refunded", ErrConflict, c.Status)
		}
		if c.Status == CampaignLive && !s.now().Before(c.Deadline) {
			return fmt.Errorf("%w: the deadline has passed: the campaign is closing", ErrConflict)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = 'cancelled', closed_at = $2 WHERE id = $1`, id, s.now()); err != nil {
			return dbError(err)
		}
		rows, _ := tx.Query(ctx, `SELECT `+pledgeColumns+` FROM pledges WHERE campaign_id = $1 AND status IN ('pending', 'active')
			FOR UPDATE`, id)
		list, err := pgx.CollectRows(rows, pgx.RowToStructByName[Pledge])
		if err != nil {
			return dbError(err)
		}
		for _, p := range list {
			if _, err := s.endPledge(ctx, tx, p, PledgeCancelled, "The campaign was cancelled: nobody was charged."); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cancel campaign %d: %w", id, err)
	}
	return nil
}

// RefundCampaign refunds every charged pledge of a campaign that succeeded, each through an
// operator refund request (kept before Stripe is called, sent under its idempotency key); the
// ledger reverses each split when Stripe's refund event arrives, as for any payment. It returns
// how many refunds it asked for; running it again asks only for what is left.
func (s *Service) RefundCampaign(ctx context.Context, id int64, by string, deliver func(ctx context.Context, payload []byte) error) (int, error) {
	c, err := FindCampaign(ctx, s.DB, id)
	if err != nil {
		return 0, err
	}
	if c.Status != CampaignSucceeded {
		return 0, fmt.Errorf("%w: only a campaign that succeeded has charges to refund; this one is %s", ErrConflict, c.Status)
	}
	if _, err := s.DB.Exec(ctx, `UPDATE campaigns SET refunded_at = coalesce(refunded_at, now()) WHERE id = $1`, id); err != nil {
		return 0, dbError(err)
	}
	rows, _ := s.DB.Query(ctx, `SELECT charge_id FROM pledges p WHERE campaign_id = $1 AND status = 'collected'
		AND NOT EXISTS (SELECT 1 FROM refund_requests r WHERE r.charge_id = p.charge_id AND r.status IN ('pending', 'sent'))`, id)
	charges, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, dbError(err)
	}
	for i, ch := range charges {
		if _, err := s.RequestRefund(ctx, RefundAsk{Charge: ch, Reason: "Campaign " + strconv.FormatInt(id, 10) + " refunded", By: by},
			deliver); err != nil {
			return i, err
		}
	}
	return len(charges), nil
}
