package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/mail"
)

// Every is how often the job looks for money to tell of.
const Every = 5 * time.Second

// batch is how many messages of a kind one transaction writes.
const batch = 100

// Service finds what is due and writes the messages.
type Service struct {
	DB      *pgxpool.Pool
	Mail    *mail.Service
	BaseURL func() string // the site's public URL, for links
	Log     *slog.Logger
}

// SendDue writes every message due, in batches, and reports how many it wrote.
func (s *Service) SendDue(ctx context.Context) (int, error) {
	total := 0
	for _, step := range []func(context.Context, pgx.Tx) (int, error){s.receipts, s.sponsorships, s.payouts, s.pledgeNotices, s.campaignUpdates} {
		for {
			n := 0
			err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
				var err error
				n, err = step(ctx, tx)
				return err
			})
			if err != nil {
				return total, err
			}
			total += n
			if n < batch {
				break
			}
		}
	}
	return total, nil
}

func (s *Service) receipts(ctx context.Context, tx pgx.Tx) (int, error) {
	due, err := billing.DueReceipts(ctx, tx, batch)
	if err != nil {
		return 0, err
	}
	base := s.BaseURL()
	for _, d := range due {
		var hash []byte
		manage := ""
		if d.Monthly {
			var token string
			token, hash = catalog.NewLinkToken()
			manage = fmt.Sprintf("\nTo change the amount or cancel your monthly donation, open this link (keep it to yourself):\n%s/donations/manage?token=%s\n",
				base, url.QueryEscape(token))
		}
		what := "donation"
		if d.Monthly {
			what = "monthly donation"
		}
		body := fmt.Sprintf(`Thank you for your %s to %s.

Amount: %s
Show: %s (%s/s/%s)
Date: %s
Receipt number: D-%d
%s
Fanseed received this payment for the show's creator and their partners.
`, what, d.ShowTitle, d.Money(), d.ShowTitle, base, d.ShowSlug, d.PaidAt.UTC().Format("2006-01-02"), d.DonationID, manage)
		if _, err := s.Mail.Send(ctx, tx, mail.Message{Key: fmt.Sprintf("receipt:donation:%d", d.DonationID), To: d.Email,
			Subject: "Your receipt: " + d.Money().String() + " to " + d.ShowTitle, Body: body, Secret: d.Monthly}); err != nil {
			return 0, err
		}
		if err := billing.MarkReceiptSent(ctx, tx, d.DonationID, hash); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

func (s *Service) sponsorships(ctx context.Context, tx pgx.Tx) (int, error) {
	due, err := billing.DueSponsorships(ctx, tx, batch)
	if err != nil {
		return 0, err
	}
	base := s.BaseURL()
	for _, d := range due {
		owner, err := catalog.FindAccountByID(ctx, tx, d.OwnerID)
		if err != nil {
			return 0, err
		}
		body := fmt.Sprintf(`Hello %s,

%s paid their sponsorship of %s.

Amount: %s
Paid: %s

It is split by the show's shares: %s/shows/%d/sponsorships
`, owner.Name, d.SponsorName, d.ShowTitle, d.Money(), d.PaidAt.UTC().Format("2006-01-02"), base, d.ShowID)
		if _, err := s.Mail.Send(ctx, tx, mail.Message{Key: fmt.Sprintf("sponsorship-paid:%d", d.ID), To: owner.Email,
			Subject: fmt.Sprintf("%s paid %s for %s", d.SponsorName, d.Money(), d.ShowTitle), Body: body}); err != nil {
			return 0, err
		}
		if err := billing.MarkSponsorshipNoticeSent(ctx, tx, d.ID); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

func (s *Service) payouts(ctx context.Context, tx pgx.Tx) (int, error) {
	due, err := billing.DuePayouts(ctx, tx, batch)
	if err != nil {
		return 0, err
	}
	base := s.BaseURL()
	for _, d := range due {
		to, name := "", d.PartyName
		if d.AccountID != nil {
			a, err := catalog.FindAccountByID(ctx, tx, *d.AccountID)
			if err != nil {
				return 0, err
			}
			to, name = a.Email, a.Name
		} else if d.PartyEmail != nil {
			to = *d.PartyEmail
		}
		if to != "" {
			body := fmt.Sprintf(`Hello %s,

Fanseed sent you a payout of %s for %s, as %s. It reaches your bank on Stripe's schedule.

Your statement: %s/statements/%d?period=%s
`, name, d.Money(), d.Period, d.PartyName, base, d.PartyID, d.Period)
			if _, err := s.Mail.Send(ctx, tx, mail.Message{Key: fmt.Sprintf("payout:%d", d.ID), To: to,
				Subject: fmt.Sprintf("Payout sent: %s for %s", d.Money(), d.Period), Body: body}); err != nil {
				return 0, err
			}
		}
		if err := billing.MarkPayoutNoticeSent(ctx, tx, d.ID); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// Args is the periodic job that writes what is due.
type Args struct{}

// Kind names the job for River.
func (Args) Kind() string { return "notify_due" }

// InsertOpts puts the job on the mail queue.
func (Args) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: mail.Queue, MaxAttempts: 3} }

// Worker works Args jobs.
type Worker struct {
	river.WorkerDefaults[Args]
	svc *Service
}

// Work writes what is due.
func (w *Worker) Work(ctx context.Context, _ *river.Job[Args]) error {
	n, err := w.svc.SendDue(ctx)
	if n > 0 {
		w.svc.Log.Info("money notices written", slog.Int("messages", n))
	}
	return err
}

// AddWorkers registers the job's worker.
func AddWorkers(workers *river.Workers, s *Service) error {
	return river.AddWorkerSafely(workers, &Worker{svc: s})
}

// PeriodicJob runs the job every Every, and at start.
func PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(Every),
		func() (river.JobArgs, *river.InsertOpts) { return Args{}, nil }, &river.PeriodicJobOpts{RunOnStart: true})
}

// pledgeNotices tells a backer whose off-session charge needs them (their bank asks for
// authentication, or the card was declined) how to pay on-session: once, then a reminder a
// day until the pledge is paid or dropped after 7 days.
func (s *Service) pledgeNotices(ctx context.Context, tx pgx.Tx) (int, error) {
	due, err := billing.DuePledgeNotices(ctx, tx, batch)
	if err != nil {
		return 0, err
	}
	base := s.BaseURL()
	for _, d := range due {
		until := d.Since.Add(billing.NeedsActionFor).UTC().Format("2 Jan 2006 15:04 MST")
		subject := "Action needed: your pledge of " + d.Money().String() + " to " + d.CampaignTitle
		if d.Reminders > 0 {
			subject = "Reminder: " + subject
		}
		body := fmt.Sprintf(`The campaign %q reached its goal, and your pledge of %s could not be charged:
%s

To pay it yourself, open this link (keep it to yourself):
%s/pledges/%s/pay

If it is not paid by %s, the pledge is dropped and its reward released.
`, d.CampaignTitle, d.Money(), d.Failure, base, url.PathEscape(d.Token), until)
		if _, err := s.Mail.Send(ctx, tx, mail.Message{Key: fmt.Sprintf("pledge-action:%d:%d", d.PledgeID, d.Reminders), To: d.Email,
			Subject: subject, Body: body, Secret: true}); err != nil {
			return 0, err
		}
		if err := billing.MarkPledgeNoticeSent(ctx, tx, d.PledgeID); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// campaignUpdates emails each update a creator posts to every backer of the campaign.
func (s *Service) campaignUpdates(ctx context.Context, tx pgx.Tx) (int, error) {
	due, err := billing.DueUpdates(ctx, tx, batch)
	if err != nil {
		return 0, err
	}
	base := s.BaseURL()
	for _, d := range due {
		body := fmt.Sprintf("%s\n\n%s\n\nThe campaign: %s/campaigns/%d\n", d.Title, d.Body, base, d.CampaignID)
		for _, to := range d.Backers {
			if _, err := s.Mail.Send(ctx, tx, mail.Message{Key: fmt.Sprintf("campaign-update:%d:%s", d.ID, to), To: to,
				Subject: d.CampaignTitle + ": " + d.Title, Body: body}); err != nil {
				return 0, err
			}
		}
		if err := billing.MarkUpdateEmailed(ctx, tx, d.ID); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}
