package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// The creator's side of campaigns: the list and the form of a new one, and each campaign's
// dashboard (pledges over time and by state, the money charged) with its tiers, updates,
// launch, cancel and refund.

// campaignForm is the campaign form as typed.
type campaignForm struct {
	Title, Story, Goal, Currency, Deadline, TimeZone, Funding, Stretch, Plan, FeePolicy string
}

type campaignsPage struct {
	layout
	Show       catalog.Show
	Campaigns  []billing.Campaign
	Form       campaignForm
	Error      string
	Currencies []string
}

func (s *Server) handleCampaigns() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.renderCampaigns(w, r, show, campaignForm{Currency: show.Currency, TimeZone: "UTC", Funding: "all_or_nothing"}, "", http.StatusOK)
	}
}

func (s *Server) renderCampaigns(w http.ResponseWriter, r *http.Request, show catalog.Show, form campaignForm, msg string, status int) {
	list, err := billing.ListCampaigns(r.Context(), s.db, show.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "campaigns", &campaignsPage{layout: layout{Title: "Campaigns of " + show.Title}, Show: show, Campaigns: list,
		Form: form, Error: msg, Currencies: billing.CurrencyCodes()})
}

// parseCampaignForm reads the form into the service's input; a message names a bad field.
func parseCampaignForm(r *http.Request) (campaignForm, billing.CampaignInput, string) {
	f := campaignForm{}
	for k, dst := range map[string]*string{"title": &f.Title, "story": &f.Story, "goal": &f.Goal, "currency": &f.Currency,
		"deadline": &f.Deadline, "time_zone": &f.TimeZone, "funding": &f.Funding, "stretch": &f.Stretch, "plan": &f.Plan,
		"fee_policy": &f.FeePolicy} {
		*dst = strings.TrimSpace(r.PostFormValue(k))
	}
	in := billing.CampaignInput{Title: f.Title, Story: f.Story, Currency: f.Currency, TimeZone: f.TimeZone,
		AllOrNothing: f.Funding != "keep_what_it_raises", FeePolicy: f.FeePolicy}
	cur, err := billing.LookupCurrency(f.Currency)
	if err != nil {
		return f, in, "Currency: choose one of the list."
	}
	if in.Goal, err = cur.Parse(f.Goal); err != nil {
		return f, in, "Goal: type an amount such as " + cur.Format(500000) + "."
	}
	loc, err := time.LoadLocation(f.TimeZone)
	if err != nil || f.TimeZone == "" {
		return f, in, "Time zone: type a time zone name such as Europe/Paris."
	}
	if in.Deadline, err = time.ParseInLocation("2006-01-02T15:04", f.Deadline, loc); err != nil {
		return f, in, "Deadline: give a date and time."
	}
	for i, line := range strings.Split(f.Stretch, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		amount, desc, _ := strings.Cut(line, " ")
		v, err := cur.Parse(amount)
		if err != nil {
			return f, in, fmt.Sprintf("Stretch goals: line %d must be an amount, a space and what it pays for.", i+1)
		}
		in.Stretch = append(in.Stretch, billing.StretchGoal{Amount: v, Description: desc})
	}
	for i, line := range strings.Split(f.Plan, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		party, bps, _ := strings.Cut(line, " ")
		pid, err1 := strconv.ParseInt(strings.TrimSpace(party), 10, 64)
		n, err2 := strconv.Atoi(strings.TrimSpace(bps))
		if err1 != nil || err2 != nil {
			return f, in, fmt.Sprintf("Share plan: line %d must be a party number, a space and its basis points (7000 for 70%%).", i+1)
		}
		in.OwnPlan = append(in.OwnPlan, billing.PlanLine{PartyID: pid, BasisPoints: n})
	}
	return f, in, ""
}

func (s *Server) handleCampaignCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		form, in, msg := parseCampaignForm(r)
		if msg != "" {
			s.renderCampaigns(w, r, show, form, msg, http.StatusBadRequest)
			return
		}
		by := accountFrom(r.Context()).ID
		c, err := s.cfg.Money.CreateCampaign(r.Context(), show.ID, in, &by)
		if st := statusOf(err); st == http.StatusBadRequest || st == http.StatusConflict {
			s.renderCampaigns(w, r, show, form, userMessage(err.Error()), st)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/campaigns/%d", show.ID, c.ID), http.StatusSeeOther)
	}
}

type campaignManagePage struct {
	layout
	Show       catalog.Show
	Campaign   billing.Campaign
	Form       campaignForm
	Tiers      []campaignTier
	Progress   billing.Progress
	Collected  string
	Pledged    string
	States     map[string]int64
	Pledges    []billing.Pledge
	Chart      any
	Updates    []billing.Update
	Error      string
	Currencies []string
	PublicURL  string
	EmbedCode  string
}

// managedCampaign loads the campaign of the URL, if it is of the show of the URL, which the
// account may manage.
func (s *Server) managedCampaign(r *http.Request) (catalog.Show, billing.Campaign, error) {
	show, err := s.showFromURL(r)
	if err != nil {
		return show, billing.Campaign{}, err
	}
	id, err := campaignID(r)
	if err != nil {
		return show, billing.Campaign{}, err
	}
	c, err := billing.FindCampaign(r.Context(), s.db, id)
	if err == nil && c.ShowID != show.ID {
		err = billing.ErrNotFound
	}
	return show, c, err
}

func (s *Server) renderCampaignManage(w http.ResponseWriter, r *http.Request, show catalog.Show, c billing.Campaign, msg string, status int) {
	ctx := r.Context()
	cur, _ := billing.LookupCurrency(c.Currency)
	p := &campaignManagePage{layout: layout{Title: c.Title}, Show: show, Campaign: c, Error: msg, Currencies: billing.CurrencyCodes(),
		PublicURL: s.absoluteURL(r, "/campaigns/"+strconv.FormatInt(c.ID, 10))}
	p.EmbedCode = `<iframe src="` + p.PublicURL + `/embed" width="320" height="150" title="` + c.Title + `"></iframe>`
	p.Form = campaignForm{Title: c.Title, Story: c.Story, Goal: cur.Format(c.Goal), Currency: c.Currency,
		Deadline: c.Deadline.In(c.Location()).Format("2006-01-02T15:04"), TimeZone: c.TimeZone, Funding: "all_or_nothing"}
	if !c.AllOrNothing {
		p.Form.Funding = "keep_what_it_raises"
	}
	goals, err := billing.StretchGoals(ctx, s.db, c.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, g := range goals {
		p.Form.Stretch += cur.Format(g.Amount) + " " + g.Description + "\n"
	}
	tiers, err := billing.Tiers(ctx, s.db, c.ID)
	for _, t := range tiers {
		p.Tiers = append(p.Tiers, campaignTier{Tier: t, MinimumText: cur.Format(t.Minimum) + " " + cur.Code, SoldOut: t.Left() == 0})
	}
	if err == nil {
		if p.Progress, err = billing.CampaignProgress(ctx, s.db, c.ID); err == nil {
			if p.States, err = billing.PledgeStates(ctx, s.db, c.ID); err == nil {
				if p.Pledges, err = billing.CampaignPledges(ctx, s.db, c.ID); err == nil {
					p.Updates, err = billing.Updates(ctx, s.db, c.ID)
				}
			}
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Pledged, p.Collected = cur.Format(p.Progress.Pledged)+" "+cur.Code, cur.Format(p.Progress.Collected)+" "+cur.Code
	days, err := billing.PledgeDays(ctx, s.db, c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	labels := make([]string, len(days))
	pledged, collected := make([]float64, len(days)), make([]float64, len(days))
	unit := 1.0
	for range cur.Exponent {
		unit *= 10
	}
	for i, d := range days {
		labels[i] = d.Day.Format("2006-01-02")
		pledged[i], collected[i] = float64(d.Pledged)/unit, float64(d.Collected)/unit
	}
	p.Chart = barChart("Pledges over time", labels, []chartSeries{{Name: "Pledged", Color: "#2563eb", Values: pledged},
		{Name: "Charged", Color: "#16a34a", Values: collected}}, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) })
	s.render(w, r, status, "campaign_manage", p)
}

func (s *Server) handleCampaignManage() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, c, err := s.managedCampaign(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.renderCampaignManage(w, r, show, c, "", http.StatusOK)
	}
}

// campaignAction runs one of the campaign's POST actions and goes back to its dashboard, or
// shows the dashboard with the error when the input was refused.
func (s *Server) campaignAction(act func(r *http.Request, show catalog.Show, c billing.Campaign) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, c, err := s.managedCampaign(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		msg, err := act(r, show, c)
		if st := statusOf(err); err != nil && (st == http.StatusBadRequest || st == http.StatusConflict) {
			if msg == "" {
				msg = userMessage(err.Error())
			}
			if fresh, ferr := billing.FindCampaign(r.Context(), s.db, c.ID); ferr == nil {
				c = fresh
			}
			s.renderCampaignManage(w, r, show, c, msg, st)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/campaigns/%d", show.ID, c.ID), http.StatusSeeOther)
	}
}

func (s *Server) handleCampaignUpdate() http.HandlerFunc {
	return s.campaignAction(func(r *http.Request, _ catalog.Show, c billing.Campaign) (string, error) {
		_, in, msg := parseCampaignForm(r)
		if msg != "" {
			return msg, billing.ErrInvalid
		}
		_, err := s.cfg.Money.UpdateCampaign(r.Context(), c.ID, in)
		return "", err
	})
}

func (s *Server) handleTierCreate() http.HandlerFunc {
	return s.campaignAction(func(r *http.Request, _ catalog.Show, c billing.Campaign) (string, error) {
		cur, _ := billing.LookupCurrency(c.Currency)
		minimum, err := cur.Parse(strings.TrimSpace(r.PostFormValue("minimum")))
		if err != nil {
			return "Minimum: type an amount such as " + cur.Format(2500) + ".", billing.ErrInvalid
		}
		in := billing.TierInput{Title: r.PostFormValue("title"), Description: r.PostFormValue("description"), Minimum: minimum,
			EarlyAccess: r.PostFormValue("early_access") != "", Credits: r.PostFormValue("credits") != "", Download: r.PostFormValue("download") != ""}
		if q := strings.TrimSpace(r.PostFormValue("quantity")); q != "" {
			n, err := strconv.ParseInt(q, 10, 32)
			if err != nil || n < 0 {
				return "Quantity: a whole number, or empty for unlimited.", billing.ErrInvalid
			}
			in.Quantity = int32(n)
		}
		if m := strings.TrimSpace(r.PostFormValue("delivery_month")); m != "" {
			if in.DeliveryMonth, err = time.Parse("2006-01", m); err != nil {
				return "Estimated delivery: a month such as 2027-03.", billing.ErrInvalid
			}
		}
		_, err = billing.AddTier(r.Context(), s.db, c.ID, in)
		return "", err
	})
}

func (s *Server) handleCampaignLaunch() http.HandlerFunc {
	return s.campaignAction(func(r *http.Request, _ catalog.Show, c billing.Campaign) (string, error) {
		_, err := s.cfg.Money.LaunchCampaign(r.Context(), c.ID)
		return "", err
	})
}

func (s *Server) handleCampaignCancel() http.HandlerFunc {
	return s.campaignAction(func(r *http.Request, _ catalog.Show, c billing.Campaign) (string, error) {
		return "", s.cfg.Money.CancelCampaign(r.Context(), c.ID)
	})
}

func (s *Server) handleCampaignRefund() http.HandlerFunc {
	return s.campaignAction(func(r *http.Request, _ catalog.Show, c billing.Campaign) (string, error) {
		_, err := s.cfg.Money.RefundCampaign(r.Context(), c.ID, accountFrom(r.Context()).Email, func(_ context.Context, payload []byte) error { return s.postOwnWebhook(r, payload) })
		return "", err
	})
}

func (s *Server) handleCampaignUpdatePost() http.HandlerFunc {
	return s.campaignAction(func(r *http.Request, _ catalog.Show, c billing.Campaign) (string, error) {
		_, err := billing.PostUpdate(r.Context(), s.db, c.ID, r.PostFormValue("title"), r.PostFormValue("body"))
		return "", err
	})
}
