package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stripe/stripe-go/v76"
)

// StoreEvent stores a verified Stripe event under its unique id, durably (one committed
// statement), and reports whether the event was new. A duplicate changes nothing. The stored
// event is its own queue entry: a new one is applied by a batch job (ApplyPendingArgs), one
// running in this process or else one enqueued here (see kick); one also runs periodically.
func (s *Service) StoreEvent(ctx context.Context, ev stripe.Event, payload []byte) (bool, error) {
	if ev.ID == "" || ev.Type == "" {
		return false, fmt.Errorf("%w: event without id or type", ErrInvalid)
	}
	tag, err := s.DB.Exec(ctx, `
		INSERT INTO stripe_events (id, type, api_version, livemode, created, payload)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		ev.ID, string(ev.Type), ev.APIVersion, ev.Livemode, time.Unix(ev.Created, 0), payload)
	if err != nil {
		return false, fmt.Errorf("store stripe event %s: %w", ev.ID, dbError(err))
	}
	fresh := tag.RowsAffected() == 1
	if fresh {
		s.kick(ctx)
	}
	return fresh, nil
}

// kickEvery bounds how long an enqueued batch job is counted on to start: one worked by
// another process does not tell this one when it starts.
const kickEvery = 20 * time.Millisecond

// batchJobFor is how long a batch job goes on applying before it hands over to a new one,
// well within River's job timeout.
const batchJobFor = 10 * time.Second

// batchJobs is what a process knows of its batch jobs, so that storing an event enqueues
// one only when none is running here (and none enqueued here has yet to start).
type batchJobs struct {
	mu      sync.Mutex
	workers int       // batch jobs this process works at once; set by NewJobClient
	running int       // batch jobs working in this process
	stored  bool      // an event was stored while one was running: they go on
	kicked  time.Time // when a job not yet started was enqueued here; zero for none
}

// kick has a batch job apply an event just stored: a running one, or one enqueued now. If
// the insert fails, the periodic job applies the event.
func (s *Service) kick(ctx context.Context) {
	b := &s.batches
	b.mu.Lock()
	if b.running > 0 {
		b.stored = true
		b.mu.Unlock()
		return
	}
	if !b.kicked.IsZero() && time.Since(b.kicked) < kickEvery {
		b.mu.Unlock()
		return
	}
	b.kicked = time.Now()
	b.mu.Unlock()
	if _, err := s.Jobs.Insert(ctx, ApplyPendingArgs{}, nil); err != nil {
		b.mu.Lock()
		b.kicked = time.Time{}
		b.mu.Unlock()
		s.Log.WarnContext(ctx, "enqueue stripe event batch", slog.Any("error", err))
	}
}

func (b *batchJobs) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.running++
	b.kicked = time.Time{}
}

// another reports whether a running job that found a backlog is to enqueue another, so
// that up to workers apply it at once, and counts it as enqueued.
func (b *batchJobs) another() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running >= b.workers || (!b.kicked.IsZero() && time.Since(b.kicked) < kickEvery) {
		return false
	}
	b.kicked = time.Now()
	return true
}

// stop ends a job's run, unless an event was stored since its last batch began and it is
// to go on (and take it).
func (b *batchJobs) stop(unlessStored bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if unlessStored && b.stored {
		b.stored = false
		return false
	}
	b.running--
	return true
}

// ApplyPendingArgs is the job that applies pending Stripe events in batches.
type ApplyPendingArgs struct{}

// Kind names the job in River.
func (ApplyPendingArgs) Kind() string { return "stripe_events_pending" }

// InsertOpts puts the job on the stripe batch queue.
func (ApplyPendingArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: BatchQueue, MaxAttempts: 5}
}

// PendingWorker applies pending Stripe events in batches for River.
type PendingWorker struct {
	river.WorkerDefaults[ApplyPendingArgs]
	svc *Service
}

// Work applies batches while they are full or events are stored meanwhile in this process,
// for batchJobFor at most; then another job goes on. Finding a backlog, it enqueues another
// job, up to the batch workers of the process.
func (w *PendingWorker) Work(ctx context.Context, job *river.Job[ApplyPendingArgs]) error {
	s := w.svc
	s.batches.start()
	until := time.Now().Add(batchJobFor)
	for {
		n, err := s.applyBatch(ctx)
		if err != nil {
			s.batches.stop(false)
			return err // retried: what is left is taken then
		}
		if n < applyBatchSize && s.batches.stop(true) {
			return nil
		}
		if n == applyBatchSize && s.batches.another() {
			if _, err := s.Jobs.Insert(ctx, ApplyPendingArgs{}, nil); err != nil {
				s.Log.WarnContext(ctx, "enqueue stripe event batch", slog.Any("error", err))
			}
		}
		if time.Now().After(until) {
			s.batches.stop(false)
			_, err := s.Jobs.Insert(ctx, ApplyPendingArgs{}, nil)
			return err
		}
	}
}

// ApplyEventArgs is the job that applies one stored Stripe event: one a batch could not
// apply, or one woken after waiting for another.
type ApplyEventArgs struct {
	EventID string `json:"event_id"`
}

// Kind names the job in River.
func (ApplyEventArgs) Kind() string { return "stripe_event" }

// InsertOpts puts the job on the stripe queue, with retries.
func (ApplyEventArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: JobQueue, MaxAttempts: 20}
}

// EventWorker applies Stripe events for River.
type EventWorker struct {
	river.WorkerDefaults[ApplyEventArgs]
	svc *Service
}

// Work applies the event; an error makes River retry it with backoff, and is kept on the event
// for the operator (StuckEvents).
func (w *EventWorker) Work(ctx context.Context, job *river.Job[ApplyEventArgs]) error {
	err := w.svc.ApplyEvent(ctx, job.Args.EventID)
	if err != nil {
		msg := strings.ToValidUTF8(fmt.Sprintf("attempt %d: %v", job.Attempt, err), "?")
		if len(msg) > 1000 {
			msg = strings.ToValidUTF8(msg[:1000], "")
		}
		if _, uerr := w.svc.DB.Exec(context.WithoutCancel(ctx), `UPDATE stripe_events SET last_error = $2
			WHERE id = $1 AND applied_at IS NULL`, job.Args.EventID, msg); uerr != nil {
			w.svc.Log.WarnContext(ctx, "record stripe event error", slog.String("event_id", job.Args.EventID), slog.Any("error", uerr))
		}
	}
	return err
}

// waitFor is returned by an event handler that needs something not yet applied, such as the
// payment a refund reverses: the event waits on that Stripe object and runs again when
// anything is posted for it.
type waitFor string

func (w waitFor) Error() string { return "waiting for " + string(w) }

// applyBatchSize is how many pending events one transaction applies at most, so that a
// commit serves many.
const applyBatchSize = 100

// errFetchLater is prefetch's answer, when it may not call Stripe, for an event whose charge
// must be fetched: a batch leaves such an event to a job of its own.
var errFetchLater = errors.New("charge to fetch from Stripe")

// pendingEvent is a stored event to apply, with the facts fetched for it.
type pendingEvent struct {
	ev      stripe.Event
	facts   *chargeFacts
	refunds []refundFact // of a charge.refunded event
	// The platform transfers a connected account's payout.paid or payout.failed carried, as
	// Stripe lists them; nil when not known (offline test mode), and then matched by time.
	transfers []string
}

// pending is an event with what it needs from Stripe: from its payload, else fetched, or
// errFetchLater unless fetch is set.
func (s *Service) pending(ctx context.Context, ev stripe.Event, fetch bool) (pendingEvent, error) {
	pe := pendingEvent{ev: ev}
	var err error
	if pe.facts, err = s.prefetch(ctx, ev, fetch); err != nil {
		return pe, err
	}
	if pe.refunds, err = s.prefetchRefunds(ctx, ev, fetch); err != nil {
		return pe, err
	}
	pe.transfers, err = s.prefetchPayoutTransfers(ctx, ev, fetch)
	return pe, err
}

// refundFact is one refund of a charge and the fee Stripe reports on its balance transaction:
// positive for a fee charged on the refund, negative for part of the payment's fee returned.
type refundFact struct {
	ID      string
	Amount  int64 // in the charge's currency
	Fee     int64 // in the ledger's (settlement) currency
	Created int64
}

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
	var ev stripe.Event
	if err := json.Unmarshal(payload, &ev); err != nil || ev.Data == nil {
		return river.JobCancel(fmt.Errorf("%w: stripe event %s does not parse: %v", ErrInvalid, id, err))
	}
	// Facts fetched from Stripe, before any lock is taken.
	pe, err := s.pending(ctx, ev, true)
	if err != nil {
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
		touched, ok, f, err := s.applyInSavepoint(ctx, tx, pe, found)
		if err != nil || f != nil {
			failure = f
			return err
		}
		if ok {
			if _, err := tx.Exec(ctx, `UPDATE stripe_events SET applied_at = now() WHERE id = $1`, id); err != nil {
				return dbError(err)
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
// (ApplyEventArgs), which retries it with backoff or cancels it; so is one whose charge must
// be fetched from Stripe.
func (s *Service) applyBatch(ctx context.Context) (int, error) {
	var n int
	found := make(map[accountKey]int64)
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		batch, alone, err := s.claimPending(ctx, tx, applyBatchSize)
		if err != nil {
			return err
		}
		n = len(batch) + len(alone)
		var done, touched []string
		payments, rest := splitPayments(batch)
		if len(payments) > 0 {
			ok, err := s.applyPaymentsInSavepoint(ctx, tx, payments, found)
			if err != nil {
				return err
			}
			if ok {
				for _, p := range payments {
					done, touched = append(done, p.ev.ID), append(touched, p.facts.ChargeID)
				}
			} else {
				fallback := make([]pendingEvent, 0, len(batch))
				for _, p := range payments {
					fallback = append(fallback, p.pendingEvent)
				}
				rest = append(fallback, rest...)
			}
		}
		for _, p := range rest {
			t, ok, failure, err := s.applyInSavepoint(ctx, tx, p, found)
			if err != nil {
				return err
			}
			switch {
			case failure != nil:
				s.Log.InfoContext(ctx, "stripe event left to a job of its own", slog.String("event_id", p.ev.ID), slog.Any("error", failure))
				alone = append(alone, p.ev.ID)
			case ok:
				done = append(done, p.ev.ID)
				touched = append(touched, t...)
			}
		}
		if len(done) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE stripe_events SET applied_at = now() WHERE id = ANY($1)`, done); err != nil {
				return dbError(err)
			}
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

// payment is a pending event that only posts a payment (and marks its donation or
// sponsorship paid), which a batch posts together with others.
type payment struct {
	pendingEvent
	showID        int64
	source, what  string
	donationID    int64
	sponsorshipID int64
}

// splitPayments picks out of batch the payments, as apply would post them; the others are
// left in order.
func splitPayments(batch []pendingEvent) (payments []payment, rest []pendingEvent) {
	for _, p := range batch {
		if pay, ok := asPayment(p); ok {
			payments = append(payments, pay)
		} else {
			rest = append(rest, p)
		}
	}
	return payments, rest
}

func asPayment(p pendingEvent) (payment, bool) {
	if p.facts == nil {
		return payment{}, false
	}
	pay := payment{pendingEvent: p}
	switch p.ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(p.ev.Data.Raw, &sess); err != nil || sess.Mode != stripe.CheckoutSessionModePayment {
			return payment{}, false
		}
		md := sess.Metadata
		pay.showID = metaInt(md, MetaShowID)
		switch md[MetaKind] {
		case KindDonation:
			pay.source, pay.what, pay.donationID = SourceDonations, "Donation", metaInt(md, MetaDonationID)
		case KindSponsorship:
			pay.source, pay.what, pay.sponsorshipID = SourceSponsorship, "Sponsorship", metaInt(md, MetaSponsorshipID)
		default:
			return payment{}, false
		}
	case "invoice.paid":
		var inv stripe.Invoice
		if err := json.Unmarshal(p.ev.Data.Raw, &inv); err != nil || inv.SubscriptionDetails == nil {
			return payment{}, false
		}
		pay.showID, pay.source, pay.what = metaInt(inv.SubscriptionDetails.Metadata, MetaShowID), SourceDonations, "Monthly donation"
	default:
		return payment{}, false
	}
	return pay, pay.showID != 0
}

// applyPaymentsInSavepoint posts payments as postCharge and applySessionPaid do one by one,
// in a few statements for them all, under a savepoint; it reports false, the savepoint
// rolled back, if that failed. err is an error that ends the transaction.
func (s *Service) applyPaymentsInSavepoint(ctx context.Context, tx pgx.Tx, payments []payment, found map[accountKey]int64) (bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	accounts := &accountLookup{known: &s.accounts}
	if failure := s.applyPayments(ctx, sp, payments, accounts); failure != nil {
		s.Log.InfoContext(ctx, "stripe payments applied one by one", slog.Int("payments", len(payments)), slog.Any("error", failure))
		return false, sp.Rollback(ctx)
	}
	if err := sp.Commit(ctx); err != nil {
		return false, err
	}
	maps.Copy(found, accounts.found)
	return true, nil
}

func (s *Service) applyPayments(ctx context.Context, tx pgx.Tx, payments []payment, accounts *accountLookup) error {
	n := len(payments)
	locks := make([]int64, 0, n)
	shows, sources, ats := make([]int64, n), make([]string, n), make([]time.Time, n)
	for i, p := range payments {
		locks = append(locks, objectKey(p.facts.ChargeID))
		shows[i], sources[i], ats[i] = p.showID, p.source, p.facts.At
	}
	slices.Sort(locks) // the same order in every transaction
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, slices.Compact(locks)); err != nil {
		return dbError(err)
	}
	// The plan in force for each, picked as PlanAt picks it.
	rows, _ := tx.Query(ctx, `
		SELECT (SELECT p.id FROM share_plans p
		        WHERE p.show_id = t.show AND p.source IN (t.src, 'all') AND p.effective_at <= t.at
		        ORDER BY p.source = t.src DESC, p.effective_at DESC LIMIT 1)
		FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS t(show, src, at, i)
		ORDER BY t.i`, shows, sources, ats)
	planIDs, err := pgx.CollectRows(rows, pgx.RowTo[*int64])
	if err != nil || len(planIDs) != n {
		return fmt.Errorf("plans of %d payments: %w", n, dbError(err))
	}
	var entries []Entry
	posted := make(map[string]bool, n)
	var donations, sponsorships []int64
	var donationCharges, sponsorshipCharges []string
	var donationTimes, sponsorshipTimes []time.Time
	for i, p := range payments {
		if planIDs[i] == nil {
			return fmt.Errorf("%w: no plan for show %d", ErrNotFound, p.showID)
		}
		plan, ok := s.plans.get(*planIDs[i])
		if !ok {
			if plan, err = PlanAt(ctx, tx, p.showID, p.source, p.facts.At); err != nil {
				return err
			}
			s.plans.add(plan)
		}
		f := p.facts
		e, err := paymentEntry(ctx, tx, Payment{
			Gross: f.Gross, Fee: f.Fee, Currency: f.Currency, OccurredAt: f.At, Source: p.source,
			IdempotencyKey: "payment:" + f.ChargeID, StripeObjectID: f.ChargeID, StripeEventID: p.ev.ID,
			Description: p.what,
		}, plan, accounts)
		if err != nil {
			return err
		}
		if !posted[e.IdempotencyKey] { // another event about the same charge
			posted[e.IdempotencyKey] = true
			entries = append(entries, e)
		}
		if p.donationID != 0 {
			donations, donationCharges, donationTimes = append(donations, p.donationID), append(donationCharges, f.ChargeID), append(donationTimes, f.At)
		}
		if p.sponsorshipID != 0 {
			sponsorships, sponsorshipCharges, sponsorshipTimes = append(sponsorships, p.sponsorshipID), append(sponsorshipCharges, f.ChargeID), append(sponsorshipTimes, f.At)
		}
	}
	if _, err := postMany(ctx, tx, entries); err != nil {
		return err
	}
	// The first event about a donation or deal marks it paid, as one by one.
	if len(donations) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE donations d SET status = 'paid', charge_id = t.ch, paid_at = t.at
			FROM (SELECT DISTINCT ON (id) id, ch, at FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
			      WITH ORDINALITY AS u(id, ch, at, i) ORDER BY id, i) t
			WHERE d.id = t.id AND d.status IN ('pending', 'failed')`, donations, donationCharges, donationTimes); err != nil {
			return dbError(err)
		}
	}
	if len(sponsorships) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE sponsorships d SET status = 'paid', charge_id = t.ch, paid_at = t.at, failure = ''
			FROM (SELECT DISTINCT ON (id) id, ch, at FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
			      WITH ORDINALITY AS u(id, ch, at, i) ORDER BY id, i) t
			WHERE d.id = t.id AND d.status IN ('offered', 'cancelled')`, sponsorships, sponsorshipCharges, sponsorshipTimes); err != nil {
			return dbError(err)
		}
	}
	return nil
}

// claimPending locks up to n pending events that no other transaction has locked, the
// oldest first, leaving out those waiting for another and those handed to a job of their own
// (which applies them, or has given up on them). It returns the ones to apply, and the ids of those to hand to
// a job of their own: they do not parse, or their charge must be fetched from Stripe.
func (s *Service) claimPending(ctx context.Context, tx pgx.Tx, n int) (batch []pendingEvent, alone []string, err error) {
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
		var ev stripe.Event
		if err := json.Unmarshal(c.Payload, &ev); err != nil || ev.Data == nil || ev.ID != c.ID {
			alone = append(alone, c.ID)
			continue
		}
		pe, err := s.pending(ctx, ev, false)
		if err != nil {
			alone = append(alone, c.ID)
			continue
		}
		batch = append(batch, pe)
	}
	return batch, alone, nil
}

// applyInSavepoint applies one event of a batch under a savepoint and reports the Stripe
// objects it posted for and whether it was applied (not parked to wait). failure is the
// event's own error, its savepoint rolled back; err is an error that ends the transaction.
// The ledger accounts it found are added to found.
func (s *Service) applyInSavepoint(ctx context.Context, tx pgx.Tx, p pendingEvent, found map[accountKey]int64) (
	touched []string, applied bool, failure, err error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, false, nil, err
	}
	accounts := &accountLookup{known: &s.accounts}
	touched, failure = s.apply(ctx, sp, p, accounts)
	applied = true
	var wait waitFor
	if errors.As(failure, &wait) {
		touched, applied = nil, false
		_, failure = sp.Exec(ctx, `INSERT INTO stripe_event_waits (event_id, object_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, p.ev.ID, string(wait))
		failure = dbError(failure)
	}
	if failure != nil {
		if err := sp.Rollback(ctx); err != nil {
			return nil, false, nil, err
		}
		return nil, false, fmt.Errorf("apply %s %s: %w", p.ev.Type, p.ev.ID, failure), nil
	}
	if err := sp.Commit(ctx); err != nil {
		return nil, false, nil, err
	}
	maps.Copy(found, accounts.found)
	return touched, applied, nil, nil
}

// wake enqueues again, each in a job of its own, the events waiting on objects.
func (s *Service) wake(ctx context.Context, tx pgx.Tx, objects []string) error {
	if len(objects) == 0 {
		return nil
	}
	rows, _ := tx.Query(ctx, `DELETE FROM stripe_event_waits WHERE object_id = ANY($1) RETURNING event_id`, objects)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return dbError(err)
	}
	return s.enqueueAlone(ctx, tx, ids)
}

// enqueueAlone enqueues a job of its own for each of the events ids, and marks them so that
// batches leave them to it.
func (s *Service) enqueueAlone(ctx context.Context, tx pgx.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE stripe_events SET alone_at = now() WHERE id = ANY($1) AND applied_at IS NULL`, ids); err != nil {
		return dbError(err)
	}
	jobs := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		jobs[i] = river.InsertManyParams{Args: ApplyEventArgs{EventID: id}}
	}
	if _, err := s.Jobs.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue stripe events: %w", err)
	}
	return nil
}

// planAt is PlanAt with the plan's lines remembered: the query that picks the plan is
// PlanAt's.
func (s *Service) planAt(ctx context.Context, tx pgx.Tx, showID int64, source string, at time.Time) (Plan, error) {
	var id int64
	err := tx.QueryRow(ctx, `
		SELECT id FROM share_plans
		WHERE show_id = $1 AND source IN ($2, 'all') AND effective_at <= $3
		ORDER BY source = $2 DESC, effective_at DESC
		LIMIT 1`, showID, source, at).Scan(&id)
	if err == nil {
		if p, ok := s.plans.get(id); ok {
			return p, nil
		}
	}
	p, err := PlanAt(ctx, tx, showID, source, at)
	if err != nil {
		return Plan{}, err
	}
	s.plans.add(p)
	return p, nil
}

// lockObject serialises the events about one Stripe object (a charge) across workers, so that
// an event that starts waiting cannot miss the wake-up of one committing meanwhile.
func lockObject(ctx context.Context, tx pgx.Tx, id string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, objectKey(id))
	return dbError(err)
}

// objectKey is the advisory lock key of a Stripe object.
func objectKey(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64())
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

// prefetch learns the charge behind a payment event: from the payload when it carries the
// balance transaction, else from Stripe (errFetchLater unless fetch is set).
func (s *Service) prefetch(ctx context.Context, ev stripe.Event, fetch bool) (*chargeFacts, error) {
	var ch *stripe.Charge
	var piID string
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &sess); err != nil {
			return nil, river.JobCancel(fmt.Errorf("%w: checkout session: %v", ErrInvalid, err))
		}
		if sess.Mode != stripe.CheckoutSessionModePayment || sess.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid ||
			sess.PaymentIntent == nil || sess.Metadata[MetaKind] == "" {
			return nil, nil
		}
		ch, piID = sess.PaymentIntent.LatestCharge, sess.PaymentIntent.ID
	case "invoice.paid":
		var inv stripe.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
			return nil, river.JobCancel(fmt.Errorf("%w: invoice: %v", ErrInvalid, err))
		}
		if inv.AmountPaid <= 0 || inv.SubscriptionDetails == nil || inv.SubscriptionDetails.Metadata[MetaShowID] == "" {
			return nil, nil
		}
		ch = inv.Charge
		if inv.PaymentIntent != nil {
			piID = inv.PaymentIntent.ID
		}
	default:
		return nil, nil
	}
	if f, ok := factsOf(ch); ok {
		return &f, nil
	}
	if !fetch {
		return nil, errFetchLater
	}
	if s.Stripe == nil {
		return nil, river.JobCancel(fmt.Errorf("%w: event %s has no balance transaction and there is no Stripe key to fetch it", ErrInvalid, ev.ID))
	}
	var err error
	if ch != nil && ch.ID != "" {
		ch, err = s.Stripe.charge(ctx, ch.ID)
	} else if piID != "" {
		ch, err = s.Stripe.chargeOfPaymentIntent(ctx, piID)
	} else {
		return nil, river.JobCancel(fmt.Errorf("%w: event %s names no charge", ErrInvalid, ev.ID))
	}
	if err != nil {
		return nil, err
	}
	f, ok := factsOf(ch)
	if !ok {
		return nil, fmt.Errorf("%w: charge of event %s has no balance transaction", ErrStripe, ev.ID)
	}
	return &f, nil
}

// prefetchRefunds learns the refunds of a charge.refunded event's charge with the fees Stripe
// reports for them: from the payload when it carries them with their balance transactions,
// else from Stripe (errFetchLater unless fetch is set). Without a Stripe key (offline test
// mode, whose refunds carry no fees) a payload without them means no fee effects.
func (s *Service) prefetchRefunds(ctx context.Context, ev stripe.Event, fetch bool) ([]refundFact, error) {
	if ev.Type != "charge.refunded" {
		return nil, nil
	}
	var ch stripe.Charge
	if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
		return nil, river.JobCancel(fmt.Errorf("%w: charge: %v", ErrInvalid, err))
	}
	var list []*stripe.Refund
	if ch.Refunds != nil && refundsExpanded(ch.Refunds.Data) && !ch.Refunds.HasMore {
		list = ch.Refunds.Data
	} else if s.Stripe == nil {
		return nil, nil
	} else if !fetch {
		return nil, errFetchLater
	} else {
		var err error
		if list, err = s.Stripe.refunds(ctx, ch.ID); err != nil {
			return nil, err
		}
	}
	out := make([]refundFact, 0, len(list))
	for _, r := range list {
		if r == nil || r.Status == stripe.RefundStatusFailed || r.Status == stripe.RefundStatusCanceled {
			continue
		}
		f := refundFact{ID: r.ID, Amount: r.Amount, Created: r.Created}
		if r.BalanceTransaction != nil {
			f.Fee = r.BalanceTransaction.Fee
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b refundFact) int {
		if a.Created != b.Created {
			return int(a.Created - b.Created)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// prefetchPayoutTransfers learns which platform transfers a connected account's payout event
// carried, from Stripe (errFetchLater unless fetch is set). Without a Stripe key there is no
// one to ask, and the event is matched by time.
func (s *Service) prefetchPayoutTransfers(ctx context.Context, ev stripe.Event, fetch bool) ([]string, error) {
	if (ev.Type != "payout.paid" && ev.Type != "payout.failed") || ev.Account == "" || s.Stripe == nil {
		return nil, nil
	}
	if !fetch {
		return nil, errFetchLater
	}
	var p stripe.Payout
	if err := json.Unmarshal(ev.Data.Raw, &p); err != nil || p.ID == "" {
		return nil, river.JobCancel(fmt.Errorf("%w: payout of event %s: %v", ErrInvalid, ev.ID, err))
	}
	ids, err := s.Stripe.payoutTransfers(ctx, ev.Account, p.ID)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{} // known: it carried none of ours
	}
	return ids, nil
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

// refundFees is the fee Stripe reports on the refunds that make up the first total of a
// charge's amount refunded, in Stripe's order.
func refundFees(refunds []refundFact, total int64) int64 {
	var sum, fee int64
	for _, r := range refunds {
		if sum+r.Amount > total {
			break
		}
		sum += r.Amount
		fee += r.Fee
	}
	return fee
}

// apply makes an event's effect and returns the Stripe objects it posted for, whose waiting
// events are then woken.
func (s *Service) apply(ctx context.Context, tx pgx.Tx, pe pendingEvent, accounts *accountLookup) ([]string, error) {
	ev, facts := pe.ev, pe.facts
	raw := ev.Data.Raw
	at := time.Unix(ev.Created, 0).UTC()
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(raw, &sess); err != nil {
			return nil, err
		}
		return s.applySessionPaid(ctx, tx, ev, sess, facts, accounts)
	case "checkout.session.async_payment_failed":
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(raw, &sess); err != nil {
			return nil, err
		}
		if id := metaInt(sess.Metadata, MetaDonationID); id != 0 {
			_, err := tx.Exec(ctx, `UPDATE donations SET status = 'failed' WHERE id = $1 AND status = 'pending'`, id)
			return nil, dbError(err)
		}
		if id := metaInt(sess.Metadata, MetaSponsorshipID); id != 0 {
			// The deal stays offered: the sponsor can pay the link again, another way.
			_, err := tx.Exec(ctx, `UPDATE sponsorships SET failure = $2 WHERE id = $1 AND status = 'offered'`, id,
				"The payment of "+time.Unix(ev.Created, 0).UTC().Format("2 Jan 2006")+" failed (the bank did not honour the debit); the link can be paid again.")
			return nil, dbError(err)
		}
		return nil, nil
	case "invoice.paid":
		var inv stripe.Invoice
		if err := json.Unmarshal(raw, &inv); err != nil {
			return nil, err
		}
		if facts == nil {
			return nil, nil // not a Fanseed subscription, or nothing paid
		}
		md := inv.SubscriptionDetails.Metadata
		return s.postCharge(ctx, tx, ev, *facts, metaInt(md, MetaShowID), SourceDonations, "Monthly donation", accounts)
	case "charge.refunded":
		var ch stripe.Charge
		if err := json.Unmarshal(raw, &ch); err != nil {
			return nil, err
		}
		prev := int64(-1)
		if v, ok := ev.Data.PreviousAttributes["amount_refunded"].(float64); ok {
			prev = int64(v)
		}
		return s.applyRefund(ctx, tx, ev, ch, prev, pe.refunds)
	case "charge.dispute.created", "charge.dispute.closed":
		var du stripe.Dispute
		if err := json.Unmarshal(raw, &du); err != nil {
			return nil, err
		}
		return s.applyDispute(ctx, tx, ev, du)
	case "customer.subscription.deleted":
		var sub stripe.Subscription
		if err := json.Unmarshal(raw, &sub); err != nil {
			return nil, err
		}
		_, err := tx.Exec(ctx, `UPDATE donations SET status = 'cancelled' WHERE subscription_id = $1 AND status IN ('pending', 'paid')`, sub.ID)
		return nil, dbError(err)
	case "account.updated":
		var a stripe.Account
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		_, err := tx.Exec(ctx, `
			UPDATE parties SET charges_enabled = $2, payouts_enabled = $3, stripe_updated_at = $4
			WHERE stripe_account_id = $1 AND (stripe_updated_at IS NULL OR stripe_updated_at <= $4)`,
			a.ID, a.ChargesEnabled, a.PayoutsEnabled, at)
		return nil, dbError(err)
	case "transfer.reversed":
		var t stripe.Transfer
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, err
		}
		return s.applyTransferReversed(ctx, tx, ev, t)
	case "payout.paid", "payout.failed":
		var p stripe.Payout
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		status := map[stripe.EventType]string{"payout.paid": "paid", "payout.failed": "failed"}[ev.Type]
		if pe.transfers != nil {
			// The transfers Stripe says the payout carried.
			_, err := tx.Exec(ctx, `
				UPDATE payouts SET status = $2, failure = $3, updated_at = now()
				WHERE party_id = (SELECT id FROM parties WHERE stripe_account_id = $1)
				  AND status = 'transferred' AND stripe_transfer_id = ANY($4)`,
				ev.Account, status, p.FailureMessage, pe.transfers)
			return nil, dbError(err)
		}
		// Without Stripe to ask: the transfers made to the account before the payout was
		// created (they are available at once) and not settled by an earlier one.
		made := at
		if p.Created != 0 {
			made = time.Unix(p.Created, 0).UTC()
		}
		_, err := tx.Exec(ctx, `
			UPDATE payouts SET status = $2, failure = $3, updated_at = now()
			WHERE party_id = (SELECT id FROM parties WHERE stripe_account_id = $1)
			  AND status = 'transferred' AND updated_at <= $4`,
			ev.Account, status, p.FailureMessage, made)
		return nil, dbError(err)
	}
	s.Log.DebugContext(ctx, "stripe event ignored", slog.String("event_id", ev.ID), slog.String("type", string(ev.Type)))
	return nil, nil
}

func (s *Service) applySessionPaid(ctx context.Context, tx pgx.Tx, ev stripe.Event, sess stripe.CheckoutSession, facts *chargeFacts,
	accounts *accountLookup) ([]string, error) {
	md := sess.Metadata
	donationID, sponsorshipID := metaInt(md, MetaDonationID), metaInt(md, MetaSponsorshipID)
	if sess.Mode == stripe.CheckoutSessionModeSubscription {
		// The money of a subscription arrives with invoice.paid, the first month's too.
		if donationID != 0 && sess.Subscription != nil {
			_, err := tx.Exec(ctx, `UPDATE donations SET status = 'paid', subscription_id = $2, paid_at = coalesce(paid_at, $3)
				WHERE id = $1 AND status IN ('pending', 'failed')`, donationID, sess.Subscription.ID, time.Unix(ev.Created, 0))
			return nil, dbError(err)
		}
		return nil, nil
	}
	if facts == nil {
		return nil, nil // not paid yet (async payment methods), or not Fanseed's
	}
	showID := metaInt(md, MetaShowID)
	switch md[MetaKind] {
	case KindDonation:
		touched, err := s.postCharge(ctx, tx, ev, *facts, showID, SourceDonations, "Donation", accounts)
		if err != nil {
			return nil, err
		}
		_, err = tx.Exec(ctx, `UPDATE donations SET status = 'paid', charge_id = $2, paid_at = $3
			WHERE id = $1 AND status IN ('pending', 'failed')`, donationID, facts.ChargeID, facts.At)
		return touched, dbError(err)
	case KindSponsorship:
		touched, err := s.postCharge(ctx, tx, ev, *facts, showID, SourceSponsorship, "Sponsorship", accounts)
		if err != nil {
			return nil, err
		}
		_, err = tx.Exec(ctx, `UPDATE sponsorships SET status = 'paid', charge_id = $2, paid_at = $3, failure = ''
			WHERE id = $1 AND status IN ('offered', 'cancelled')`, sponsorshipID, facts.ChargeID, facts.At)
		return touched, dbError(err)
	}
	return nil, nil
}

// postCharge posts a payment split by the show's plan in force when the charge was made.
func (s *Service) postCharge(ctx context.Context, tx pgx.Tx, ev stripe.Event, f chargeFacts, showID int64, source, what string,
	accounts *accountLookup) ([]string, error) {
	if showID == 0 {
		return nil, river.JobCancel(fmt.Errorf("%w: %s event %s names no show", ErrInvalid, what, ev.ID))
	}
	if err := lockObject(ctx, tx, f.ChargeID); err != nil {
		return nil, err
	}
	plan, err := s.planAt(ctx, tx, showID, source, f.At)
	if err != nil {
		return nil, err
	}
	_, err = postPayment(ctx, tx, Payment{
		Gross: f.Gross, Fee: f.Fee, Currency: f.Currency, OccurredAt: f.At, Source: source,
		IdempotencyKey: "payment:" + f.ChargeID, StripeObjectID: f.ChargeID, StripeEventID: ev.ID,
		Description: what,
	}, plan, accounts)
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return nil, err
	}
	return []string{f.ChargeID}, nil
}

// paymentOf finds the payment entry of a charge and its gross in the ledger.
func paymentOf(ctx context.Context, tx pgx.Tx, chargeID string) (id, gross int64, err error) {
	err = tx.QueryRow(ctx, `
		SELECT e.id, p.amount FROM journal_entries e JOIN postings p ON p.entry_id = e.id AND p.role = 'gross'
		WHERE e.idempotency_key = $1`, "payment:"+chargeID).Scan(&id, &gross)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, waitFor(chargeID)
	}
	return id, gross, dbError(err)
}

// scale converts an amount of the charge's currency into the ledger's (the settlement
// currency), in proportion; exact when they are the same.
func scale(x, ledgerGross, chargeAmount int64) int64 {
	if chargeAmount <= 0 || ledgerGross == chargeAmount {
		return x
	}
	parts, err := splitByWeights(ledgerGross, []int64{x, chargeAmount - x})
	if err != nil {
		return x
	}
	return parts[0]
}

// applyRefund posts what a charge.refunded event adds to the amount refunded. The charge
// carries the cumulative amount_refunded and the event the amount before it, so refunds of
// one charge are posted in Stripe's order whatever order they arrive in: one that arrives
// before an earlier refund waits for it.
func (s *Service) applyRefund(ctx context.Context, tx pgx.Tx, ev stripe.Event, ch stripe.Charge, prev int64, refunds []refundFact) ([]string, error) {
	if err := lockObject(ctx, tx, ch.ID); err != nil {
		return nil, err
	}
	payID, gross, err := paymentOf(ctx, tx, ch.ID)
	if err != nil {
		return nil, err
	}
	var done int64
	if err := tx.QueryRow(ctx, `
		SELECT coalesce(max(split_part(idempotency_key, ':', 3)::bigint), 0) FROM journal_entries
		WHERE reverses_entry_id = $1 AND kind = 'refund'`, payID).Scan(&done); err != nil {
		return nil, dbError(err)
	}
	total := ch.AmountRefunded
	switch {
	case total <= done:
		return nil, nil // applied already through a later event
	case prev > done:
		return nil, waitFor(ch.ID) // an earlier refund has not been applied yet
	}
	amount := scale(total, gross, ch.Amount) - scale(done, gross, ch.Amount)
	if amount > 0 {
		// The fee effect is what Stripe reports on the refunds up to this total, less what
		// earlier refunds of the charge posted.
		var feePosted int64
		if err := tx.QueryRow(ctx, `
			SELECT coalesce(-sum(p.amount), 0) FROM journal_entries e
			JOIN postings p ON p.entry_id = e.id AND p.role = 'fee'
			JOIN ledger_accounts a ON a.id = p.account_id AND a.kind = 'processor_fees'
			WHERE e.reverses_entry_id = $1 AND e.kind = 'refund'`, payID).Scan(&feePosted); err != nil {
			return nil, dbError(err)
		}
		_, err = PostReversal(ctx, tx, Reversal{
			EntryID: payID, Kind: EntryRefund, Amount: amount, Fee: refundFees(refunds, total) - feePosted,
			OccurredAt:     time.Unix(ev.Created, 0).UTC(),
			IdempotencyKey: "refund:" + ch.ID + ":" + strconv.FormatInt(total, 10), StripeObjectID: ch.ID,
			StripeEventID: ev.ID, Description: "Refund",
		})
		if err != nil && !errors.Is(err, ErrDuplicate) {
			return nil, err
		}
	}
	if total >= ch.Amount {
		if _, err := tx.Exec(ctx, `UPDATE donations SET status = 'refunded' WHERE charge_id = $1`, ch.ID); err != nil {
			return nil, dbError(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE sponsorships SET status = 'refunded' WHERE charge_id = $1`, ch.ID); err != nil {
			return nil, dbError(err)
		}
	}
	return []string{ch.ID}, nil
}

// applyDispute posts a dispute's withdrawal (once, whichever of its events comes first) and,
// when it is closed as won, the reinstatement. The amounts and fees are those of the
// dispute's balance transactions.
func (s *Service) applyDispute(ctx context.Context, tx pgx.Tx, ev stripe.Event, du stripe.Dispute) ([]string, error) {
	if du.Charge == nil || du.Charge.ID == "" {
		return nil, river.JobCancel(fmt.Errorf("%w: dispute %s names no charge", ErrInvalid, du.ID))
	}
	chargeID := du.Charge.ID
	if err := lockObject(ctx, tx, chargeID); err != nil {
		return nil, err
	}
	payID, _, err := paymentOf(ctx, tx, chargeID)
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
	amount, fee := du.Amount, int64(0)
	at := time.Unix(du.Created, 0).UTC()
	if withdrawn != nil {
		amount, fee = -withdrawn.Amount, withdrawn.Fee
	}
	disputeID, err := PostReversal(ctx, tx, Reversal{
		EntryID: payID, Kind: EntryDispute, Amount: amount, Fee: fee, OccurredAt: at,
		IdempotencyKey: "dispute:" + du.ID, StripeObjectID: du.ID, StripeEventID: ev.ID, Description: "Dispute opened",
	})
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return nil, err
	}
	if ev.Type == "charge.dispute.closed" && du.Status == stripe.DisputeStatusWon {
		fee := int64(0)
		when := time.Unix(ev.Created, 0).UTC()
		if reinstated != nil {
			fee, when = reinstated.Fee, time.Unix(reinstated.Created, 0).UTC()
		}
		_, err := PostDisputeWon(ctx, tx, DisputeWon{
			DisputeEntryID: disputeID, Fee: fee, OccurredAt: when, IdempotencyKey: "dispute_won:" + du.ID,
			StripeObjectID: du.ID, StripeEventID: ev.ID,
		})
		if err != nil && !errors.Is(err, ErrDuplicate) {
			return nil, err
		}
	}
	if ev.Type == "charge.dispute.closed" && du.Status == stripe.DisputeStatusLost {
		// The payer has the money back for good: the donation or deal counts as refunded.
		if _, err := tx.Exec(ctx, `UPDATE donations SET status = 'refunded' WHERE charge_id = $1`, chargeID); err != nil {
			return nil, dbError(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE sponsorships SET status = 'refunded' WHERE charge_id = $1`, chargeID); err != nil {
			return nil, dbError(err)
		}
	}
	return []string{chargeID}, nil
}

// applyTransferReversed takes back into a party's balance what a reversed payout transfer
// returned, posting the increase of the transfer's cumulative amount_reversed.
func (s *Service) applyTransferReversed(ctx context.Context, tx pgx.Tx, ev stripe.Event, t stripe.Transfer) ([]string, error) {
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
		SELECT coalesce(max(split_part(idempotency_key, ':', 3)::bigint), 0) FROM journal_entries
		WHERE stripe_object_id = $1 AND kind = 'adjustment'`, t.ID).Scan(&done); err != nil {
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
		_, err := Post(ctx, tx, Entry{
			Kind: EntryAdjustment, Description: fmt.Sprintf("Payout %d reversed", payoutID),
			IdempotencyKey: "transfer_reversed:" + t.ID + ":" + strconv.FormatInt(t.AmountReversed, 10),
			OccurredAt:     time.Unix(ev.Created, 0).UTC(), StripeObjectID: t.ID, StripeEventID: ev.ID, Postings: b.list,
		})
		if err != nil && !errors.Is(err, ErrDuplicate) {
			return nil, err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE payouts SET status = 'reversed', updated_at = now() WHERE id = $1`, payoutID)
	return nil, dbError(err)
}

// EventBacklog is what is left of the Stripe events received: those a batch will apply, those
// waiting for another event, and those handed to a job of their own (retried, or given up on).
type EventBacklog struct {
	Pending, Waiting, Alone int64
}

// Backlog counts the Stripe events not applied yet.
func Backlog(ctx context.Context, db DBTX) (EventBacklog, error) {
	var b EventBacklog
	err := db.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE alone_at IS NULL AND w.event_id IS NULL),
		       count(*) FILTER (WHERE alone_at IS NULL AND w.event_id IS NOT NULL),
		       count(*) FILTER (WHERE alone_at IS NOT NULL)
		FROM stripe_events e
		LEFT JOIN LATERAL (SELECT event_id FROM stripe_event_waits WHERE event_id = e.id LIMIT 1) w ON true
		WHERE e.applied_at IS NULL`).Scan(&b.Pending, &b.Waiting, &b.Alone)
	if err != nil {
		return b, fmt.Errorf("stripe event backlog: %w", dbError(err))
	}
	return b, nil
}

// StuckEvent is a Stripe event received a while ago and not applied yet.
type StuckEvent struct {
	ID         string     `db:"id"`
	Type       string     `db:"type"`
	Created    time.Time  `db:"created"`
	ReceivedAt time.Time  `db:"received_at"`
	AloneAt    *time.Time `db:"alone_at"`    // handed to a job of its own
	WaitingFor *string    `db:"waiting_for"` // the Stripe object it waits for, if it waits
	LastError  string     `db:"last_error"`
}

// StuckEvents lists up to limit events not applied that were handed to a job of their own, or
// received more than olderThan ago, the oldest first.
func StuckEvents(ctx context.Context, db DBTX, olderThan time.Duration, limit int) ([]StuckEvent, error) {
	rows, _ := db.Query(ctx, `
		SELECT e.id, e.type, e.created, e.received_at, e.alone_at, e.last_error,
		       (SELECT min(w.object_id) FROM stripe_event_waits w WHERE w.event_id = e.id) AS waiting_for
		FROM stripe_events e
		WHERE e.applied_at IS NULL AND (e.alone_at IS NOT NULL OR e.received_at < now() - $1::interval)
		ORDER BY e.received_at LIMIT $2`, olderThan, limit)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[StuckEvent])
	if err != nil {
		return nil, fmt.Errorf("stuck stripe events: %w", dbError(err))
	}
	return list, nil
}

// RetryEvents has batches apply the given unapplied events again at once (those waiting for
// another event keep waiting), and returns how many it put back. An event that fails again is
// handed to a job of its own again.
func (s *Service) RetryEvents(ctx context.Context, ids []string) (int, error) {
	tag, err := s.DB.Exec(ctx, `UPDATE stripe_events SET alone_at = NULL, last_error = ''
		WHERE id = ANY($1) AND applied_at IS NULL AND alone_at IS NOT NULL`, ids)
	if err != nil {
		return 0, fmt.Errorf("retry stripe events: %w", dbError(err))
	}
	if n := tag.RowsAffected(); n > 0 {
		if _, err := s.Jobs.Insert(ctx, ApplyPendingArgs{}, nil); err != nil {
			return int(n), fmt.Errorf("enqueue stripe event batch: %w", err)
		}
		return int(n), nil
	}
	return 0, nil
}
