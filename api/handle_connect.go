package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/fanseed/fanseed/billing"
)

type connectPage struct {
	layout
	Parties  []billing.Connection
	TestMode bool
}

// handleConnect shows the parties the account is paid as, and whether each has a Stripe
// account able to receive payouts.
func (s *Server) handleConnect() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := accountFrom(r.Context())
		parties, err := billing.ConnectionsOfAccount(r.Context(), s.db, a.ID, a.Email)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &connectPage{layout: layout{Title: "Get paid"}, Parties: parties, TestMode: s.cfg.Money.Offline()}
		if r.URL.Query().Get("returned") != "" {
			p.Flash = "Back from Stripe. Your status updates as soon as Stripe tells us."
		}
		s.render(w, r, http.StatusOK, "connect", p)
	}
}

// handleConnectStart sends the account to Stripe's Express onboarding for one of its parties.
func (s *Server) handleConnectStart() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := accountFrom(r.Context())
		id, _ := strconv.ParseInt(r.PostFormValue("party"), 10, 64)
		parties, err := billing.ConnectionsOfAccount(r.Context(), s.db, a.ID, a.Email)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, c := range parties {
			if c.PartyID != id {
				continue
			}
			target, err := s.cfg.Money.StartOnboarding(r.Context(), c, s.absoluteURL(r, "/connect"), s.absoluteURL(r, "/connect?returned=1"))
			if err != nil {
				s.fail(w, r, err)
				return
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		s.fail(w, r, fmt.Errorf("party %d of account %d: %w", id, a.ID, billing.ErrNotFound))
	}
}
