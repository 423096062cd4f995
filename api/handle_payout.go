package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/fanseed/fanseed/billing"
)

type payoutsPage struct {
	layout
	Period   string
	Payouts  []billing.Payout
	Error    string
	TestMode bool
}

func (s *Server) payoutsPage(r *http.Request, period string) (*payoutsPage, error) {
	list, err := billing.ListPayouts(r.Context(), s.db, "")
	if err != nil {
		return nil, err
	}
	return &payoutsPage{layout: layout{Title: "Payouts"}, Period: period, Payouts: list, TestMode: s.cfg.Money.Offline()}, nil
}

// lastPeriod is the month before now, the usual period to pay out.
func lastPeriod(now time.Time) string {
	return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0).Format("2006-01")
}

func (s *Server) handlePayouts() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.payoutsPage(r, lastPeriod(time.Now()))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if r.URL.Query().Get("ran") != "" {
			p.Flash = "Payout run finished."
		}
		s.render(w, r, http.StatusOK, "payouts", p)
	}
}

// handlePayoutRun runs the payouts of a period, as `fanseed payouts run --period` does.
func (s *Server) handlePayoutRun() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		period := strings.TrimSpace(r.PostFormValue("period"))
		if _, err := billing.PeriodEnd(period, time.Now()); err != nil {
			p, err := s.payoutsPage(r, period)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			p.Error = "Period must be a month that has begun, such as " + lastPeriod(time.Now()) + "."
			s.render(w, r, http.StatusBadRequest, "payouts", p)
			return
		}
		if _, err := s.cfg.Money.RunPayouts(r.Context(), period, billing.PayoutOptions{}); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/admin/payouts?ran="+period, http.StatusSeeOther)
	}
}
