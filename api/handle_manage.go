package api

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/fanseed/fanseed/billing"
)

type manageDonationPage struct {
	layout
	Donation billing.ManagedDonation
	Token    string
	TestMode bool
}

// handleDonationManage is the page a monthly donation's receipt links to: anyone with the
// link manages that one donation.
func (s *Server) handleDonationManage() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		d, err := billing.DonationByManageToken(r.Context(), s.db, token)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &manageDonationPage{layout: layout{Title: "Your monthly donation"}, Donation: d, Token: token, TestMode: s.cfg.Money.Offline()}
		if r.URL.Query().Get("cancelled") != "" {
			p.Flash = "Your monthly donation is cancelled."
		}
		s.render(w, r, http.StatusOK, "donation_manage", p)
	}
}

// handleDonationManageAction cancels the monthly donation (offline test mode) or sends the
// donor to Stripe's customer portal to change or cancel it.
func (s *Server) handleDonationManageAction() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := r.PostFormValue("token")
		d, err := billing.DonationByManageToken(r.Context(), s.db, token)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		back := "/donations/manage?token=" + url.QueryEscape(token)
		switch r.PostFormValue("action") {
		case "cancel":
			if err := s.cfg.Money.CancelMonthlyOffline(r.Context(), d.ID); err != nil {
				s.fail(w, r, err)
				return
			}
			http.Redirect(w, r, back+"&cancelled=1", http.StatusSeeOther)
		case "portal":
			target, err := s.cfg.Money.ManageDonation(r.Context(), d.Donation, s.absoluteURL(r, back))
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if target == "" {
				target = back
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
		default:
			s.fail(w, r, fmt.Errorf("%w: action must be cancel or portal", billing.ErrInvalid))
		}
	}
}
