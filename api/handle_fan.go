package api

import (
	"context"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/sync/singleflight"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
)

// fanEpisode is an episode as fans see it, with its torrent and the links to get it.
type fanEpisode struct {
	catalog.Episode
	Record     seeding.Record
	TorrentURL string       // the .torrent file
	Magnet     template.URL // html/template would refuse the magnet: scheme as a plain string
	WebSeed    string
	Playable   string // "video", "audio" or ""
}

// Size is the file's size the way people read it.
func (e fanEpisode) Size() string { return humanBytes(e.Record.Length) }

// SHA256 is the file's SHA-256 in hex, as sha256sum prints it, for fans to check a download.
func (e fanEpisode) SHA256() string { return hex.EncodeToString(e.Record.SHA256) }

// fanShow is everything the public pages of a show need, cached for a few seconds so that a
// popular page costs the database one read every few seconds.
type fanShow struct {
	Show       catalog.Show
	Episodes   []fanEpisode
	Funding    billing.Funding
	Supporters []billing.Supporter
	Monthly    int
	Campaigns  []billing.Campaign // live ones, taking pledges
	loaded     time.Time

	pageOnce sync.Once // the show page as anonymous visitors get it, rendered once per load
	page     []byte
	pageErr  error
}

// fanCacheTTL is how stale a fan page may be.
const fanCacheTTL = 5 * time.Second

type fanCache struct {
	mu    sync.Mutex
	shows map[string]*fanShow
	group singleflight.Group // one load per show at a time, however many visitors wait
}

func (s *Server) loadFanShow(ctx context.Context, slug string) (*fanShow, error) {
	s.fans.mu.Lock()
	stale, ok := s.fans.shows[slug]
	if ok && time.Since(stale.loaded) < fanCacheTTL {
		s.fans.mu.Unlock()
		return stale, nil
	}
	s.fans.mu.Unlock()
	v, err, _ := s.fans.group.Do(slug, func() (any, error) {
		// Detached from the first visitor's request, whose leaving must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return s.readFanShow(ctx, slug)
	})
	if stale != nil && isDatabaseDown(err) {
		s.dbHealth.markDown(ctx, err)
		return stale, nil // the last good copy, while the database is away
	}
	if err != nil {
		return nil, err
	}
	return v.(*fanShow), nil
}

func (s *Server) readFanShow(ctx context.Context, slug string) (*fanShow, error) {

	show, err := catalog.FindShowBySlug(ctx, s.db, slug)
	if err != nil {
		return nil, err
	}
	f := &fanShow{Show: show, loaded: time.Now()}
	eps, torrents, err := s.publishedEpisodes(ctx, show.ID, 200)
	if err != nil {
		return nil, err
	}
	for _, e := range eps {
		t, ok := torrents[e.ID]
		if !ok {
			continue
		}
		f.Episodes = append(f.Episodes, s.fanEpisode(e, t))
	}
	if f.Funding, err = billing.ShowFunding(ctx, s.db, show.ID, show.Currency, time.Now()); err != nil {
		return nil, err
	}
	if f.Supporters, err = billing.RecentSupporters(ctx, s.db, show.ID, 20); err != nil {
		return nil, err
	}
	if f.Monthly, err = billing.ActiveMonthlySupporters(ctx, s.db, show.ID); err != nil {
		return nil, err
	}
	campaigns, err := billing.ListCampaigns(ctx, s.db, show.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range campaigns {
		if c.Status == billing.CampaignLive {
			f.Campaigns = append(f.Campaigns, c)
		}
	}
	s.fans.mu.Lock()
	if s.fans.shows == nil || len(s.fans.shows) > 10000 {
		s.fans.shows = map[string]*fanShow{}
	}
	s.fans.shows[slug] = f
	s.fans.mu.Unlock()
	return f, nil
}

func (s *Server) fanEpisode(e catalog.Episode, t seeding.Record) fanEpisode {
	var ih [20]byte
	copy(ih[:], t.InfoHash)
	fe := fanEpisode{Episode: e, Record: t,
		TorrentURL: s.publisher.BaseURL + "/t/" + t.InfoHashHex() + ".torrent",
		WebSeed:    s.publisher.WebSeedURL(t.InfoHashHex(), t.Name)}
	fe.Magnet = template.URL(seeding.MagnetURI(seeding.Magnet{InfoHash: ih, Name: t.Name, Length: t.Length,
		TorrentURL: fe.TorrentURL, Trackers: []string{s.publisher.TrackerURL(), s.publisher.WebTrackerURL()}, WebSeed: fe.WebSeed}))
	switch {
	case len(t.ContentType) > 6 && t.ContentType[:6] == "video/":
		fe.Playable = "video"
	case len(t.ContentType) > 6 && t.ContentType[:6] == "audio/", t.ContentType == "application/ogg":
		fe.Playable = "audio"
	}
	return fe
}

// GoalPercent is this month's progress towards the goal, capped at 100 for the bar.
func (f *fanShow) GoalPercent() int {
	if f.Show.FundingGoal <= 0 {
		return 0
	}
	return int(min(100, max(0, f.Funding.ThisMonth*100/f.Show.FundingGoal)))
}

// Money formats an amount in the show's currency.
func (f *fanShow) Money(minor int64) string {
	c, err := billing.LookupCurrency(f.Show.Currency)
	if err != nil {
		return strconv.FormatInt(minor, 10)
	}
	return c.Format(minor) + " " + c.Code
}

type fanShowPage struct {
	layout
	*fanShow
	BaseURL string
}

type fanEpisodePage struct {
	layout
	*fanShow
	BaseURL string
	Episode fanEpisode
	Player  *player
	Credits []string // the backers the campaign that funded it credits, if any
}

// handleFanShow is a show's public page: its episodes, the goal bar, supporters and donate.
func (s *Server) handleFanShow() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := s.loadFanShow(r.Context(), chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		data := &fanShowPage{layout: layout{Title: f.Show.Title}, fanShow: f, BaseURL: s.publisher.BaseURL}
		if accountFrom(r.Context()) != nil {
			s.render(w, r, http.StatusOK, "fan_show", data)
			return
		}
		f.pageOnce.Do(func() { f.page, f.pageErr = s.renderBytes("fan_show", data) })
		if f.pageErr != nil {
			s.serverError(w, r, f.pageErr)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(f.page)
	}
}

// handleFanEpisode is one episode's public page, with a player when the browser can play it.
func (s *Server) handleFanEpisode() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := s.loadFanShow(r.Context(), chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		id, _ := strconv.ParseInt(chi.URLParam(r, "episodeID"), 10, 64)
		for _, e := range f.Episodes {
			if e.ID == id {
				credits, err := billing.EpisodeCredits(r.Context(), s.db, e.ID)
				if err != nil {
					s.fail(w, r, err)
					return
				}
				s.render(w, r, http.StatusOK, "fan_episode", &fanEpisodePage{layout: layout{Title: e.Title + " · " + f.Show.Title},
					fanShow: f, BaseURL: s.publisher.BaseURL, Episode: e, Player: s.player(f.Show.Slug, e), Credits: credits})
				return
			}
		}
		s.fanError(w, r, catalog.ErrNotFound)
	}
}

func (s *Server) fanError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, catalog.ErrNotFound) {
		s.renderError(w, r, http.StatusNotFound, "Not found", "There is no show or episode at this address.")
		return
	}
	s.fail(w, r, err)
}

// handleEmbed is the donate button other sites frame: the goal and a link that opens the
// donate page in a new tab (payment pages are never framed).
func (s *Server) handleEmbed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := s.loadFanShow(r.Context(), chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		s.allowFraming(w)
		w.Header().Set("Cache-Control", "public, max-age=60")
		s.render(w, r, http.StatusOK, "embed", &fanShowPage{layout: layout{Title: f.Show.Title}, fanShow: f, BaseURL: s.publisher.BaseURL})
	}
}

// publishedEpisodes loads a show's public episodes, newest first, with their torrents by
// episode id.
func (s *Server) publishedEpisodes(ctx context.Context, showID int64, limit int) ([]catalog.Episode, map[int64]seeding.Record, error) {
	eps, err := catalog.PublishedEpisodes(ctx, s.db, showID, limit)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]int64, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	torrents, err := seeding.PublishedTorrents(ctx, s.db, ids)
	return eps, torrents, err
}
