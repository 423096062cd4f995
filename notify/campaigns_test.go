package notify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/mail"
)

// A pledge whose charge needs the backer gets one email with the link to pay on-session, and
// a reminder only once a day has passed; an update goes to each standing backer once.
func TestPledgeNoticesAndUpdates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, svc, show, exec := newFixture(t)
	var campaign int64
	if err := db.QueryRow(ctx, `INSERT INTO campaigns (show_id, title, goal, currency, deadline, time_zone)
		VALUES ($1, 'Season two', 10000, 'EUR', now() + interval '1 day', 'Europe/Paris') RETURNING id`, show.ID).Scan(&campaign); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO pledges (campaign_id, amount, currency, backer_email, status, token, passkey, needs_action_since, failure) VALUES
		($1, 2500, 'EUR', 'auth@example.com', 'needs_action', 'pl_tokauth', 'pk1', now(), 'authentication_required: the bank asks'),
		($1, 1000, 'EUR', 'ok@example.com', 'active', 'pl_tokok', 'pk2', NULL, ''),
		($1, 1000, 'EUR', 'gone@example.com', 'cancelled', 'pl_tokgone', 'pk3', NULL, '')`, campaign)
	if _, err := billing.PostUpdate(ctx, db, campaign, "Shooting starts", "We start on Monday."); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := svc.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list, err := mail.ListOutbox(ctx, db, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	byTo := map[string][]mail.Entry{}
	for _, e := range list {
		byTo[e.To] = append(byTo[e.To], e)
	}
	auth := byTo["auth@example.com"]
	if len(auth) != 2 { // the notice and the update
		t.Fatalf("auth@ got %d messages: %+v", len(auth), auth)
	}
	var notice mail.Entry
	for _, e := range auth {
		if strings.HasPrefix(e.Subject, "Action needed") {
			notice = e
		}
	}
	if !strings.Contains(notice.Body, "http://fanseed.test/pledges/pl_tokauth/pay") || !strings.Contains(notice.Body, "authentication_required") ||
		!notice.Secret {
		t.Fatalf("notice %q:\n%s", notice.Subject, notice.Body)
	}
	if len(byTo["ok@example.com"]) != 1 || byTo["ok@example.com"][0].Subject != "Season two: Shooting starts" || len(byTo["gone@example.com"]) != 0 {
		t.Fatalf("updates: %+v", byTo)
	}
	// A day later, a reminder.
	exec(`UPDATE pledges SET notice_sent_at = now() - interval '25 hours' WHERE token = 'pl_tokauth'`)
	if _, err := svc.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ = mail.ListOutbox(ctx, db, 0, 100)
	reminders := 0
	for _, e := range list {
		if strings.HasPrefix(e.Subject, "Reminder: Action needed") {
			reminders++
		}
	}
	if reminders != 1 {
		t.Fatalf("%d reminders, want 1", reminders)
	}
}
