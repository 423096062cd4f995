package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fanseed/fanseed/billing"
)

type manageDonationPage struct {
	layout
	Donation billing.ManagedDonation
	Token    string
	TestMode bool
	Amount   string            // the new amount typed, to show again with its error
	Errors   map[string]string // by field
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

// handleDonationManageAction cancels the monthly donation or changes its amount (offline test
// mode, through a new monthly donation that replaces it once paid), or sends the donor to
// Stripe's customer portal to change or cancel it.
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
		case "change":
			cur, _ := billing.LookupCurrency(d.Currency)
			lo, hi, _, _ := billing.DonationLimits(d.Currency)
			typed := strings.TrimSpace(r.PostFormValue("amount"))
			amount, perr := cur.Parse(typed)
			msg := ""
			switch {
			case typed == "":
				msg = "Type the new amount a month."
			case perr != nil:
				msg = "Amount must be a number such as " + cur.Format(lo*5) + "."
			case amount < lo || amount > hi:
				msg = "Amount must be from " + cur.Format(lo) + " to " + cur.Format(hi) + " " + cur.Code + "."
			case billing.CheckStripeStep(amount, cur.Code) != nil:
				msg = "Amount must be a whole multiple of " + cur.Format(billing.StripeStep(cur.Code)) + " " + cur.Code + "."
			case amount == d.Amount:
				msg = "That is the amount you give now."
			}
			if msg != "" {
				p := &manageDonationPage{layout: layout{Title: "Your monthly donation"}, Donation: d, Token: token,
					TestMode: s.cfg.Money.Offline(), Amount: typed, Errors: map[string]string{"amount": msg}}
				s.render(w, r, http.StatusBadRequest, "donation_manage", p)
				return
			}
			next, err := s.cfg.Money.ChangeMonthlyOffline(r.Context(), d.Donation, amount)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			s.startDonationCheckout(w, r, d.ShowSlug, d.ShowTitle, next)
		default:
			s.fail(w, r, fmt.Errorf("%w: action must be cancel, change or portal", billing.ErrInvalid))
		}
	}
}
