package billing

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stripe/stripe-go/v76"
)

// incoming is money an event says Stripe received for Fanseed: a one-off donation or deal paid
// through Checkout, or a monthly donation's invoice paid. Whichever path applies the event (a
// batch of many or a job of its own), postPayments posts it.
type incoming struct {
	eventID       string
	showID        int64
	source, what  string
	donationID    int64 // the donation it pays, marked paid; 0 for a renewal
	sponsorshipID int64 // the deal it pays, marked paid
	pledgeID      int64 // the pledge it collects, split by its campaign's plan
	planID        int64 // set by postPayments for a pledge: the plan its campaign pinned
	charge        *stripe.Charge
	paymentIntent string
	facts         chargeFacts // gathered
}

// incomingOf is the payment an event posts, or nil: a payment-mode session paid, or an
// invoice paid, with Fanseed's metadata.
func incomingOf(ev *event) *incoming {
	switch {
	case ev.session != nil && ev.Type != "checkout.session.async_payment_failed":
		sess := ev.session
		if sess.Mode != stripe.CheckoutSessionModePayment || sess.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid ||
			sess.PaymentIntent == nil {
			return nil
		}
		md := sess.Metadata
		pay := &incoming{eventID: ev.ID, showID: metaInt(md, MetaShowID), charge: sess.PaymentIntent.LatestCharge,
			paymentIntent: sess.PaymentIntent.ID}
		switch md[MetaKind] {
		case KindDonation:
			pay.source, pay.what, pay.donationID = SourceDonations, "Donation", metaInt(md, MetaDonationID)
		case KindSponsorship:
			pay.source, pay.what, pay.sponsorshipID = SourceSponsorship, "Sponsorship", metaInt(md, MetaSponsorshipID)
		case KindPledge: // a pledge paid on-session after its off-session charge needed the backer
			return pledgeIncoming(ev.ID, md, sess.PaymentIntent.LatestCharge, sess.PaymentIntent.ID)
		default:
			return nil // not Fanseed's
		}
		return pay
	case ev.paymentIntent != nil:
		pi := ev.paymentIntent
		if pi.Status != stripe.PaymentIntentStatusSucceeded || pi.Metadata[MetaKind] != KindPledge {
			return nil
		}
		return pledgeIncoming(ev.ID, pi.Metadata, pi.LatestCharge, pi.ID)
	case ev.invoice != nil:
		inv := ev.invoice
		if inv.AmountPaid <= 0 || inv.SubscriptionDetails == nil || inv.SubscriptionDetails.Metadata[MetaShowID] == "" {
			return nil // nothing paid, or not a Fanseed subscription
		}
		pay := &incoming{eventID: ev.ID, showID: metaInt(inv.SubscriptionDetails.Metadata, MetaShowID),
			source: SourceDonations, what: "Monthly donation", charge: inv.Charge}
		if inv.PaymentIntent != nil {
			pay.paymentIntent = inv.PaymentIntent.ID
		}
		return pay
	}
	return nil
}

// postPayments posts payments, each split by the show's plan in force when its charge was
// made, and marks the donations and deals they pay as paid: in a few statements for them all.
// Events about the same charge post it once. Each charge is locked (serialising the events
// about it) and each show's plans are locked shared (CreatePlan locks them exclusively), so
// a plan made meanwhile never re-splits a payment.
func (s *Service) postPayments(ctx context.Context, tx pgx.Tx, payments []*incoming, accounts *accountLookup) error {
	n := len(payments)
	for _, p := range payments {
		if p.pledgeID != 0 && p.planID == 0 {
			if err := tx.QueryRow(ctx, `SELECT c.show_id, c.share_plan_id FROM pledges p JOIN campaigns c ON c.id = p.campaign_id
				WHERE p.id = $1 AND c.share_plan_id IS NOT NULL`, p.pledgeID).Scan(&p.showID, &p.planID); err != nil {
				return river.JobCancel(wrapNotFound(err, fmt.Sprintf("pledge %d of event %s", p.pledgeID, p.eventID)))
			}
		}
	}
	locks := make([]int64, 0, n)
	planLocks := make([]int64, 0, n)
	shows, sources, ats := make([]int64, n), make([]string, n), make([]time.Time, n)
	for i, p := range payments {
		if p.showID == 0 { // never to be posted: the job gives up at once, the event stays for the operator
			return river.JobCancel(fmt.Errorf("%w: %s event %s names no show", ErrInvalid, p.what, p.eventID))
		}
		locks = append(locks, objectKey(p.facts.ChargeID))
		planLocks = append(planLocks, planLockKey(p.showID))
		shows[i], sources[i], ats[i] = p.showID, p.source, p.facts.At
	}
	slices.Sort(locks) // the same order in every transaction
	slices.Sort(planLocks)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, slices.Compact(locks)); err != nil {
		return dbError(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(k) FROM unnest($1::bigint[]) AS k`, slices.Compact(planLocks)); err != nil {
		return dbError(err)
	}
	rows, _ := tx.Query(ctx, `SELECT `+planInForce+`
		FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS t(show, src, at, i)
		ORDER BY t.i`, shows, sources, ats)
	planIDs, err := pgx.CollectRows(rows, pgx.RowTo[*int64])
	if err != nil || len(planIDs) != n {
		return fmt.Errorf("plans of %d payments: %w", n, dbError(err))
	}
	var entries []Entry
	posted := make(map[string]bool, n)
	var paid []paidMark
	for i, p := range payments {
		if p.planID != 0 {
			planIDs[i] = &p.planID
		}
		if planIDs[i] == nil {
			return fmt.Errorf("%w: show %d has no share plan for %s in force at %s: create one, then retry the event",
				ErrNotFound, p.showID, p.source, p.facts.At.Format(time.RFC3339))
		}
		plan, ok := s.plans.get(*planIDs[i])
		if !ok {
			if plan, err = findPlan(ctx, tx, *planIDs[i]); err != nil {
				return err
			}
			s.plans.add(map[int64]Plan{plan.ID: plan})
		}
		f := p.facts
		e, err := paymentEntry(ctx, tx, Payment{
			Gross: f.Gross, Fee: f.Fee, Currency: f.Currency, OccurredAt: f.At, Source: p.source,
			IdempotencyKey: "payment:" + f.ChargeID, StripeObjectID: f.ChargeID, StripeEventID: p.eventID,
			Description: p.what,
		}, plan, accounts)
		if err != nil {
			return err
		}
		if !posted[e.IdempotencyKey] { // another event about the same charge
			posted[e.IdempotencyKey] = true
			entries = append(entries, e)
		}
		paid = append(paid, paidMark{donation: p.donationID, sponsorship: p.sponsorshipID, pledge: p.pledgeID,
			charge: f.ChargeID, paymentIntent: p.paymentIntent, at: f.At})
	}
	if _, err := postMany(ctx, tx, entries); err != nil {
		return err
	}
	return markPaid(ctx, tx, paid)
}

// paidMark is a donation or deal (one of the two ids set, or neither) paid by a charge.
type paidMark struct {
	donation, sponsorship, pledge int64
	charge, paymentIntent         string
	at                            time.Time
}

// markPaid marks donations and deals paid by their charges; the first mark of each counts. A
// cancelled monthly donation is not a one-off payment and keeps its state.
func markPaid(ctx context.Context, tx pgx.Tx, marks []paidMark) error {
	var donations, sponsorships []int64
	var dCharges, sCharges []string
	var dTimes, sTimes []time.Time
	for _, m := range marks {
		if m.donation != 0 {
			donations, dCharges, dTimes = append(donations, m.donation), append(dCharges, m.charge), append(dTimes, m.at)
		}
		if m.sponsorship != 0 {
			sponsorships, sCharges, sTimes = append(sponsorships, m.sponsorship), append(sCharges, m.charge), append(sTimes, m.at)
		}
	}
	if len(donations) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE donations d SET status = 'paid', charge_id = t.ch, paid_at = t.at
			FROM (SELECT DISTINCT ON (id) id, ch, at FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
			      WITH ORDINALITY AS u(id, ch, at, i) ORDER BY id, i) t
			WHERE d.id = t.id AND d.status IN ('pending', 'failed')`, donations, dCharges, dTimes); err != nil {
			return dbError(err)
		}
	}
	for _, m := range marks {
		if m.pledge == 0 {
			continue
		}
		// Collected from whatever state the close left it in: a pledge dropped and then paid
		// through its old link is collected all the same, the money being in the ledger.
		if _, err := tx.Exec(ctx, `UPDATE pledges SET status = 'collected', charge_id = $2, collected_at = $3,
				payment_intent_id = coalesce(NULLIF($4, ''), payment_intent_id), failure = '', updated_at = now()
			WHERE id = $1 AND status IN ('charging', 'needs_action', 'dropped', 'active')`, m.pledge, m.charge, m.at, m.paymentIntent); err != nil {
			return dbError(err)
		}
	}
	if len(sponsorships) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE sponsorships d SET status = 'paid', charge_id = t.ch, paid_at = t.at, failure = ''
			FROM (SELECT DISTINCT ON (id) id, ch, at FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
			      WITH ORDINALITY AS u(id, ch, at, i) ORDER BY id, i) t
			WHERE d.id = t.id AND d.status IN ('offered', 'cancelled')`, sponsorships, sCharges, sTimes); err != nil {
			return dbError(err)
		}
	}
	return nil
}

// markRefunded marks what a charge paid for as refunded: the payer has all of it back, through
// a refund or a lost dispute.
func markRefunded(ctx context.Context, tx pgx.Tx, chargeID string) error {
	if _, err := tx.Exec(ctx, `UPDATE donations SET status = 'refunded' WHERE charge_id = $1`, chargeID); err != nil {
		return dbError(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE pledges SET status = 'refunded', updated_at = now() WHERE charge_id = $1 AND status = 'collected'`, chargeID); err != nil {
		return dbError(err)
	}
	_, err := tx.Exec(ctx, `UPDATE sponsorships SET status = 'refunded' WHERE charge_id = $1`, chargeID)
	return dbError(err)
}

// unmarkRefunded undoes markRefunded when a refund failed: the payer did not get the money back.
func unmarkRefunded(ctx context.Context, tx pgx.Tx, chargeID string) error {
	if _, err := tx.Exec(ctx, `UPDATE donations SET status = 'paid' WHERE charge_id = $1 AND status = 'refunded'`, chargeID); err != nil {
		return dbError(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE pledges SET status = 'collected', updated_at = now() WHERE charge_id = $1 AND status = 'refunded'`, chargeID); err != nil {
		return dbError(err)
	}
	_, err := tx.Exec(ctx, `UPDATE sponsorships SET status = 'paid' WHERE charge_id = $1 AND status = 'refunded'`, chargeID)
	return dbError(err)
}

// applySession applies a Checkout session event that posts no money: a subscription started
// (its money arrives with invoice.paid, the first month's too), or an async payment failed.
func (s *Service) applySession(ctx context.Context, tx pgx.Tx, ev *event) ([]string, error) {
	sess := ev.session
	md := sess.Metadata
	donationID, sponsorshipID := metaInt(md, MetaDonationID), metaInt(md, MetaSponsorshipID)
	if ev.Type == "checkout.session.async_payment_failed" {
		if donationID != 0 {
			_, err := tx.Exec(ctx, `UPDATE donations SET status = 'failed' WHERE id = $1 AND status = 'pending'`, donationID)
			return nil, dbError(err)
		}
		if sponsorshipID != 0 {
			// The deal stays offered: the sponsor can pay the link again, another way.
			_, err := tx.Exec(ctx, `UPDATE sponsorships SET failure = $2 WHERE id = $1 AND status = 'offered'`, sponsorshipID,
				"The payment of "+ev.Created.Format("2 Jan 2006")+" failed (the bank did not honour the debit); the link can be paid again.")
			return nil, dbError(err)
		}
		return nil, nil
	}
	if sess.Mode == stripe.CheckoutSessionModeSetup && md[MetaKind] == KindPledge {
		return s.applySetupSession(ctx, tx, ev)
	}
	if sess.Mode != stripe.CheckoutSessionModeSubscription || donationID == 0 || sess.Subscription == nil || sess.Subscription.ID == "" {
		return nil, nil // not paid yet (async payment methods), or not Fanseed's
	}
	sub := sess.Subscription.ID
	// A subscription deleted before this event was applied leaves the donation cancelled.
	_, err := tx.Exec(ctx, `UPDATE donations SET subscription_id = $2, paid_at = coalesce(paid_at, $3),
			status = CASE WHEN status IN ('pending', 'failed') THEN 'paid' ELSE status END
		WHERE id = $1`, donationID, sub, ev.Created)
	if err != nil {
		return nil, dbError(err)
	}
	// A donation whose amount was changed is replaced once the new one is under way.
	_, err = tx.Exec(ctx, `UPDATE donations SET status = 'cancelled'
		WHERE id = (SELECT replaces_donation_id FROM donations WHERE id = $1) AND status IN ('pending', 'paid', 'failed')`, donationID)
	return nil, dbError(err)
}

// applySubscriptionDeleted cancels the monthly donation of a subscription that ended: found by
// the subscription's id, or by the donation id in its metadata when the session that started
// it has not been applied yet (that session then leaves the donation cancelled).
func (s *Service) applySubscriptionDeleted(ctx context.Context, tx pgx.Tx, ev *event) ([]string, error) {
	sub := ev.subscription
	_, err := tx.Exec(ctx, `UPDATE donations SET status = 'cancelled', subscription_id = coalesce(subscription_id, $1)
		WHERE (subscription_id = $1 OR (id = $2 AND monthly)) AND status IN ('pending', 'paid', 'failed')`,
		sub.ID, metaInt(sub.Metadata, MetaDonationID))
	return nil, dbError(err)
}

// planInForce picks, for each row of t(show, src, at), the plan that split money of a source
// received at that time: among the plans that existed then (made at or before it), the latest
// effective at or before it, the source's own before one for all sources; if the show had no
// plan at all then, the same among the plans made since (the first plan covers money received
// before it). So a plan made later with an earlier effective time never re-splits money that
// Stripe received under another plan.
const planInForce = `coalesce(
	(SELECT p.id FROM share_plans p
	 WHERE p.show_id = t.show AND p.source IN (t.src, 'all') AND p.effective_at <= t.at AND p.created_at <= t.at
	 ORDER BY p.source = t.src DESC, p.effective_at DESC, p.id DESC LIMIT 1),
	(SELECT p.id FROM share_plans p
	 WHERE p.show_id = t.show AND p.source IN (t.src, 'all') AND p.effective_at <= t.at
	   AND NOT EXISTS (SELECT 1 FROM share_plans q WHERE q.show_id = t.show AND q.source <> 'campaigns' AND q.created_at <= t.at)
	 ORDER BY p.source = t.src DESC, p.effective_at DESC, p.id DESC LIMIT 1))`

// planLockKey is the advisory lock key of a show's share plans.
func planLockKey(showID int64) int64 {
	return objectKey("share_plans:" + strconv.FormatInt(showID, 10))
}
