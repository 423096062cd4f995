package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

type connectPage struct {
	layout
	Parties    []connectParty
	Currencies []string
	TestMode   bool
	// A refused threshold: the party it was for, the field's error and what was typed.
	ErrorParty int64
	Error      string
	Form       thresholdForm
}

// connectParty is a party the account is paid as, with its payout threshold in each currency
// it is owed in or has set one for.
type connectParty struct {
	billing.Connection
	Thresholds []thresholdRow
}

type thresholdRow struct {
	billing.PayoutThreshold
	Owed billing.Money
}

type thresholdForm struct {
	Currency, Amount string
}

// FormCurrency is the currency the threshold form of a party starts on: the one just refused,
// else the first the party is owed in, else USD.
func (p *connectPage) FormCurrency(c connectParty) string {
	switch {
	case c.PartyID == p.ErrorParty && p.Form.Currency != "":
		return strings.ToUpper(p.Form.Currency)
	case len(c.Thresholds) > 0:
		return c.Thresholds[0].Currency
	}
	return "USD"
}

func (s *Server) connectPage(r *http.Request) (*connectPage, error) {
	a := accountFrom(r.Context())
	parties, err := billing.ConnectionsOfAccount(r.Context(), s.db, a.ID, vouchedEmail(a))
	if err != nil {
		return nil, err
	}
	p := &connectPage{layout: layout{Title: "Get paid"}, Currencies: billing.CurrencyCodes(), TestMode: s.cfg.Money.Offline()}
	if !a.Verified() {
		parties = nil // nothing is paid to an address nobody proved
	}
	for _, c := range parties {
		ths, err := billing.PayoutThresholds(r.Context(), s.db, c.PartyID)
		if err != nil {
			return nil, err
		}
		balances, err := billing.PartyBalances(r.Context(), s.db, c.PartyID)
		if err != nil {
			return nil, err
		}
		cp := connectParty{Connection: c}
		for _, t := range ths {
			row := thresholdRow{PayoutThreshold: t, Owed: billing.Money{Currency: t.Currency}}
			for _, b := range balances {
				if b.Currency == t.Currency {
					row.Owed = b
				}
			}
			cp.Thresholds = append(cp.Thresholds, row)
		}
		p.Parties = append(p.Parties, cp)
	}
	return p, nil
}

// handleConnect shows the parties the account is paid as, whether each has a Stripe account
// able to receive payouts, and its payout thresholds.
func (s *Server) handleConnect() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.connectPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		switch {
		case r.URL.Query().Get("returned") != "":
			p.Flash = "Back from Stripe. Your status updates as soon as Stripe tells us."
		case r.URL.Query().Get("threshold") != "":
			p.Flash = "Payout threshold saved."
		}
		s.render(w, r, http.StatusOK, "connect", p)
	}
}

// handleThreshold sets one of the account's parties' payout threshold in a currency, or
// (with "default") goes back to the currency's default.
func (s *Server) handleThreshold() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		party, err := s.formParty(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		id := party.PartyID
		form := thresholdForm{Currency: strings.TrimSpace(r.PostFormValue("currency")), Amount: strings.TrimSpace(r.PostFormValue("amount"))}
		refuse := func(msg string) {
			p, err := s.connectPage(r)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			p.ErrorParty, p.Error, p.Form = id, msg, form
			s.render(w, r, http.StatusBadRequest, "connect", p)
		}
		cur, err := billing.LookupCurrency(form.Currency)
		if err != nil {
			refuse("Currency: choose one from the list.")
			return
		}
		_, hi, _, _ := billing.DonationLimits(cur.Code)
		badAmount := fmt.Sprintf("Threshold must be an amount from 0 to %s, such as %s.", cur.Format(hi), cur.Format(10*hi/10000))
		var amount *int64
		if r.PostFormValue("default") == "" {
			v, err := cur.Parse(form.Amount)
			if err != nil {
				refuse(badAmount)
				return
			}
			amount = &v
		}
		err = billing.SetPayoutThreshold(r.Context(), s.db, id, cur.Code, amount)
		if errors.Is(err, billing.ErrInvalid) {
			refuse(badAmount) // out of the currency's range
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/connect?threshold="+cur.Code, http.StatusSeeOther)
	}
}

// handleConnectStart sends the account to Stripe's Express onboarding for one of its parties.
func (s *Server) handleConnectStart() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.formParty(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		target, err := s.cfg.Money.StartOnboarding(r.Context(), c, s.absoluteURL(r, "/connect"), s.absoluteURL(r, "/connect?returned=1"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

// formParty is the party a form names ("party"), if the account is paid as it; else ErrNotFound.
func (s *Server) formParty(r *http.Request) (billing.Connection, error) {
	a := accountFrom(r.Context())
	if !a.Verified() {
		return billing.Connection{}, errUnverified
	}
	id, _ := strconv.ParseInt(r.PostFormValue("party"), 10, 64)
	parties, err := billing.ConnectionsOfAccount(r.Context(), s.db, a.ID, vouchedEmail(a))
	if err != nil {
		return billing.Connection{}, err
	}
	for _, c := range parties {
		if c.PartyID == id {
			return c, nil
		}
	}
	return billing.Connection{}, fmt.Errorf("party %d of account %d: %w", id, a.ID, billing.ErrNotFound)
}

// vouchedEmail is the address of a partner account an operator made (vouched for), which
// stands for the parties with that address; "" for any other account.
func vouchedEmail(a *catalog.Account) string {
	if a.Role == catalog.RolePartner && a.Verified() {
		return a.Email
	}
	return ""
}
