package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

type episodePage struct {
	layout
	Show      catalog.Show
	Episode   catalog.Episode
	Torrent   *seeding.Record
	Magnet    template.URL
	WebSeed   string
	Upload    *catalog.Upload
	MaxBytes  int64
	MaxHuman  string
	CanUpload bool
	Reach     *episodeReach
	// Stream says why browsers cannot stream the file, and how to fix it; nil when they can.
	Stream *publishing.StreamProblem
	// EmbedURL is the episode player other sites may frame, for a published audio or video file.
	EmbedURL string
}

// episodeReach is how far an episode's torrent has reached: the fleet's replicas and, once
// published, the fans in its swarm. The fleet's own copying counts in none of the fan numbers.
type episodeReach struct {
	Seeding     int   `json:"seeding_nodes"`    // up nodes seeding the torrent now
	Replicas    int   `json:"replicas"`         // R, the nodes publishing waits for
	FanSeeders  int   `json:"fan_seeders"`      // fans seeding now, nodes apart
	FanLeechers int   `json:"fan_leechers"`     // fans downloading now, nodes apart
	Completed   int64 `json:"fan_completions"`  // downloads fans finished
	BytesToFans int64 `json:"fan_bytes_served"` // what the fleet uploaded to fans, nodes apart
}

// SeededBy is the processing line: "Seeded by 1 of 2 nodes".
func (r episodeReach) SeededBy() string {
	noun := "nodes"
	if r.Replicas == 1 {
		noun = "node"
	}
	return fmt.Sprintf("Seeded by %d of %d %s", r.Seeding, r.Replicas, noun)
}

// torrentReach is the episode's torrent and how far it has reached the fleet; nil for both while
// the episode has no torrent.
func (s *Server) torrentReach(ctx context.Context, db seeding.DBTX, episodeID int64) (*seeding.Record, *episodeReach, error) {
	t, err := seeding.TorrentForEpisode(ctx, db, episodeID)
	if errors.Is(err, seeding.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	reach, err := s.reach(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	return &t, reach, nil
}

// reach reads an episode torrent's replicas and fan counts.
func (s *Server) reach(ctx context.Context, t seeding.Record) (*episodeReach, error) {
	n, err := seeding.SeedingNodes(ctx, s.db, t.ID)
	if err != nil {
		return nil, err
	}
	r := &episodeReach{Seeding: n, Replicas: seeding.DefaultReplicas, Completed: t.Completed}
	if r.BytesToFans, err = seeding.FanBytesServed(ctx, s.db, t.ID); err != nil {
		return nil, err
	}
	if s.fleet != nil {
		r.Replicas = s.fleet.ReplicaTarget()
	}
	if s.tracker != nil && t.Status == seeding.StatusPublished {
		var ih [20]byte
		copy(ih[:], t.InfoHash)
		r.FanSeeders, r.FanLeechers = s.tracker.FanCounts(ih)
	}
	return r, nil
}

// episodeFromURL loads the show and episode named in the URL, if the account manages them.
func (s *Server) episodeFromURL(r *http.Request) (catalog.Show, catalog.Episode, error) {
	show, err := s.showFromURL(r)
	if err != nil {
		return show, catalog.Episode{}, err
	}
	id, err := strconv.ParseInt(chi.URLParam(r, "episodeID"), 10, 64)
	if err != nil {
		return show, catalog.Episode{}, fmt.Errorf("episode id: %w", catalog.ErrNotFound)
	}
	ep, err := catalog.FindEpisodeForAccount(r.Context(), s.db, id, *accountFrom(r.Context()))
	if err == nil && ep.ShowID != show.ID {
		err = fmt.Errorf("episode %d of another show: %w", id, catalog.ErrNotFound)
	}
	return show, ep, err
}

func (s *Server) handleEpisode() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, ep, err := s.episodeFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &episodePage{layout: layout{Title: ep.Title}, Show: show, Episode: ep,
			MaxBytes: s.cfg.UploadMaxBytes, MaxHuman: humanBytes(s.cfg.UploadMaxBytes)}
		p.CanUpload = ep.Status == catalog.EpisodeDraft || ep.Status == catalog.EpisodeFailed || ep.Status == catalog.EpisodeUploading
		if up, err := catalog.LatestUpload(r.Context(), s.db, ep.ID); err == nil && up.CompletedAt == nil {
			p.Upload = &up
		}
		t, reach, err := s.torrentReach(r.Context(), s.db, ep.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if t != nil {
			p.Torrent, p.Reach = t, reach
			var ih [20]byte
			copy(ih[:], t.InfoHash)
			p.WebSeed = s.publisher.WebSeedURL(t.InfoHashHex(), t.Name)
			p.Magnet = template.URL(seeding.MagnetURI(seeding.Magnet{InfoHash: ih, Name: t.Name, Length: t.Length,
				TorrentURL: s.publisher.BaseURL + "/t/" + t.InfoHashHex() + ".torrent", Trackers: []string{s.publisher.TrackerURL(), s.publisher.WebTrackerURL()}, WebSeed: p.WebSeed}))
			if t.Status == seeding.StatusPublished && (strings.HasPrefix(t.ContentType, "video/") || strings.HasPrefix(t.ContentType, "audio/") || t.ContentType == "application/ogg") {
				p.EmbedURL = fmt.Sprintf("%s/s/%s/e/%d/embed", s.publisher.BaseURL, show.Slug, ep.ID)
			}
			if t.Status != seeding.StatusFailed {
				if p.Stream, err = publishing.Streamable(t.ContentPath, t.ContentType); err != nil {
					s.log.Warn("check the file streams", slog.Int64("torrent_id", t.ID), slog.Any("error", err))
				}
			}
		}
		s.render(w, r, http.StatusOK, "episode", p)
	}
}

// handleEpisodeDelete unpublishes an episode: the tracker refuses its torrent from then on and
// the fleet drops it.
func (s *Server) handleEpisodeDelete() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, ep, err := s.episodeFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.publisher.Delete(r.Context(), ep.ID); err != nil {
			s.fail(w, r, err)
			return
		}
		s.published.Invalidate()
		http.Redirect(w, r, fmt.Sprintf("/shows/%d", show.ID), http.StatusSeeOther)
	}
}

// handleEpisodeStatus lets the upload page follow an episode from processing to published.
func (s *Server) handleEpisodeStatus() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, ep, err := s.episodeFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := struct {
			Status        string        `json:"status"`
			FailureReason string        `json:"failure_reason"`
			Fleet         *episodeReach `json:"fleet,omitempty"`
			SeededBy      string        `json:"seeded_by,omitempty"`
		}{Status: ep.Status, FailureReason: ep.FailureReason}
		t, reach, err := s.torrentReach(r.Context(), s.db, ep.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if t != nil {
			out.Fleet, out.SeededBy = reach, reach.SeededBy()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(out)
	}
}
