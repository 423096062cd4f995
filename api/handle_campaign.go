package api

import (
	"context"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// The public side of campaigns: the campaign page with its pledge form, the embeddable
// widget, the updates feed, a backer's pledge (change, cancel, pay on-session) and the
// backer's page of pledges.

type campaignTier struct {
	billing.Tier
	MinimumText string
	SoldOut     bool
}

type campaignStretch struct {
	billing.StretchGoal
	AmountText string
	Reached    bool
}

// campaignView is what the campaign page, its widget and its feed show.
type campaignView struct {
	Campaign    billing.Campaign
	Show        catalog.Show
	Progress    billing.Progress
	Percent     int64 // of the goal, at most 100 for the bar
	PercentText string
	GoalText    string
	PledgedText string
	DaysLeft    int64
	Open        bool // takes pledges now
	Tiers       []campaignTier
	Stretch     []campaignStretch
	Updates     []billing.Update
	Credits     []string
	BaseURL     string
}

func (s *Server) campaignView(ctx context.Context, id int64) (*campaignView, error) {
	c, err := billing.FindCampaign(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	if c.Status == billing.CampaignDraft {
		return nil, billing.ErrNotFound // not public yet
	}
	show, err := catalog.FindShowByID(ctx, s.db, c.ShowID, systemViewer)
	if err != nil {
		return nil, err
	}
	cur, err := billing.LookupCurrency(c.Currency)
	if err != nil {
		return nil, err
	}
	v := &campaignView{Campaign: c, Show: show, GoalText: cur.Format(c.Goal) + " " + cur.Code, BaseURL: s.publisher.BaseURL}
	if v.Progress, err = billing.CampaignProgress(ctx, s.db, id); err != nil {
		return nil, err
	}
	pct := v.Progress.Pledged * 100 / c.Goal
	v.Percent, v.PercentText = min(pct, 100), strconv.FormatInt(pct, 10)+"%"
	v.PledgedText = cur.Format(v.Progress.Pledged) + " " + cur.Code
	now := s.cfg.Money.Now
	at := time.Now()
	if now != nil {
		at = now()
	}
	v.Open = c.Status == billing.CampaignLive && at.Before(c.Deadline)
	if v.Open {
		v.DaysLeft = int64(c.Deadline.Sub(at).Hours()/24 + 0.999)
	}
	tiers, err := billing.Tiers(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	for _, t := range tiers {
		v.Tiers = append(v.Tiers, campaignTier{Tier: t, MinimumText: cur.Format(t.Minimum) + " " + cur.Code, SoldOut: t.Left() == 0})
	}
	goals, err := billing.StretchGoals(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	for _, g := range goals {
		v.Stretch = append(v.Stretch, campaignStretch{StretchGoal: g, AmountText: cur.Format(g.Amount) + " " + cur.Code,
			Reached: v.Progress.Pledged >= g.Amount})
	}
	if v.Updates, err = billing.Updates(ctx, s.db, id); err != nil {
		return nil, err
	}
	if v.Credits, err = billing.Credits(ctx, s.db, id); err != nil {
		return nil, err
	}
	return v, nil
}

type campaignPage struct {
	layout
	*campaignView
	TestMode bool
	Consent  string
	Form     pledgeForm
	Error    string
}

type pledgeForm struct {
	Tier, Amount, Email, Name, CreditName string
}

func campaignID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "campaignID"), 10, 64)
	if err != nil || id <= 0 {
		return 0, billing.ErrNotFound
	}
	return id, nil
}

func (s *Server) campaignPage(r *http.Request) (*campaignPage, error) {
	id, err := campaignID(r)
	if err != nil {
		return nil, err
	}
	v, err := s.campaignView(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return &campaignPage{layout: layout{Title: v.Campaign.Title}, campaignView: v, TestMode: s.cfg.Money.Offline(),
		Consent: billing.PledgeConsent}, nil
}

func (s *Server) handleCampaign() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.campaignPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Form.Tier = r.URL.Query().Get("tier")
		if a := accountFrom(r.Context()); a != nil {
			p.Form.Email, p.Form.Name = a.Email, a.Name
		}
		s.render(w, r, http.StatusOK, "campaign", p)
	}
}

// handlePledgeCreate records a pledge and sends the backer to save a card: Stripe Checkout in
// setup mode, or the offline test checkout.
func (s *Server) handlePledgeCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.campaignPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Form = pledgeForm{Tier: r.PostFormValue("tier"), Amount: strings.TrimSpace(r.PostFormValue("amount")),
			Email: strings.TrimSpace(r.PostFormValue("email")), Name: r.PostFormValue("name"), CreditName: r.PostFormValue("credit_name")}
		cur, _ := billing.LookupCurrency(p.Campaign.Currency)
		amount, err := cur.Parse(p.Form.Amount)
		if err != nil {
			p.Error = "Amount: type an amount such as " + cur.Format(1000) + "."
			s.render(w, r, http.StatusBadRequest, "campaign", p)
			return
		}
		tier, _ := strconv.ParseInt(p.Form.Tier, 10, 64)
		in := billing.PledgeInput{CampaignID: p.Campaign.ID, TierID: tier, Amount: amount, Email: p.Form.Email, Name: p.Form.Name,
			CreditName: p.Form.CreditName}
		if a := accountFrom(r.Context()); a != nil {
			in.AccountID = a.ID
		}
		pledge, err := s.cfg.Money.CreatePledge(r.Context(), in)
		if st := statusOf(err); st == http.StatusBadRequest || st == http.StatusConflict {
			p.Error = userMessage(err.Error())
			s.render(w, r, st, "campaign", p)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		target, err := s.cfg.Money.StartPledge(r.Context(), pledge, billing.CheckoutPage{
			SuccessURL: s.absoluteURL(r, "/pledges/"+pledge.Token+"?saved=1"),
			CancelURL:  s.absoluteURL(r, "/campaigns/"+strconv.FormatInt(p.Campaign.ID, 10)),
			TestURL:    "/checkout/test/{session}",
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

// handleCampaignEmbed is the widget other sites frame: progress and a link to pledge.
func (s *Server) handleCampaignEmbed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.campaignPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.allowFraming(w)
		w.Header().Set("Cache-Control", "public, max-age=60")
		s.render(w, r, http.StatusOK, "campaign_embed", p)
	}
}

// handleCampaignFeed is the RSS feed of a campaign's updates.
func (s *Server) handleCampaignFeed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := campaignID(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v, err := s.campaignView(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		link := s.absoluteURL(r, "/campaigns/"+strconv.FormatInt(id, 10))
		doc := updatesFeed{Version: "2.0", NSAtom: nsAtom, Channel: updatesChannel{Title: v.Campaign.Title + ": updates", Link: link,
			Self:        atomLink{Href: link + "/updates.rss", Rel: "self", Type: "application/rss+xml"},
			Description: "Updates from " + v.Show.Title + " on the campaign " + v.Campaign.Title, Generator: "Fanseed"}}
		for _, u := range v.Updates {
			doc.Channel.Items = append(doc.Channel.Items, updateItem{Title: u.Title, Link: link + "#update-" + strconv.FormatInt(u.ID, 10),
				Description: u.Body, PubDate: u.CreatedAt.UTC().Format(time.RFC1123Z),
				GUID: rssGUID{Value: "campaign-update-" + strconv.FormatInt(u.ID, 10)}})
		}
		out, err := xml.MarshalIndent(doc, "", "  ")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(xml.Header))
		w.Write(out)
	}
}

type pledgePage struct {
	layout
	Pledge   billing.Pledge
	Amount   string
	Tier     *billing.Tier
	View     *campaignView
	Saved    bool
	Error    string
	TestMode bool
	Early    []earlyLink // the early-access episodes the pledge entitles the backer to
}

type earlyLink struct {
	EpisodeID int64
	Title     string
	ReleaseAt time.Time
}

func (s *Server) pledgePage(r *http.Request) (*pledgePage, error) {
	p, err := billing.FindPledgeByToken(r.Context(), s.db, chi.URLParam(r, "token"))
	if err != nil {
		return nil, err
	}
	v, err := s.campaignView(r.Context(), p.CampaignID)
	if err != nil {
		return nil, err
	}
	cur, _ := billing.LookupCurrency(p.Currency)
	page := &pledgePage{layout: layout{Title: "Your pledge to " + v.Campaign.Title}, Pledge: p, Amount: cur.Format(p.Amount), View: v,
		TestMode: s.cfg.Money.Offline()}
	for i := range v.Tiers {
		if p.TierID != nil && v.Tiers[i].ID == *p.TierID {
			page.Tier = &v.Tiers[i].Tier
		}
	}
	if page.Tier != nil && page.Tier.EarlyAccess && p.Status == billing.PledgeCollected && s.earlyOn() {
		early, err := billing.EarlyEpisodes(r.Context(), s.db, p.CampaignID)
		if err != nil {
			return nil, err
		}
		eps, err := catalog.ListEpisodes(r.Context(), s.db, v.Show.ID)
		if err != nil {
			return nil, err
		}
		for _, e := range early {
			for _, ep := range eps {
				if ep.ID == e.EpisodeID && ep.Status == "published" {
					page.Early = append(page.Early, earlyLink{EpisodeID: ep.ID, Title: ep.Title, ReleaseAt: e.ReleaseAt})
				}
			}
		}
	}
	return page, nil
}

// handlePledge is a backer's pledge, from the link they were given: its state and reward, and
// until the deadline the forms that change or cancel it.
func (s *Server) handlePledge() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.pledgePage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Saved = r.URL.Query().Get("saved") != ""
		w.Header().Set("Referrer-Policy", "no-referrer") // the address is the backer's key
		s.render(w, r, http.StatusOK, "pledge", p)
	}
}

func (s *Server) handlePledgeChange() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.pledgePage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		token := p.Pledge.Token
		if r.PostFormValue("action") == "cancel" {
			_, err = s.cfg.Money.CancelPledge(r.Context(), token)
		} else {
			cur, _ := billing.LookupCurrency(p.Pledge.Currency)
			amount, perr := cur.Parse(strings.TrimSpace(r.PostFormValue("amount")))
			tier, _ := strconv.ParseInt(r.PostFormValue("tier"), 10, 64)
			if perr != nil {
				err = billing.ErrInvalid
				p.Error = "Amount: type an amount such as " + cur.Format(1000) + "."
			} else {
				_, err = s.cfg.Money.ChangePledge(r.Context(), token, tier, amount, r.PostFormValue("credit_name"))
			}
		}
		if st := statusOf(err); st == http.StatusBadRequest || st == http.StatusConflict {
			if p.Error == "" {
				p.Error = userMessage(err.Error())
			}
			s.render(w, r, st, "pledge", p)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/pledges/"+token, http.StatusSeeOther)
	}
}

// handlePledgePay shows a pledge whose charge needs the backer, with the button that pays it
// on-session; the POST opens the checkout.
func (s *Server) handlePledgePay() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.pledgePage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Referrer-Policy", "no-referrer")
		s.render(w, r, http.StatusOK, "pledge_pay", p)
	}
}

func (s *Server) handlePledgePayStart() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := chi.URLParam(r, "token")
		p, err := billing.FindPledgeByToken(r.Context(), s.db, token)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		target, err := s.cfg.Money.PayPledgeOnSession(r.Context(), token, billing.CheckoutPage{
			Title:      "Pledge " + strconv.FormatInt(p.ID, 10),
			SuccessURL: s.absoluteURL(r, "/pledges/"+token),
			CancelURL:  s.absoluteURL(r, "/pledges/"+token+"/pay"),
			TestURL:    "/checkout/test/{session}",
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

type backerPage struct {
	layout
	Pledges []billing.BackerPledge
}

// handleBacker is a signed-in fan's pledges and rewards, by their account or its address.
func (s *Server) handleBacker() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := accountFrom(r.Context())
		list, err := billing.BackerPledges(r.Context(), s.db, a.Email, a.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "backer", &backerPage{layout: layout{Title: "Your pledges"}, Pledges: list})
	}
}

// updatesFeed is the RSS 2.0 feed of a campaign's updates.
type updatesFeed struct {
	XMLName xml.Name       `xml:"rss"`
	Version string         `xml:"version,attr"`
	NSAtom  string         `xml:"xmlns:atom,attr"`
	Channel updatesChannel `xml:"channel"`
}

type updatesChannel struct {
	Title       string       `xml:"title"`
	Link        string       `xml:"link"`
	Self        atomLink     `xml:"atom:link"`
	Description string       `xml:"description"`
	Generator   string       `xml:"generator"`
	Items       []updateItem `xml:"item"`
}

type updateItem struct {
	Title       string  `xml:"title"`
	Link        string  `xml:"link"`
	Description string  `xml:"description"`
	GUID        rssGUID `xml:"guid"`
	PubDate     string  `xml:"pubDate"`
}
