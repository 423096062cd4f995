package mail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
)

// DBTX is what mail queries run on: a pool, a connection or a transaction (Begin makes a
// savepoint in one).
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ErrInvalid is a message that cannot be sent as given (no recipient, no subject).
var ErrInvalid = errors.New("invalid message")

// ErrNotFound is an outbox row that does not exist.
var ErrNotFound = errors.New("not found")

// Message is one email. Key makes it go out once: a second message with the same key is
// dropped (empty: a key is made up, so the message always goes). Secret marks a message
// carrying a one-time link, whose body is blanked once sent.
type Message struct {
	Key, To, Subject, Body string
	Secret                 bool
}

// Outbox statuses.
const (
	StatusHeld   = "held"   // no SMTP server: kept for the Outbox page
	StatusQueued = "queued" // a job sends it
	StatusSent   = "sent"
	StatusFailed = "failed" // the job gave up
)

// Service writes messages to the outbox and, with a sender and a job client, sends them.
type Service struct {
	DB     DBTX
	Jobs   *river.Client[pgx.Tx] // nil: no jobs, messages are held
	Sender *Sender               // nil: outbox only (no SMTP_URL, as in fanseed dev)
	From   string                // the From header, "Fanseed <noreply@example.com>"
	Log    *slog.Logger
}

// Sends reports whether messages go out over SMTP (else they stay in the outbox).
func (s *Service) Sends() bool { return s != nil && s.Sender != nil && s.Jobs != nil }

// Send writes m to the outbox in db's transaction (a savepoint of it) and, when mail goes
// out, inserts the job that sends it in the same transaction, so the message exists exactly
// when what it tells of does. It reports whether the message is new (false: its key was
// already used, and nothing was written).
func (s *Service) Send(ctx context.Context, db DBTX, m Message) (bool, error) {
	m.To = strings.TrimSpace(m.To)
	if a, err := mail.ParseAddress(m.To); err != nil || a.Address != m.To {
		return false, fmt.Errorf("%w: recipient %q is not an email address", ErrInvalid, m.To)
	}
	if strings.TrimSpace(m.Subject) == "" || strings.ContainsAny(m.Subject, "\r\n") {
		return false, fmt.Errorf("%w: subject must be one line of text", ErrInvalid)
	}
	if m.Key == "" {
		m.Key = "once:" + rand.Text()
	}
	status := StatusHeld
	if s.Sends() {
		status = StatusQueued
	}
	created := false
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO outbox (key, to_address, subject, body, secret, status)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING RETURNING id`,
			m.Key, m.To, m.Subject, m.Body, m.Secret, status).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("write outbox: %w", err)
		}
		created = true
		if status == StatusQueued {
			if _, err := s.Jobs.InsertTx(ctx, tx, SendArgs{OutboxID: id}, nil); err != nil {
				return fmt.Errorf("queue mail %d: %w", id, err)
			}
		}
		return nil
	})
	return created, err
}

// Entry is an outbox row, for the admin's Outbox page.
type Entry struct {
	ID        int64      `db:"id"`
	Key       string     `db:"key"`
	To        string     `db:"to_address"`
	Subject   string     `db:"subject"`
	Body      string     `db:"body"`
	Secret    bool       `db:"secret"`
	Status    string     `db:"status"`
	Attempts  int        `db:"attempts"`
	LastError string     `db:"last_error"`
	CreatedAt time.Time  `db:"created_at"`
	SentAt    *time.Time `db:"sent_at"`
}

const entryColumns = `id, key, to_address, subject, body, secret, status, attempts, last_error, created_at, sent_at`

// ListOutbox lists the newest messages first, at most limit, those with an id below before
// (0: from the newest).
func ListOutbox(ctx context.Context, db DBTX, before int64, limit int) ([]Entry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, _ := db.Query(ctx, `SELECT `+entryColumns+` FROM outbox WHERE id < $1 ORDER BY id DESC LIMIT $2`, before, limit)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[Entry])
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	return list, nil
}

// FindEntry loads one outbox row.
func FindEntry(ctx context.Context, db DBTX, id int64) (Entry, error) {
	rows, _ := db.Query(ctx, `SELECT `+entryColumns+` FROM outbox WHERE id = $1`, id)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Entry])
	if errors.Is(err, pgx.ErrNoRows) {
		return Entry{}, fmt.Errorf("outbox message %d: %w", id, ErrNotFound)
	}
	return e, err
}
