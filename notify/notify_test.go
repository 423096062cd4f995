package notify_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/mail"
	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/notify"
)

// Each paid donation with an address gets one receipt, each paid sponsorship one notice to
// the show's creator, however often the job runs; unpaid ones and donations without an
// address get nothing.
func TestSendDueOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, svc, show, exec := newFixture(t)
	exec(`INSERT INTO donations (show_id, amount, currency, monthly, status, paid_at, donor_email) VALUES
		($1, 1250, 'EUR', false, 'paid', '2026-11-05 10:00Z', 'once@example.com'),
		($1, 500, 'EUR', true, 'paid', '2026-11-06 10:00Z', 'monthly@example.com'),
		($1, 700, 'EUR', false, 'paid', '2026-11-06 10:00Z', NULL),
		($1, 900, 'EUR', false, 'pending', NULL, 'pending@example.com')`, show.ID)
	exec(`INSERT INTO sponsorships (show_id, sponsor_name, contact_email, period_start, amount, currency, status, pay_token, paid_at) VALUES
		($1, 'Acme Radio', 'ads@acme.example', '2026-11-01', 300000, 'EUR', 'paid', 'tok_paid_0123456789abcdef', '2026-11-07 09:00Z'),
		($1, 'Not Yet', 'ads@later.example', '2026-11-01', 100000, 'EUR', 'offered', 'tok_offered_0123456789abcd', NULL)`, show.ID)
	for range 2 {
		if _, err := svc.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list, err := mail.ListOutbox(ctx, db, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]mail.Entry{}
	for _, e := range list {
		if _, dup := got[e.To]; dup {
			t.Errorf("two messages to %s", e.To)
		}
		got[e.To] = e
	}
	if len(got) != 3 {
		t.Fatalf("%d messages, want 3 (two receipts, one sponsorship notice): %v", len(got), got)
	}
	once := got["once@example.com"]
	for _, want := range []string{"Amount: 12.50 EUR", "Show: Night Signals (http://fanseed.test/s/night)", "Date: 2026-11-05"} {
		if !strings.Contains(once.Body, want) {
			t.Errorf("receipt lacks %q:\n%s", want, once.Body)
		}
	}
	if strings.Contains(once.Body, "/donations/manage") {
		t.Error("a one-off receipt offers to manage a monthly donation")
	}
	monthly := got["monthly@example.com"]
	if !strings.Contains(monthly.Body, "http://fanseed.test/donations/manage?token=") || !monthly.Secret {
		t.Errorf("monthly receipt (secret %v):\n%s", monthly.Secret, monthly.Body)
	}
	notice := got["owner@example.com"]
	if notice.Subject != "Acme Radio paid 3000.00 EUR for Night Signals" || !strings.Contains(notice.Body, "Hello Owen") {
		t.Errorf("sponsorship notice %q:\n%s", notice.Subject, notice.Body)
	}
}

// newFixture is what every notify test starts from: a fresh database, the notify service over
// an outbox that sends nothing, a creator's EUR show "night", and exec for the rows a test adds.
func newFixture(t *testing.T) (*pgxpool.Pool, *notify.Service, catalog.Show, func(sql string, args ...any)) {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := &notify.Service{DB: db, Mail: &mail.Service{DB: db, From: "Fanseed <noreply@fanseed.test>", Log: logger},
		BaseURL: func() string { return "http://fanseed.test" }, Log: logger}
	owner, err := catalog.CreateAccount(ctx, db, catalog.SignUp{Email: "owner@example.com", Name: "Owen", Password: "long enough password", Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	show, err := catalog.CreateShow(ctx, db, owner.ID, catalog.ShowInput{Slug: "night", Title: "Night Signals", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	return db, svc, show, exec
}
