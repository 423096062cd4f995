package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// Queue is the River queue mail is sent on.
const Queue = "mail"

// MaxAttempts is how many times a message is tried before it is marked failed (River's
// backoff spreads them over about a day).
const MaxAttempts = 12

// SendArgs is the job that sends one outbox row.
type SendArgs struct {
	OutboxID int64 `json:"outbox_id"`
}

// Kind names the job for River.
func (SendArgs) Kind() string { return "mail_send" }

// InsertOpts puts the job on the mail queue.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: MaxAttempts}
}

// SendWorker works SendArgs jobs.
type SendWorker struct {
	river.WorkerDefaults[SendArgs]
	svc *Service
}

// AddWorkers registers the mail jobs' workers with the River client's workers.
func AddWorkers(workers *river.Workers, s *Service) error {
	return river.AddWorkerSafely(workers, &SendWorker{svc: s})
}

// QueueConfig is the mail queue's configuration for the River client.
func QueueConfig() river.QueueConfig { return river.QueueConfig{MaxWorkers: 2} }

// Work sends the message, recording each attempt and its error in the outbox row.
func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	s := w.svc
	e, err := FindEntry(ctx, s.DB, job.Args.OutboxID)
	if errors.Is(err, ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if e.Status != StatusQueued || s.Sender == nil {
		return nil
	}
	msg, from, err := compose(s.From, e.To, e.Subject, e.Body, time.Now())
	if err == nil {
		err = s.Sender.Deliver(ctx, from, e.To, msg)
	}
	if err != nil {
		status := StatusQueued
		if job.Attempt >= job.MaxAttempts {
			status = StatusFailed
		}
		if _, uerr := s.DB.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $2, status = $3 WHERE id = $1`,
			e.ID, err.Error(), status); uerr != nil {
			return errors.Join(err, fmt.Errorf("record mail attempt: %w", uerr))
		}
		s.Log.Warn("mail not sent", slog.Int64("outbox_id", e.ID), slog.String("smtp", s.Sender.Addr()),
			slog.Int("attempt", job.Attempt), slog.Any("error", err))
		return fmt.Errorf("send mail %d: %w", e.ID, err)
	}
	_, err = s.DB.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = '', status = 'sent', sent_at = now(),
		body = CASE WHEN secret THEN '' ELSE body END WHERE id = $1`, e.ID)
	if err != nil {
		return fmt.Errorf("record mail %d sent: %w", e.ID, err)
	}
	return nil
}

var _ river.Worker[SendArgs] = (*SendWorker)(nil)
