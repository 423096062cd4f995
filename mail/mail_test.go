package mail_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/mail"
	"github.com/fanseed/fanseed/mail/mailtest"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// newService is a mail service whose jobs are worked in the test, sending to srv (nil: no
// SMTP server, outbox only).
func newService(t *testing.T, db *pgxpool.Pool, srv *mailtest.Server) *mail.Service {
	t.Helper()
	ctx := context.Background()
	if _, err := billing.MigrateJobs(ctx, db); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &mail.Service{DB: db, From: "Fanseed <noreply@fanseed.test>", Log: logger}
	if srv == nil {
		return s
	}
	return mailtest.Service(t, db, srv, logger)
}

func outboxRow(t *testing.T, db *pgxpool.Pool, key string) mail.Entry {
	t.Helper()
	var id int64
	if err := db.QueryRow(context.Background(), `SELECT id FROM outbox WHERE key = $1`, key).Scan(&id); err != nil {
		t.Fatalf("outbox row %s: %v", key, err)
	}
	e, err := mail.FindEntry(context.Background(), db, id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A message goes over STARTTLS with the user's password to a real SMTP server, arrives
// decoded as sent, and its outbox row says sent; a second message with the same key is not
// sent again.
func TestSendOverSMTP(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := mailtest.NewServer(t)
	s := newService(t, db, srv)
	ctx := context.Background()
	m := mail.Message{Key: "test:1", To: "Ann@Example.com", Subject: "Grüße: your link",
		Body: "Open this link:\nhttp://fanseed.test/verify?token=abc\n\nA line with = and a very long tail " + strings.Repeat("x", 100), Secret: true}
	created, err := s.Send(ctx, db, m)
	if err != nil || !created {
		t.Fatalf("send: %v, created %v", err, created)
	}
	got := srv.Wait(t, "Ann@Example.com", "Grüße")
	if !got.TLS || got.AuthUser != "fanseed" || got.From != "noreply@fanseed.test" {
		t.Fatalf("delivered with TLS %v as %q from %q; want STARTTLS, authenticated, from MAIL_FROM", got.TLS, got.AuthUser, got.From)
	}
	if strings.TrimRight(got.Body, "\n") != m.Body || got.Subject != m.Subject || got.Header.Get("From") != `"Fanseed" <noreply@fanseed.test>` {
		t.Fatalf("delivered %q / %q / %q, want the message as sent", got.Subject, got.Body, got.Header.Get("From"))
	}
	if links := got.Links(); len(links) != 1 || links[0] != "http://fanseed.test/verify?token=abc" {
		t.Fatalf("links %q", links)
	}
	waitStatus(t, db, "test:1", mail.StatusSent)
	if e := outboxRow(t, db, "test:1"); e.Attempts != 1 || e.Body != "" || e.SentAt == nil {
		t.Fatalf("outbox row %+v: want one attempt, sent, and the secret body blanked", e)
	}
	if created, err := s.Send(ctx, db, m); err != nil || created {
		t.Fatalf("same key again: created %v, %v", created, err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
}

func waitStatus(t *testing.T, db *pgxpool.Pool, key, status string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		e := outboxRow(t, db, key)
		if e.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %s is %s (attempts %d, %q), want %s", key, e.Status, e.Attempts, e.LastError, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A server that refuses for now is tried again: the row counts both attempts and keeps the
// error until the message goes.
func TestSendRetries(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := mailtest.NewServer(t)
	srv.RejectNext(1)
	s := newService(t, db, srv)
	ctx := context.Background()
	if _, err := s.Send(ctx, db, mail.Message{Key: "retry:1", To: "bob@example.com", Subject: "Hello", Body: "Hi"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for e := outboxRow(t, db, "retry:1"); e.Attempts == 0; e = outboxRow(t, db, "retry:1") {
		if time.Now().After(deadline) {
			t.Fatal("no attempt within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e := outboxRow(t, db, "retry:1"); e.Status == mail.StatusQueued && !strings.Contains(e.LastError, "451") {
		t.Fatalf("after the refusal: %+v, want the 451 recorded", e)
	}
	srv.Wait(t, "bob@example.com", "Hello")
	waitStatus(t, db, "retry:1", mail.StatusSent)
	if e := outboxRow(t, db, "retry:1"); e.Attempts != 2 || e.LastError != "" || strings.TrimSpace(e.Body) != "Hi" {
		t.Fatalf("outbox row %+v: want two attempts, no error left, the body kept", e)
	}
}

// Without an SMTP server a message is held in the outbox, in the caller's transaction: rolled
// back with it, kept when it commits.
func TestHeldWithoutSMTP(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	s := newService(t, db, nil)
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, tx, mail.Message{Key: "held:1", To: "cy@example.com", Subject: "Hi", Body: "link"}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	var n int
	db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows after rollback", n)
	}
	if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		_, err := s.Send(ctx, tx, mail.Message{Key: "held:1", To: "cy@example.com", Subject: "Hi", Body: "link"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if e := outboxRow(t, db, "held:1"); e.Status != mail.StatusHeld || e.Body != "link" {
		t.Fatalf("row %+v, want held with its body", e)
	}
	for _, bad := range []mail.Message{{To: "nobody", Subject: "x"}, {To: "a@example.com", Subject: ""}, {To: "a@example.com", Subject: "a\nBcc: x"}} {
		if _, err := s.Send(ctx, db, bad); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw, addr, err string
	}{
		{"smtp://u:p@mail.example.com", "mail.example.com:587", ""},
		{"smtp://mail.example.com:2525", "mail.example.com:2525", ""},
		{"smtps://u:p@mail.example.com", "mail.example.com:465", ""},
		{"http://mail.example.com", "", "scheme"},
		{"smtp://", "", "no host"},
		{"smtp://h/x", "", "no path"},
	} {
		s, err := mail.ParseURL(c.raw)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one about %s", c.raw, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.raw, err)
		case c.err == "" && s.Addr() != c.addr:
			t.Errorf("%s: addr %s, want %s", c.raw, s.Addr(), c.addr)
		}
	}
}
