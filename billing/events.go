package billing

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// StoreEvent stores a verified Stripe event under its unique id, durably (one committed
// statement), and reports whether the event was new. A duplicate changes nothing. The stored
// event is its own queue entry: a new one is applied by a batch job (ApplyPendingArgs), one
// running in this process or else one enqueued here (see kick); one also runs periodically.
func (s *Service) StoreEvent(ctx context.Context, h EventHeader, payload []byte) (bool, error) {
	if h.ID == "" || h.Type == "" {
		return false, fmt.Errorf("%w: event without id or type", ErrInvalid)
	}
	tag, err := s.DB.Exec(ctx, `
		INSERT INTO stripe_events (id, type, api_version, livemode, created, payload)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		h.ID, h.Type, h.APIVersion, h.Livemode, h.Created, payload)
	if err != nil {
		return false, fmt.Errorf("store stripe event %s: %w", h.ID, dbError(err))
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
		s.Log.ErrorContext(ctx, "enqueue stripe event batch", slog.Any("error", err))
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
				s.Log.ErrorContext(ctx, "enqueue stripe event batch", slog.Any("error", err))
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
	return findAll[StuckEvent](ctx, db, "stuck stripe events", `
		SELECT e.id, e.type, e.created, e.received_at, e.alone_at, e.last_error,
		       (SELECT min(w.object_id) FROM stripe_event_waits w WHERE w.event_id = e.id) AS waiting_for
		FROM stripe_events e
		WHERE e.applied_at IS NULL AND (e.alone_at IS NOT NULL OR e.received_at < now() - $1::interval)
		ORDER BY e.received_at LIMIT $2`, olderThan, limit)
}

// IgnoredType is a type of Stripe event Fanseed received and does not handle: applied as
// ignored, counted for the admin (a type that should be handled shows here).
type IgnoredType struct {
	Type   string    `db:"type"`
	Count  int64     `db:"count"`
	Last   time.Time `db:"last"`
	LastID string    `db:"last_id"`
}

// IgnoredTypes lists the types of events applied as ignored, the most recently received first.
func IgnoredTypes(ctx context.Context, db DBTX, limit int) ([]IgnoredType, error) {
	return findAll[IgnoredType](ctx, db, "ignored stripe events", `
		SELECT type, count(*) AS count, max(received_at) AS last, (array_agg(id ORDER BY received_at DESC))[1] AS last_id
		FROM stripe_events WHERE ignored GROUP BY type ORDER BY max(received_at) DESC LIMIT $1`, limit)
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
