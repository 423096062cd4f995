package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/fanseed/fanseed/billing"
)

// The admin's refunds page lists recent payments with what was refunded and any dispute, and
// refunds one through Stripe (offline, through the signed event Stripe would send): the ledger
// changes when that event is applied, never here.

type refundsPage struct {
	layout
	Payments []billing.PaymentLine
	Requests []billing.RefundRequest
	Charge   string // the payment the error is about
	Amount   string
	Reason   string
	Error    string
	TestMode bool
}

func (s *Server) refundsPage(r *http.Request) (*refundsPage, error) {
	p := &refundsPage{layout: layout{Title: "Refunds"}, TestMode: s.cfg.Money.Offline()}
	var err error
	if p.Payments, err = billing.RecentPayments(r.Context(), s.db, 100); err != nil {
		return nil, err
	}
	if p.Requests, err = billing.RecentRefundRequests(r.Context(), s.db, 50); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Server) handleRefunds() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.refundsPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if id := r.URL.Query().Get("sent"); id != "" {
			if n, err := strconv.ParseInt(id, 10, 64); err == nil {
				if req, err := billing.FindRefundRequest(r.Context(), s.db, n); err == nil {
					p.Flash = "Refund of " + req.Money().String() + " on " + req.ChargeID +
						" sent; the ledger books it when Stripe's event is applied."
				}
			}
		}
		s.render(w, r, http.StatusOK, "refunds", p)
	}
}

// handleRefundCreate refunds a payment, as `fanseed refund` does.
func (s *Server) handleRefundCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ask := billing.RefundAsk{Charge: r.PostFormValue("charge"), Amount: r.PostFormValue("amount"),
			Reason: r.PostFormValue("reason"), By: accountFrom(r.Context()).Email}
		deliver := func(_ context.Context, payload []byte) error { return s.postOwnWebhook(r, payload) }
		req, err := s.cfg.Money.RequestRefund(r.Context(), ask, deliver)
		if errors.Is(err, billing.ErrInvalid) {
			p, perr := s.refundsPage(r)
			if perr != nil {
				s.fail(w, r, perr)
				return
			}
			p.Charge, p.Amount, p.Reason = strings.TrimSpace(ask.Charge), ask.Amount, ask.Reason
			p.Error = userMessage(err.Error())
			s.render(w, r, http.StatusBadRequest, "refunds", p)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/admin/refunds?sent="+strconv.FormatInt(req.ID, 10), http.StatusSeeOther)
	}
}
