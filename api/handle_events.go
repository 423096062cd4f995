package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/fanseed/fanseed/billing"
)

// stuckAfter is how long an event may go unapplied before the admin page lists it: batches apply
// events within a second or two.
const stuckAfter = time.Minute

type eventsPage struct {
	layout
	Events  []billing.StuckEvent
	Ignored []billing.IgnoredType
}

// handleStuckEvents lists the Stripe events not applied a minute after they came, with why.
func (s *Server) handleStuckEvents() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := billing.StuckEvents(r.Context(), s.db, stuckAfter, 500)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &eventsPage{layout: layout{Title: "Stripe events not applied"}, Events: list}
		if p.Ignored, err = billing.IgnoredTypes(r.Context(), s.db, 100); err != nil {
			s.fail(w, r, err)
			return
		}
		if n := r.URL.Query().Get("retried"); n != "" {
			p.Flash = fmt.Sprintf("%s events put back to be applied now.", n)
		}
		s.render(w, r, http.StatusOK, "admin_events", p)
	}
}

// handleRetryEvents puts the chosen events (or, with "all", every listed one) back to be applied
// at once, as after fixing what stopped them (a show's missing share plan, say).
func (s *Server) handleRetryEvents() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			s.fail(w, r, fmt.Errorf("%w: %v", billing.ErrInvalid, err))
			return
		}
		ids := r.PostForm["event"]
		if r.PostFormValue("all") != "" {
			list, err := billing.StuckEvents(r.Context(), s.db, stuckAfter, 500)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			ids = ids[:0]
			for _, e := range list {
				ids = append(ids, e.ID)
			}
		}
		if len(ids) == 0 {
			s.fail(w, r, fmt.Errorf("%w: choose the events to try again", billing.ErrInvalid))
			return
		}
		n, err := s.cfg.Money.RetryEvents(r.Context(), ids)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/admin/events?retried=%d", n), http.StatusSeeOther)
	}
}
