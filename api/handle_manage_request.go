package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"golang.org/x/time/rate"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/mail"
)

// How often one address may ask for management links: a burst of manageBurst, then one every
// manageEvery. One message per donor address and show goes out per manageWindow whatever.
const (
	manageBurst  = 5
	manageEvery  = time.Minute
	manageWindow = 10 * time.Minute
)

// addrLimiter limits requests per client address, forgetting addresses idle for an hour.
type addrLimiter struct {
	mu    sync.Mutex
	every time.Duration
	burst int
	seen  map[string]*addrLimit
}

type addrLimit struct {
	lim  *rate.Limiter
	last time.Time
}

func (l *addrLimiter) allow(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.seen == nil || len(l.seen) > 100_000 {
		for a, e := range l.seen {
			if now.Sub(e.last) > time.Hour {
				delete(l.seen, a)
			}
		}
		if l.seen == nil || len(l.seen) > 100_000 {
			l.seen = map[string]*addrLimit{}
		}
	}
	e, ok := l.seen[addr]
	if !ok {
		e = &addrLimit{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.seen[addr] = e
	}
	e.last = now
	return e.lim.AllowN(now, 1)
}

type donationFindPage struct {
	layout
	ShowTitle, ShowSlug, Email, Error string
}

// handleDonationFind is the form a donor asks for the links that manage their monthly
// donations with (the fan page carries the same form).
func (s *Server) handleDonationFind() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := catalog.FindShowBySlug(r.Context(), s.db, chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "donation_find", &donationFindPage{layout: layout{Title: "Manage your monthly donation"},
			ShowTitle: show.Title, ShowSlug: show.Slug})
	}
}

// handleDonationFindSend emails the address a link for each of its running monthly donations
// to the show. The answer is the same whether the address gives monthly or not, so that it
// tells nobody who does; requests are limited per client address, and one message per donor
// address and show goes out per manageWindow.
func (s *Server) handleDonationFindSend() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := catalog.FindShowBySlug(r.Context(), s.db, chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		email := strings.TrimSpace(r.PostFormValue("email"))
		page := &donationFindPage{layout: layout{Title: "Manage your monthly donation"}, ShowTitle: show.Title, ShowSlug: show.Slug, Email: email}
		if msg := catalog.CheckEmail(email); msg != "" {
			page.Error = msg
			s.render(w, r, http.StatusBadRequest, "donation_find", page)
			return
		}
		if !s.manageLimit.allow(clientAddr(r)) {
			w.Header().Set("Retry-After", fmt.Sprint(int(manageEvery.Seconds())))
			page.Error = "Too many requests from your network: try again in a few minutes."
			s.render(w, r, http.StatusTooManyRequests, "donation_find", page)
			return
		}
		base := s.absoluteURL(r, "")
		err = pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
			ds, err := billing.ActiveMonthlyDonations(r.Context(), tx, show.ID, email)
			if err != nil || len(ds) == 0 {
				return err
			}
			var links strings.Builder
			for _, d := range ds {
				token, hash := catalog.NewLinkToken()
				if err := billing.AddManageLink(r.Context(), tx, d.ID, hash); err != nil {
					return err
				}
				since := d.CreatedAt
				if d.PaidAt != nil {
					since = *d.PaidAt
				}
				fmt.Fprintf(&links, "%s a month, since %s:\n%s\n\n", d.Money(), since.UTC().Format("2006-01-02"),
					tokenLink(base, "/donations/manage", token))
			}
			// To the address the receipts went to, which the typed one matches but for case.
			to := email
			if ds[0].DonorEmail != nil {
				to = *ds[0].DonorEmail
			}
			created, err := s.mail.Send(r.Context(), tx, manageLinksMessage(show, to, links.String()))
			if err == nil && !created {
				return errAlreadySent // rolls back the links of a message that will not go out
			}
			return err
		})
		if err != nil && !errors.Is(err, errAlreadySent) {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "notice", &noticePage{layout: layout{Title: "Check your email"}, Heading: "Check your email",
			Paragraphs: []string{"If " + email + " gives monthly to " + show.Title + ", we emailed it a link to manage each donation. The links work for 7 days."},
			Links:      []noticeLink{{"/s/" + show.Slug, "Back to " + show.Title}}})
	}
}

func manageLinksMessage(show catalog.Show, email, links string) mail.Message {
	return mail.Message{
		Key: fmt.Sprintf("manage-links:%d:%s:%d", show.ID, hashPrefix(strings.ToLower(email)), window(manageWindow)),
		To:  email, Secret: true,
		Subject: "Manage your monthly donation to " + oneLine(show.Title),
		Body: fmt.Sprintf(`Hello,

You asked, on the page of %s, for links to manage your monthly donations. Open one to change the amount or cancel (keep the links to yourself):

%sThe links work for 7 days; the one in each receipt keeps working too.

If you did not ask for this, ignore this message: nothing changed.
`, oneLine(show.Title), links),
	}
}
