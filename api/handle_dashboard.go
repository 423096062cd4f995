package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
)

// dateRange is a validated [From, To) range of whole days (UTC).
type dateRange struct {
	From, To time.Time // To is exclusive
}

// maxRange is the longest range a page or export may cover.
const maxRange = 5 * 366 * 24 * time.Hour

// parseRange reads from and to (YYYY-MM-DD, both inclusive), defaulting to the last 30 days.
func parseRange(r *http.Request, now time.Time) (dateRange, error) {
	today := time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day(), 0, 0, 0, 0, time.UTC)
	rg := dateRange{From: today.AddDate(0, 0, -29), To: today.AddDate(0, 0, 1)}
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return rg, fmt.Errorf("%w: from: %q is not a date like 2026-11-01", catalog.ErrInvalid, v)
		}
		rg.From = t
	}
	if v := q.Get("to"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return rg, fmt.Errorf("%w: to: %q is not a date like 2026-11-30", catalog.ErrInvalid, v)
		}
		rg.To = t.AddDate(0, 0, 1)
	}
	switch {
	case !rg.To.After(rg.From):
		return rg, fmt.Errorf("%w: the range is reversed: from %s is after to %s", catalog.ErrInvalid,
			rg.From.Format(time.DateOnly), rg.To.AddDate(0, 0, -1).Format(time.DateOnly))
	case rg.To.Sub(rg.From) > maxRange:
		return rg, fmt.Errorf("%w: the range is longer than 5 years; choose a shorter one", catalog.ErrInvalid)
	}
	return rg, nil
}

// days lists the days of the range, for chart labels.
func (rg dateRange) days() []time.Time {
	var out []time.Time
	for d := rg.From; d.Before(rg.To); d = d.AddDate(0, 0, 1) {
		out = append(out, d)
	}
	return out
}

// FromText and ToText fill the range form.
func (rg dateRange) FromText() string { return rg.From.Format(time.DateOnly) }
func (rg dateRange) ToText() string   { return rg.To.AddDate(0, 0, -1).Format(time.DateOnly) }

// values is the range as URL parameters.
func (rg dateRange) values() url.Values {
	return url.Values{"from": {rg.FromText()}, "to": {rg.ToText()}}
}

// link is path with the range and, when episodeID is set, the episode filter as its query.
func (d *dashboardData) link(path string, episodeID int64) string {
	q := d.Range.values()
	if episodeID != 0 {
		q.Set("episode", strconv.FormatInt(episodeID, 10))
	}
	return path + "?" + q.Encode()
}

// CSVURL is the export of one table over the page's range and episode filter.
func (d *dashboardData) CSVURL(table string) string {
	return d.link(fmt.Sprintf("/shows/%d/dashboard/%s.csv", d.Show.ID, table), d.EpisodeID)
}

// EpisodeURL is the dashboard of one episode (all episodes for 0) over the page's range.
func (d *dashboardData) EpisodeURL(episodeID int64) string {
	return d.link(fmt.Sprintf("/shows/%d/dashboard", d.Show.ID), episodeID)
}

type dashEpisode struct {
	Episode catalog.Episode
	Traffic seeding.TorrentTraffic
	// The swarm now, as the tracker counts it: the fleet's nodes and fans seeding, fans fetching.
	Seeders, Leechers int
}

// swarmsNow asks the tracker for the swarms of the episodes' torrents, by infohash.
func (s *Server) swarmsNow(torrents map[int64]seeding.Record) map[[20]byte]seeding.ScrapeFile {
	out := map[[20]byte]seeding.ScrapeFile{}
	if s.tracker == nil {
		return out
	}
	hashes := make([][20]byte, 0, len(torrents))
	for _, t := range torrents {
		if len(t.InfoHash) == 20 {
			hashes = append(hashes, [20]byte(t.InfoHash))
		}
	}
	for _, f := range s.tracker.Scrape(hashes) {
		out[f.InfoHash] = f
	}
	return out
}

// Served is what the fleet has uploaded of the episode, the way people read sizes.
func (e dashEpisode) Served() string { return humanBytes(e.Traffic.BytesServed) }

type dashboardData struct {
	Show        catalog.Show
	Range       dateRange
	EpisodeID   int64 // when set, the tracker charts and tables cover this episode only
	Swarm       []seeding.SwarmDay
	MoneyDays   []billing.MoneyDay
	Episodes    []dashEpisode
	PaidOut     []billing.PartyPaidOut
	Monthly     int
	Totals      billing.MoneyDay
	Downloads   int64
	Downloaders int64            // first seen in the range
	Playback    seeding.Playback // what browser players reported, and the web seed counted
	// Since publishing, for fans' BitTorrent clients: what the fleet uploaded to fans (clients and
	// players) beside what the origin web seed sent fans' clients.
	FleetServed   int64
	WebSeedToFans int64
	cur           billing.Currency
	swarmByDay    map[time.Time]seeding.SwarmDay
	moneyByDay    map[time.Time]billing.MoneyDay
}

// WebSeedShare is the web seed's share of the bytes fans' BitTorrent clients and the fleet
// exchanged since publishing ("12%"), or "" before any.
func (d *dashboardData) WebSeedShare() string {
	total := d.FleetServed + d.WebSeedToFans
	if total <= 0 {
		return ""
	}
	return fmt.Sprintf("%d%%", d.WebSeedToFans*100/total)
}

// Money formats minor units of the show's currency.
func (d *dashboardData) Money(minor int64) string { return d.cur.Format(minor) + " " + d.cur.Code }

func (s *Server) dashboardData(ctx context.Context, show catalog.Show, rg dateRange, episodeID int64) (*dashboardData, error) {
	cur, err := billing.LookupCurrency(show.Currency)
	if err != nil {
		return nil, err
	}
	d := &dashboardData{Show: show, Range: rg, cur: cur, EpisodeID: episodeID}
	eps, torrents, err := s.publishedEpisodes(ctx, show.ID, 1000)
	if err != nil {
		return nil, err
	}
	var tids []int64
	for _, t := range torrents {
		if d.EpisodeID == 0 || t.EpisodeID == d.EpisodeID {
			tids = append(tids, t.ID)
		}
	}
	traffic, err := seeding.Traffic(ctx, s.db, tids, rg.From, rg.To)
	if err != nil {
		return nil, err
	}
	swarms := s.swarmsNow(torrents)
	for _, e := range eps {
		if d.EpisodeID != 0 && e.ID != d.EpisodeID {
			continue
		}
		de := dashEpisode{Episode: e}
		if t, ok := torrents[e.ID]; ok {
			de.Traffic = traffic[t.ID]
			sw := swarms[[20]byte(t.InfoHash)]
			de.Seeders, de.Leechers = sw.Complete, sw.Incomplete
		}
		d.Episodes = append(d.Episodes, de)
	}
	if d.Playback, err = seeding.PlaybackTotals(ctx, s.db, tids, rg.From, rg.To); err != nil {
		return nil, err
	}
	allTime, err := seeding.PlaybackTotals(ctx, s.db, tids, time.Unix(0, 0), time.Now().AddDate(0, 0, 1))
	if err != nil {
		return nil, err
	}
	d.WebSeedToFans = allTime.ServedBitTorrent
	for _, t := range traffic {
		d.FleetServed += t.BytesServed
	}
	if d.Swarm, err = seeding.SwarmDaily(ctx, s.db, tids, rg.From, rg.To); err != nil {
		return nil, err
	}
	if d.MoneyDays, err = billing.ShowMoneyDaily(ctx, s.db, show.ID, show.Currency, rg.From, rg.To); err != nil {
		return nil, err
	}
	if d.PaidOut, err = billing.ShowPartiesPaidOut(ctx, s.db, show.ID, rg.From, rg.To); err != nil {
		return nil, err
	}
	if d.Monthly, err = billing.ActiveMonthlySupporters(ctx, s.db, show.ID); err != nil {
		return nil, err
	}
	d.swarmByDay, d.moneyByDay = map[time.Time]seeding.SwarmDay{}, map[time.Time]billing.MoneyDay{}
	for _, sd := range d.Swarm {
		d.swarmByDay[sd.Day.UTC()] = sd
		d.Downloads += sd.Completed
		d.Downloaders += sd.Downloaders
	}
	for _, m := range d.MoneyDays {
		d.moneyByDay[m.Day.UTC()] = m
		d.Totals.Donations += m.Donations
		d.Totals.Subscriptions += m.Subscriptions
		d.Totals.Sponsorships += m.Sponsorships
		d.Totals.Fees += m.Fees
		d.Totals.Refunds += m.Refunds
		d.Totals.Disputes += m.Disputes
	}
	return d, nil
}

// SwarmShare is "delivered by the swarm: N%" of browser playback, or "" before any report.
func (d *dashboardData) SwarmShare() string {
	if pct, ok := d.Playback.SwarmPercent(); ok {
		return strconv.FormatInt(pct, 10) + "%"
	}
	return ""
}

// EgressSaved is what the origin did not send because peers did: the players' bytes from peers.
func (d *dashboardData) EgressSaved() string { return humanBytes(d.Playback.PeerBytes) }

// AvgFirstFrame is the mean time from pressing play to the first frame, or "" with none.
func (d *dashboardData) AvgFirstFrame() string {
	if d.Playback.FirstFrames == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(d.Playback.FirstFrameMsSum)/float64(d.Playback.FirstFrames)/1000, 'f', 1, 64) + " s"
}

// DownloadsChart, PeersChart and MoneyChart are the dashboard's charts, drawn on the server.
func (d *dashboardData) DownloadsChart() any {
	labels, vals := d.daily(func(t time.Time) float64 { return float64(d.swarmByDay[t].Completed) })
	return barChart("Completed downloads per day", labels, []chartSeries{{Name: "downloads", Color: "#1f5fd1", Values: vals}},
		func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) })
}

func (d *dashboardData) PeersChart() any {
	labels, vals := d.daily(func(t time.Time) float64 { return float64(d.swarmByDay[t].PeakPeers) })
	return barChart("Peak peers per day", labels, []chartSeries{{Name: "peers", Color: "#7c3aed", Values: vals}},
		func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) })
}

func (d *dashboardData) MoneyChart() any {
	get := func(f func(billing.MoneyDay) int64) []float64 {
		_, v := d.daily(func(t time.Time) float64 { return float64(f(d.moneyByDay[t])) })
		return v
	}
	labels, _ := d.daily(func(time.Time) float64 { return 0 })
	return barChart("Money received per day", labels, []chartSeries{
		{Name: "donations", Color: "#0f7b52", Values: get(func(m billing.MoneyDay) int64 { return m.Donations })},
		{Name: "monthly", Color: "#34a36f", Values: get(func(m billing.MoneyDay) int64 { return m.Subscriptions })},
		{Name: "sponsorships", Color: "#d97706", Values: get(func(m billing.MoneyDay) int64 { return m.Sponsorships })},
	}, func(v float64) string { return d.cur.Format(int64(v)) })
}

func (d *dashboardData) daily(f func(time.Time) float64) ([]string, []float64) {
	var labels []string
	var vals []float64
	for _, day := range d.Range.days() {
		labels = append(labels, day.Format("Jan 2"))
		vals = append(vals, f(day))
	}
	return labels, vals
}

// dashboardFromRequest loads the dashboard of the show and range a request names.
func (s *Server) dashboardFromRequest(r *http.Request) (*dashboardData, error) {
	show, err := s.showFromURL(r)
	if err != nil {
		return nil, err
	}
	rg, err := parseRange(r, time.Now())
	if err != nil {
		return nil, err
	}
	var episodeID int64
	if v := r.URL.Query().Get("episode"); v != "" {
		if episodeID, err = strconv.ParseInt(v, 10, 64); err != nil || episodeID <= 0 {
			return nil, fmt.Errorf("%w: episode: %q is not an episode id", catalog.ErrInvalid, v)
		}
	}
	return s.dashboardData(r.Context(), show, rg, episodeID)
}

type showDashboardPage struct {
	layout
	*dashboardData
}

// handleShowDashboard is a show's numbers over a date range: downloads, peers, fleet traffic,
// money by source, refunds and disputes, payouts and monthly supporters.
func (s *Server) handleShowDashboard() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := s.dashboardFromRequest(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "show_dashboard", &showDashboardPage{layout: layout{Title: d.Show.Title + " dashboard"}, dashboardData: d})
	}
}

// handleShowDashboardCSV exports one of the dashboard's tables.
func (s *Server) handleShowDashboardCSV() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		table := chi.URLParam(r, "table")
		if table != "downloads" && table != "money" && table != "episodes" && table != "payouts" {
			s.fail(w, r, fmt.Errorf("table %q: %w", table, catalog.ErrNotFound))
			return
		}
		d, err := s.dashboardFromRequest(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		show, rg := d.Show, d.Range
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s-%s-%s.csv"`, show.Slug, table, rg.FromText(), rg.ToText()))
		cw := csv.NewWriter(w)
		i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
		switch table {
		case "downloads":
			cw.Write([]string{"day", "completed_downloads", "new_downloaders", "peak_peers", "announces"})
			for _, sd := range d.Swarm {
				cw.Write([]string{sd.Day.UTC().Format(time.DateOnly), i64(sd.Completed), i64(sd.Downloaders), i64(sd.PeakPeers), i64(sd.Announces)})
			}
		case "money":
			cw.Write([]string{"day", "currency", "donations", "monthly_donations", "sponsorships", "fees", "refunds", "disputes"})
			for _, m := range d.MoneyDays {
				cw.Write([]string{m.Day.UTC().Format(time.DateOnly), show.Currency, d.cur.Format(m.Donations), d.cur.Format(m.Subscriptions),
					d.cur.Format(m.Sponsorships), d.cur.Format(m.Fees), d.cur.Format(m.Refunds), d.cur.Format(m.Disputes)})
			}
		case "episodes":
			cw.Write([]string{"episode_id", "title", "completed_downloads", "bytes_served_by_fleet", "seeders_now", "leechers_now"})
			for _, e := range d.Episodes {
				cw.Write([]string{i64(e.Episode.ID), csvText(e.Episode.Title), i64(e.Traffic.Completed), i64(e.Traffic.BytesServed),
					strconv.Itoa(e.Seeders), strconv.Itoa(e.Leechers)})
			}
		case "payouts":
			cw.Write([]string{"party_id", "party", "currency", "paid_out"})
			for _, p := range d.PaidOut {
				c, _ := billing.LookupCurrency(p.Currency)
				cw.Write([]string{i64(p.PartyID), csvText(p.Name), p.Currency, c.Format(p.Amount)})
			}
		}
		cw.Flush()
	}
}
