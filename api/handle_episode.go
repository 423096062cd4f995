package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/catalog"
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
		t, err := seeding.TorrentForEpisode(r.Context(), s.db, ep.ID)
		switch {
		case errors.Is(err, seeding.ErrNotFound):
		case err != nil:
			s.fail(w, r, err)
			return
		default:
			p.Torrent = &t
			var ih [20]byte
			copy(ih[:], t.InfoHash)
			p.WebSeed = seeding.WebSeedFileURL(s.publisher.WebSeedURL(t.InfoHashHex()), t.Name)
			p.Magnet = template.URL(seeding.MagnetURI(ih, t.Name, s.publisher.TrackerURL(), p.WebSeed))
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
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]string{"status": ep.Status, "failure_reason": ep.FailureReason})
	}
}
