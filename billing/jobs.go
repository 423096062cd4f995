package billing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// JobQueue is the River queue Stripe events are applied on one by one: those a batch could
// not apply. BatchQueue is the queue of the jobs that apply pending events in batches.
const (
	JobQueue   = "stripe"
	BatchQueue = "stripe_batch"
)

// pendingPollInterval is how often a batch job runs anyway, for events stored by a process
// that does not work jobs, and any left over.
const pendingPollInterval = 2 * time.Second

// jobsLockID is the advisory lock held while River's schema is migrated: the same key as
// Fanseed's own migrations, so that processes starting together migrate one at a time.
const jobsLockID = 0x66616e73656564

// MigrateJobs applies River's own migrations (its job tables) under the migration advisory
// lock, and returns the versions it applied. (Each runs in a transaction of its own: one of
// them adds an enum value that a later statement uses.)
func MigrateJobs(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(jobsLockID)); err != nil {
		return nil, fmt.Errorf("river migrations lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(jobsLockID))
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("apply river migrations: %w", err)
	}
	var applied []int
	for _, v := range res.Versions {
		applied = append(applied, v.Version)
	}
	return applied, nil
}

// JobOptions tunes the job client.
type JobOptions struct {
	Work         bool // work jobs in this process, not only insert them
	Workers      int  // concurrent workers of single events; 0 for the default
	BatchWorkers int  // concurrent batch jobs; 0 for the default

	// Other packages' jobs worked by the same client (mail): their workers, queues and
	// periodic jobs.
	AddWorkers   func(*river.Workers) error
	Queues       map[string]river.QueueConfig
	PeriodicJobs []*river.PeriodicJob
}

// NewJobClient makes the River client that inserts (and, with opts.Work, works) the jobs of s,
// and sets it as s.Jobs.
func NewJobClient(s *Service, opts JobOptions) (*river.Client[pgx.Tx], error) {
	cfg := &river.Config{Logger: s.Log.With(slog.String("component", "river"))}
	if opts.Work {
		workers := river.NewWorkers()
		if err := river.AddWorkerSafely(workers, &EventWorker{svc: s}); err != nil {
			return nil, err
		}
		if err := river.AddWorkerSafely(workers, &PendingWorker{svc: s}); err != nil {
			return nil, err
		}
		if err := s.campaignWorkers(workers); err != nil {
			return nil, err
		}
		if opts.AddWorkers != nil {
			if err := opts.AddWorkers(workers); err != nil {
				return nil, err
			}
		}
		n := opts.Workers
		if n <= 0 {
			n = 4
		}
		// A batch shares its commit among its events; more batches at once than cores take
		// CPU from storing events more than they apply.
		nb := opts.BatchWorkers
		if nb <= 0 {
			nb = 2
		}
		s.batches.workers = nb
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{JobQueue: {MaxWorkers: n}, BatchQueue: {MaxWorkers: nb},
			CampaignQueue:      {MaxWorkers: n},
			river.QueueDefault: {MaxWorkers: 2}}
		cfg.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(pendingPollInterval),
			func() (river.JobArgs, *river.InsertOpts) { return ApplyPendingArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true})}
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(campaignSweepEvery),
			func() (river.JobArgs, *river.InsertOpts) { return CampaignSweepArgs{}, nil }, nil))
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, opts.PeriodicJobs...)
		for name, q := range opts.Queues {
			cfg.Queues[name] = q
		}
		cfg.FetchCooldown = 5 * time.Millisecond
		cfg.FetchPollInterval = 500 * time.Millisecond
	}
	c, err := river.NewClient(riverpgxv5.New(s.DB), cfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	s.Jobs = c
	return c, nil
}
