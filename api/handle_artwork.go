package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/catalog"
)

// handleArtworkUpload stores a show's image, checked by its content.
func (s *Server) handleArtworkUpload() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, catalog.MaxArtworkBytes+64<<10)
		file, _, err := r.FormFile("artwork")
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.artworkError(w, r, show, http.StatusRequestEntityTooLarge, catalog.FieldErrors{"artwork": "The image must be at most 2 MiB."})
				return
			}
			s.artworkError(w, r, show, http.StatusBadRequest, catalog.FieldErrors{"artwork": "Choose an image file to upload."})
			return
		}
		defer file.Close()
		err = (catalog.Artwork{Dir: s.cfg.ArtworkDir}).Save(r.Context(), s.db, show.ID, file)
		var fe catalog.FieldErrors
		if errors.As(err, &fe) {
			s.artworkError(w, r, show, statusOf(err), fe)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d", show.ID), http.StatusSeeOther)
	}
}

// artworkError shows the show's page again with what is wrong next to the artwork field.
func (s *Server) artworkError(w http.ResponseWriter, r *http.Request, show catalog.Show, status int, fe catalog.FieldErrors) {
	p, err := s.showPageData(r, show)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.ArtworkErrors = fe
	s.render(w, r, status, "show", p)
}

// handleArtwork serves a show's image to its fan pages and feeds.
func (s *Server) handleArtwork() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := catalog.FindShowBySlug(r.Context(), s.db, chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		f, typ, mod, err := (catalog.Artwork{Dir: s.cfg.ArtworkDir}).Open(r.Context(), s.db, show.ID)
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", typ)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=300")
		http.ServeContent(w, r, "", mod, f)
	}
}
