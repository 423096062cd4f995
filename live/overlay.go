package live

import (
	"context"
	"errors"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/money"
)

// OverlayDonation is one donation as the stream's overlay shows it, moderated.
type OverlayDonation struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Amount  string `json:"amount"` // formatted, with its currency
	Message string `json:"message"`
}

// Goal is the stream's bar: what its donations in the show's currency add up to, toward the goal.
type Goal struct {
	Live     bool   `json:"live"`
	Raised   int64  `json:"raised"`
	Goal     int64  `json:"goal"` // 0: no goal set
	Currency string `json:"currency"`
	Text     string `json:"text"` // "12.00 EUR of 100.00 EUR"
}

// Overlay follows one key's show for the overlay: every poll it reads the donations paid
// since the live stream started and tells of those it has not told of, and of the goal when it
// changes. Donations made through any serve reach it, as it reads them from the database.
type Overlay struct {
	DB       Beginner
	Key      Key
	Currency string        // the show's
	Every    time.Duration // how often it polls (500 ms by default)
	AfterID  int64         // tell only of donations after this one (an EventSource's Last-Event-ID)
	FromNow  bool          // tell only of donations paid after the first poll (a new overlay)
}

// Follow calls donation and goal as things change, until ctx ends or one of them fails.
func (o *Overlay) Follow(ctx context.Context, donation func(OverlayDonation) error, goal func(Goal) error) error {
	every := o.Every
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	cur, err := money.LookupCurrency(o.Currency)
	if err != nil {
		return err
	}
	var last Goal
	first := true
	seen := map[int64]bool{}
	skip := o.FromNow
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		g := Goal{Currency: cur.Code}
		stream, err := LiveStream(ctx, o.DB, o.Key.ShowID)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		default:
			g.Live = true
			settings, err := FindSettings(ctx, o.DB, o.Key.ShowID)
			if err != nil {
				return err
			}
			g.Goal = settings.GoalAmount
			ds, err := billing.DonationsPaidSince(ctx, o.DB, o.Key.ShowID, stream.StartedAt)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if d.Currency == cur.Code {
					g.Raised += d.Amount
				}
				if d.ID <= o.AfterID || seen[d.ID] {
					continue
				}
				seen[d.ID] = true
				if skip {
					continue
				}
				name := d.DisplayName
				if d.Anonymous || name == "" {
					name = "Anonymous"
				}
				name, msg := settings.Moderate(name, d.Message)
				if err := donation(OverlayDonation{ID: d.ID, Name: name, Amount: money.Money{Amount: d.Amount, Currency: d.Currency}.String(), Message: msg}); err != nil {
					return err
				}
			}
		}
		skip = false
		g.Text = cur.Format(g.Raised) + " " + cur.Code
		if g.Goal > 0 {
			g.Text += " of " + cur.Format(g.Goal) + " " + cur.Code
		}
		if first || g != last {
			if err := goal(g); err != nil {
				return err
			}
			first, last = false, g
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
