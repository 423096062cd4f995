package mailtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/fanseed/fanseed/mail"
)

// Service is a mail service on db that sends to srv over STARTTLS with its password, by River
// jobs worked in the test until it ends. River's tables must be in db (billing.MigrateJobs).
func Service(t testing.TB, db *pgxpool.Pool, srv *Server, logger *slog.Logger) *mail.Service {
	t.Helper()
	ctx := context.Background()
	svc := &mail.Service{DB: db, From: "Fanseed <noreply@fanseed.test>", Log: logger}
	sender, err := mail.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	sender.TLS = srv.TLSConfig()
	svc.Sender = sender
	workers := river.NewWorkers()
	if err := mail.AddWorkers(workers, svc); err != nil {
		t.Fatal(err)
	}
	jobs, err := river.NewClient(riverpgxv5.New(db), &river.Config{Logger: logger, Workers: workers,
		Queues: map[string]river.QueueConfig{mail.Queue: mail.QueueConfig()}, FetchCooldown: 20 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc.Jobs = jobs
	if err := jobs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		jobs.Stop(stop)
	})
	return svc
}
