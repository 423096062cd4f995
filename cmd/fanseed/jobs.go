package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/mail"
	"github.com/fanseed/fanseed/notify"
)

// newMoney wires billing: Stripe when a key is set (else offline test mode, with a webhook
// secret made up for this process when none is set) and the River client, which works jobs
// when work is set; and mail, whose jobs the same client works.
func newMoney(cfg config, pool *pgxpool.Pool, logger *slog.Logger, work bool) (*billing.Service, *mail.Service, *river.Client[pgx.Tx], error) {
	post := &mail.Service{DB: pool, From: cfg.MailFrom, Log: logger}
	if cfg.SMTPURL != "" {
		sender, err := mail.ParseURL(cfg.SMTPURL)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("SMTP_URL: %w", err)
		}
		post.Sender = sender
	} else if work {
		logger.Warn("SMTP_URL is not set: email stays in the outbox, where an admin reads it on /admin/outbox")
	}
	m := &billing.Service{DB: pool, Log: logger, WebhookSecret: cfg.StripeWebhookSecret}
	if cfg.StripeSecretKey != "" {
		m.Stripe = billing.NewStripe(cfg.StripeSecretKey, cfg.StripeAPIBase, nil)
	} else {
		if m.WebhookSecret == "" {
			m.WebhookSecret = "whsec_offline_" + rand.Text()
		}
		logger.Warn("STRIPE_SECRET_KEY is not set: offline test mode, donations complete on a test checkout page and no real money moves")
	}
	notices := newNotices(cfg, pool, post, logger)
	jobs, err := billing.NewJobClient(m, billing.JobOptions{Work: work, Workers: cfg.EventWorkers, BatchWorkers: cfg.EventBatchWorkers,
		AddWorkers: func(w *river.Workers) error {
			return errors.Join(mail.AddWorkers(w, post), notify.AddWorkers(w, notices))
		},
		Queues:       map[string]river.QueueConfig{mail.Queue: mail.QueueConfig()},
		PeriodicJobs: []*river.PeriodicJob{notify.PeriodicJob()},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	post.Jobs = jobs
	return m, post, jobs, nil
}

// newNotices is the writer of receipts and money notices, with links to the site.
func newNotices(cfg config, pool *pgxpool.Pool, post *mail.Service, logger *slog.Logger) *notify.Service {
	base := ""
	if cfg.BaseURL != nil {
		base = strings.TrimRight(cfg.BaseURL.String(), "/")
	}
	return &notify.Service{DB: pool, Mail: post, BaseURL: func() string { return base }, Log: logger}
}

// startJobs starts working jobs and returns the function that stops them, once: jobs in flight
// may finish until most of the way to ctx's deadline, then the rest are cancelled, so that
// stopping ends by the deadline and no job keeps a database connection past it.
func startJobs(ctx context.Context, jobs *river.Client[pgx.Tx], logger *slog.Logger) (stop func(ctx context.Context), err error) {
	if err := jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("start jobs: %w", err)
	}
	var once sync.Once
	return func(ctx context.Context) {
		once.Do(func() {
			soft := ctx
			if d, ok := ctx.Deadline(); ok {
				var cancel context.CancelFunc
				soft, cancel = context.WithDeadline(ctx, d.Add(-time.Until(d)/5))
				defer cancel()
			}
			if err := jobs.Stop(soft); err != nil {
				logger.Warn("jobs still running at the shutdown deadline are cancelled", slog.Any("error", err))
				if err := jobs.StopAndCancel(ctx); err != nil {
					logger.Warn("jobs did not stop", slog.Any("error", err))
				}
			}
		})
	}, nil
}
