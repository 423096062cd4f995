package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// The offline test checkout stands in for Stripe Checkout when there is no Stripe key: it
// completes a payment by sending the webhook endpoint the signed events Stripe would send, so
// the whole money path runs without a network.

type checkoutTestPage struct {
	layout
	Checkout billing.TestCheckout
	Show     catalog.Show
	Amount   string
	Fee      string
	Net      string
	Done     bool
	Consent  string
	Cards    []testCard
}

// testCard is a test card a backer may save on the test checkout of a pledge.
type testCard struct{ Number, Label string }

// systemViewer reads shows for public pages that know a show only by id.
var systemViewer = catalog.Account{Role: catalog.RoleAdmin}

func (s *Server) testCheckout(r *http.Request) (billing.TestCheckout, catalog.Show, error) {
	if !s.cfg.Money.Offline() {
		return billing.TestCheckout{}, catalog.Show{}, fmt.Errorf("test checkout with a Stripe key: %w", billing.ErrNotFound)
	}
	c, err := billing.FindTestCheckout(r.Context(), s.db, chi.URLParam(r, "session"))
	if err != nil {
		return c, catalog.Show{}, err
	}
	show, err := catalog.FindShowByID(r.Context(), s.db, c.ShowID, systemViewer)
	return c, show, err
}

func (s *Server) handleCheckoutTest() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, show, err := s.testCheckout(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		cur, err := billing.LookupCurrency(c.Amount.Currency)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "checkout_test", &checkoutTestPage{
			layout: layout{Title: "TEST checkout"}, Checkout: c, Show: show, Amount: cur.Format(c.Amount.Amount),
			Fee: cur.Format(c.Fee), Net: cur.Format(c.Amount.Amount - c.Fee),
			Done: !c.Open(), Consent: billing.PledgeConsent,
			Cards: []testCard{{billing.TestCardSucceeds, "4242 4242 4242 4242: charged when the campaign closes"},
				{billing.TestCardAuthenticate, "4000 0027 6000 3184: the bank asks for authentication when charged"},
				{billing.TestCardDeclined, "4000 0000 0000 0341: saved, then declined when charged"}},
		})
	}
}

// handleCheckoutTestComplete pays (or cancels) a test checkout: it posts the signed events to
// this server's own webhook endpoint, then sends the payer where Stripe would.
func (s *Server) handleCheckoutTestComplete() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, show, err := s.testCheckout(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var done, cancel string
		switch c.Kind {
		case billing.KindPledge:
			done, cancel = "/pledges/"+c.PayToken+"?saved=1", "/pledges/"+c.PayToken
			c.Card = r.PostFormValue("card")
		case billing.KindPledgePayment:
			done, cancel = "/pledges/"+c.PayToken, "/pledges/"+c.PayToken+"/pay"
		case billing.KindSponsorship:
			done, cancel = "/sponsor/"+c.PayToken+"/thanks", "/sponsor/"+c.PayToken
		default:
			d, err := billing.FindDonation(r.Context(), s.db, c.RecordID)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			done, cancel = thanksPath(show.Slug, d), "/s/"+url.PathEscape(show.Slug)+"/donate/cancelled"
		}
		if r.PostFormValue("action") == "cancel" {
			http.Redirect(w, r, cancel, http.StatusSeeOther)
			return
		}
		if c.Open() {
			for _, payload := range c.Events(time.Now()) {
				if err := s.postOwnWebhook(r, payload); err != nil {
					s.fail(w, r, err)
					return
				}
			}
		}
		http.Redirect(w, r, done, http.StatusSeeOther)
	}
}

func (s *Server) postOwnWebhook(r *http.Request, payload []byte) error {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.absoluteURL(r, "/webhooks/stripe"), bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", billing.SignEvent(payload, s.cfg.Money.WebhookSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("test checkout: post webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("test checkout: webhook answered %s", resp.Status)
	}
	return nil
}
