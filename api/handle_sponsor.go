package api

import (
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// sponsorForm is the new-deal form as typed.
type sponsorForm struct {
	SponsorName, ContactEmail, PeriodStart, PeriodEnd, Episodes, Amount string
}

type sponsorshipView struct {
	billing.Sponsorship
	Link string
}

type sponsorshipsPage struct {
	layout
	Show     catalog.Show
	Deals    []sponsorshipView
	Form     sponsorForm
	Errors   map[string]string
	TestMode bool
}

func (s *Server) sponsorshipsPage(r *http.Request, show catalog.Show, form sponsorForm) (*sponsorshipsPage, error) {
	deals, err := billing.ListSponsorships(r.Context(), s.db, show.ID)
	if err != nil {
		return nil, err
	}
	p := &sponsorshipsPage{layout: layout{Title: "Sponsorships of " + show.Title}, Show: show, Form: form,
		Errors: map[string]string{}, TestMode: s.cfg.Money.Offline()}
	for _, d := range deals {
		p.Deals = append(p.Deals, sponsorshipView{Sponsorship: d, Link: s.absoluteURL(r, "/sponsor/"+d.PayToken)})
	}
	return p, nil
}

func (s *Server) handleSponsorships() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := s.sponsorshipsPage(r, show, sponsorForm{})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if r.URL.Query().Get("created") != "" {
			p.Flash = "Deal recorded. Send the sponsor its payment link."
		}
		s.render(w, r, http.StatusOK, "sponsorships", p)
	}
}

// parseSponsorForm validates the form; errors are keyed by field.
func parseSponsorForm(r *http.Request, show catalog.Show) (sponsorForm, billing.SponsorshipInput, map[string]string) {
	f := sponsorForm{}
	for k, dst := range map[string]*string{"sponsor_name": &f.SponsorName, "contact_email": &f.ContactEmail,
		"period_start": &f.PeriodStart, "period_end": &f.PeriodEnd, "episodes": &f.Episodes, "amount": &f.Amount} {
		*dst = strings.TrimSpace(r.PostFormValue(k))
	}
	errs := map[string]string{}
	in := billing.SponsorshipInput{SponsorName: f.SponsorName, ContactEmail: f.ContactEmail, Episodes: f.Episodes, Currency: show.Currency}
	if f.SponsorName == "" {
		errs["sponsor_name"] = "Sponsor name is required."
	} else if utf8.RuneCountInString(f.SponsorName) > 100 {
		errs["sponsor_name"] = "Sponsor name must be at most 100 characters."
	}
	if a, err := mail.ParseAddress(f.ContactEmail); err != nil || a.Address != f.ContactEmail || len(f.ContactEmail) > 254 {
		errs["contact_email"] = "Email must look like name@example.com."
	}
	date := func(field, v string) *time.Time {
		if v == "" {
			return nil
		}
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			errs[field] = "Date must look like 2026-11-01."
			return nil
		}
		return &t
	}
	in.PeriodStart, in.PeriodEnd = date("period_start", f.PeriodStart), date("period_end", f.PeriodEnd)
	switch {
	case in.PeriodEnd != nil && in.PeriodStart == nil && errs["period_start"] == "":
		errs["period_start"] = "Give the first day too."
	case in.PeriodStart != nil && in.PeriodEnd != nil && in.PeriodEnd.Before(*in.PeriodStart):
		errs["period_end"] = "The last day cannot be before the first."
	case in.PeriodStart == nil && f.Episodes == "" && errs["period_start"] == "":
		errs["episodes"] = "Give a period or the episodes sponsored."
	}
	if utf8.RuneCountInString(f.Episodes) > 500 {
		errs["episodes"] = "Episodes must be at most 500 characters."
	}
	cur, _ := billing.LookupCurrency(show.Currency)
	if v, err := cur.Parse(f.Amount); err != nil || v <= 0 {
		errs["amount"] = "Amount must be a number above 0, such as 500 or 499.99."
	} else if billing.CheckStripeStep(v, cur.Code) != nil {
		errs["amount"] = "Amount must be a whole multiple of " + cur.Format(billing.StripeStep(cur.Code)) + " " + cur.Code + "."
	} else {
		in.Amount = v
	}
	return f, in, errs
}

func (s *Server) handleSponsorshipCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		form, in, errs := parseSponsorForm(r, show)
		if len(errs) > 0 {
			p, err := s.sponsorshipsPage(r, show, form)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			p.Errors = errs
			s.render(w, r, http.StatusBadRequest, "sponsorships", p)
			return
		}
		if _, err := billing.CreateSponsorship(r.Context(), s.db, show.ID, &accountFrom(r.Context()).ID, in); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/sponsorships?created=1", show.ID), http.StatusSeeOther)
	}
}

func (s *Server) handleSponsorshipCancel() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		id, err := strconv.ParseInt(chi.URLParam(r, "sponsorshipID"), 10, 64)
		if err != nil {
			s.fail(w, r, fmt.Errorf("sponsorship id: %w", billing.ErrNotFound))
			return
		}
		if err := billing.CancelSponsorship(r.Context(), s.db, show.ID, id); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/sponsorships", show.ID), http.StatusSeeOther)
	}
}

type sponsorPayPage struct {
	layout
	Deal     billing.Sponsorship
	Show     catalog.Show
	Amount   string
	Thanks   bool
	TestMode bool
}

func (s *Server) sponsorPayPage(r *http.Request) (*sponsorPayPage, error) {
	sp, err := billing.FindSponsorshipByToken(r.Context(), s.db, chi.URLParam(r, "token"))
	if err != nil {
		return nil, err
	}
	show, err := catalog.FindShowByID(r.Context(), s.db, sp.ShowID, systemViewer)
	if err != nil {
		return nil, err
	}
	return &sponsorPayPage{layout: layout{Title: "Sponsor " + show.Title}, Deal: sp, Show: show,
		Amount: sp.Money().String(), TestMode: s.cfg.Money.Offline()}, nil
}

// handleSponsorPay is the page a payment link opens: the deal, and a button to pay it.
func (s *Server) handleSponsorPay() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.sponsorPayPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "sponsor_pay", p)
	}
}

func (s *Server) handleSponsorCheckout() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.sponsorPayPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		link := "/sponsor/" + p.Deal.PayToken
		target, err := s.cfg.Money.StartSponsorship(r.Context(), p.Deal, billing.CheckoutPage{
			Title:      "Sponsorship of " + p.Show.Title,
			SuccessURL: s.absoluteURL(r, link+"/thanks"),
			CancelURL:  s.absoluteURL(r, link),
			TestURL:    "/checkout/test/{session}",
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

func (s *Server) handleSponsorThanks() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.sponsorPayPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Thanks = true
		s.render(w, r, http.StatusOK, "sponsor_pay", p)
	}
}
