package api

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// donateForm is the donate form as typed.
type donateForm struct {
	Amount      string // a preset in minor units, or "custom"
	Custom      string
	Frequency   string // "once" or "monthly"
	DisplayName string
	Message     string
	Anonymous   bool
	EpisodeID   string
	Email       string // for the receipt and, monthly, the link to manage it
}

type donatePreset struct {
	Value, Label string
}

type donatePage struct {
	layout
	Show     catalog.Show
	Episode  *catalog.Episode
	Presets  []donatePreset
	Min, Max string
	Form     donateForm
	Errors   map[string]string
	Open     bool // the show has a share plan, so money can be split
	TestMode bool
	Recent   []billing.Donation
}

func (s *Server) donatePage(r *http.Request, show catalog.Show, form donateForm) (*donatePage, error) {
	cur, err := billing.LookupCurrency(show.Currency)
	if err != nil {
		return nil, err
	}
	lo, hi, presets, err := billing.DonationLimits(show.Currency)
	if err != nil {
		return nil, err
	}
	p := &donatePage{layout: layout{Title: "Support " + show.Title}, Show: show, Form: form, Errors: map[string]string{},
		Min: cur.Format(lo), Max: cur.Format(hi), TestMode: s.cfg.Money.Offline()}
	for _, v := range presets {
		p.Presets = append(p.Presets, donatePreset{Value: strconv.FormatInt(v, 10), Label: cur.Format(v)})
	}
	_, err = billing.PlanAt(r.Context(), s.db, show.ID, billing.SourceDonations, time.Now())
	switch {
	case errors.Is(err, billing.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		p.Open = true
	}
	if form.EpisodeID != "" {
		id, _ := strconv.ParseInt(form.EpisodeID, 10, 64)
		eps, err := catalog.ListEpisodes(r.Context(), s.db, show.ID)
		if err != nil {
			return nil, err
		}
		for i := range eps {
			if eps[i].ID == id {
				p.Episode = &eps[i]
			}
		}
		if p.Episode == nil {
			p.Form.EpisodeID = ""
		}
	}
	if p.Recent, err = billing.RecentDonations(r.Context(), s.db, show.ID, 5); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Server) handleDonateForm() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := catalog.FindShowBySlug(r.Context(), s.db, chi.URLParam(r, "slug"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		_, _, presets, _ := billing.DonationLimits(show.Currency)
		form := donateForm{Frequency: "once", EpisodeID: r.URL.Query().Get("episode")}
		if r.URL.Query().Get("monthly") == "1" { // the fan page's "Support monthly" button
			form.Frequency = "monthly"
		}
		if len(presets) > 1 {
			form.Amount = strconv.FormatInt(presets[1], 10)
		}
		p, err := s.donatePage(r, show, form)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "donate", p)
	}
}

// parseDonateForm validates the form; errors are keyed by field.
func parseDonateForm(r *http.Request, show catalog.Show) (donateForm, int64, map[string]string) {
	f := donateForm{
		Amount: strings.TrimSpace(r.PostFormValue("amount")), Custom: strings.TrimSpace(r.PostFormValue("custom")),
		Frequency: r.PostFormValue("frequency"), DisplayName: strings.TrimSpace(r.PostFormValue("display_name")),
		Message: strings.TrimSpace(r.PostFormValue("message")), Anonymous: r.PostFormValue("anonymous") != "",
		EpisodeID: r.PostFormValue("episode"), Email: strings.TrimSpace(r.PostFormValue("email")),
	}
	errs := map[string]string{}
	cur, _ := billing.LookupCurrency(show.Currency)
	lo, hi, presets, _ := billing.DonationLimits(show.Currency)
	var amount int64
	if f.Amount == "custom" || (f.Amount == "" && f.Custom != "") {
		f.Amount = "custom"
		v, err := cur.Parse(f.Custom)
		switch {
		case f.Custom == "":
			errs["custom"] = "Type an amount, or pick one above."
		case err != nil:
			errs["custom"] = "Amount must be a number such as " + cur.Format(presets[0]) + "."
		case v < lo || v > hi:
			errs["custom"] = "Amount must be from " + cur.Format(lo) + " to " + cur.Format(hi) + " " + cur.Code + "."
		case billing.CheckStripeStep(v, cur.Code) != nil:
			errs["custom"] = "Amount must be a whole multiple of " + cur.Format(billing.StripeStep(cur.Code)) + " " + cur.Code + "."
		default:
			amount = v
		}
	} else {
		v, err := strconv.ParseInt(f.Amount, 10, 64)
		ok := false
		for _, p := range presets {
			ok = ok || (err == nil && v == p)
		}
		if !ok {
			errs["amount"] = "Choose an amount."
		} else {
			amount = v
		}
	}
	if f.Frequency != "once" && f.Frequency != "monthly" {
		errs["frequency"] = "Choose once or monthly."
		f.Frequency = "once"
	}
	if utf8.RuneCountInString(f.DisplayName) > 60 {
		errs["display_name"] = "Name must be at most 60 characters."
	}
	if utf8.RuneCountInString(f.Message) > 500 {
		errs["message"] = "Message must be at most 500 characters."
	}
	switch {
	case f.Email == "" && f.Frequency == "monthly":
		errs["email"] = "Email is required for a monthly donation: it gets the link to change or cancel it."
	case f.Email != "":
		if msg := catalog.CheckEmail(f.Email); msg != "" {
			errs["email"] = msg
		}
	}
	return f, amount, errs
}

func (s *Server) handleDonationCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := catalog.FindShowBySlug(r.Context(), s.db, chi.URLParam(r, "slug"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		form, amount, errs := parseDonateForm(r, show)
		p, err := s.donatePage(r, show, form)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !p.Open {
			errs["form"] = "This show is not taking donations yet."
		}
		if len(errs) > 0 {
			p.Errors = errs
			s.render(w, r, http.StatusBadRequest, "donate", p)
			return
		}
		in := billing.DonationInput{ShowID: show.ID, Amount: amount, Currency: show.Currency, Monthly: form.Frequency == "monthly",
			DisplayName: form.DisplayName, Message: form.Message, Anonymous: form.Anonymous, Email: form.Email}
		if p.Episode != nil {
			in.EpisodeID = p.Episode.ID
		}
		d, err := billing.CreateDonation(r.Context(), s.db, in)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.startDonationCheckout(w, r, show.Slug, show.Title, d)
	}
}

// startDonationCheckout sends the donor to pay a recorded donation (Stripe Checkout, or the
// offline test checkout), the thank-you page's cookie set for this browser.
func (s *Server) startDonationCheckout(w http.ResponseWriter, r *http.Request, slug, showTitle string, d billing.Donation) {
	base := "/s/" + url.PathEscape(slug) + "/donate"
	title := "Donation to " + showTitle
	if d.Monthly {
		title = "Monthly donation to " + showTitle
	}
	target, err := s.cfg.Money.StartDonation(r.Context(), d, billing.CheckoutPage{
		Title:      title,
		SuccessURL: s.absoluteURL(r, thanksPath(slug, d)),
		CancelURL:  s.absoluteURL(r, base+"/cancelled"),
		TestURL:    "/checkout/test/{session}",
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: thanksCookie, Value: d.ThanksToken, Path: base + "/thanks", MaxAge: int(thanksCookieTTL.Seconds()),
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// The thank-you page names its donation by the donation's random token, and shows the amount
// only when the browser also holds that token in a cookie set as it left for the checkout: a
// sequential id shows nothing, and a shared or leaked address shows no amount elsewhere.
const (
	thanksCookie    = "fanseed_donation"
	thanksCookieTTL = 24 * time.Hour // as long as a Stripe Checkout session lives
)

func thanksPath(slug string, d billing.Donation) string {
	return "/s/" + url.PathEscape(slug) + "/donate/thanks?donation=" + url.QueryEscape(d.ThanksToken)
}

type donateDonePage struct {
	layout
	Show      catalog.Show
	Donation  *billing.Donation
	Cancelled bool
}

func (s *Server) handleDonateThanks() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := catalog.FindShowBySlug(r.Context(), s.db, chi.URLParam(r, "slug"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &donateDonePage{layout: layout{Title: "Thank you"}, Show: show}
		token := r.URL.Query().Get("donation")
		c, err := r.Cookie(thanksCookie)
		if err == nil && len(token) >= 32 && subtle.ConstantTimeCompare([]byte(c.Value), []byte(token)) == 1 {
			d, err := billing.FindDonationByThanksToken(r.Context(), s.db, token)
			switch {
			case errors.Is(err, billing.ErrNotFound):
			case err != nil:
				s.fail(w, r, err)
				return
			case d.ShowID == show.ID:
				p.Donation = &d
			}
		}
		s.render(w, r, http.StatusOK, "donate_done", p)
	}
}

func (s *Server) handleDonateCancelled() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := catalog.FindShowBySlug(r.Context(), s.db, chi.URLParam(r, "slug"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "donate_done", &donateDonePage{layout: layout{Title: "Donation cancelled"}, Show: show, Cancelled: true})
	}
}
