package api

import (
	"io/fs"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/templates"
)

// routes lists every route Fanseed serves.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.resolveClient, s.limitBodyRate, s.logRequests, s.watchDatabase, s.recoverPanics, s.metrics.middleware, s.rejectBadText, s.loadAccount)

	r.Get("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(s.ready, s.log, s.dbHealth))
	r.Method(http.MethodGet, "/metrics", s.metrics.handler())
	static, _ := fs.Sub(templates.FS, "static")
	r.Handle("/static/*", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))

	r.Get("/announce", s.handleAnnounce())
	r.Get("/scrape", s.handleScrape())
	r.Get("/seed/{infohash}/{name}", s.handleWebSeed())
	r.Head("/seed/{infohash}/{name}", s.handleWebSeed())
	r.Get("/t/{file}", s.handleTorrentFile())
	r.Route("/api/uploads", s.uploadRoutes)
	r.Route("/api/nodes", s.nodeRoutes)

	r.Get("/s/{slug}", s.handleFanShow())
	r.Get("/s/{slug}/e/{episodeID}", s.handleFanEpisode())
	r.Get("/s/{slug}/embed", s.handleEmbed())
	r.Get("/s/{slug}/artwork", s.handleArtwork())
	r.Get("/s/{slug}/torrents.rss", s.handleTorrentFeed())
	r.Get("/s/{slug}/podcast.rss", s.handlePodcastFeed())

	r.Get("/", s.handleHome())
	r.Get("/signup", s.handleSignupForm())
	r.Post("/signup", s.handleSignup())
	r.Get("/login", s.handleLoginForm())
	r.Post("/login", s.handleLogin())
	r.Post("/logout", s.handleLogout())

	r.Group(func(r chi.Router) {
		r.Use(s.requireAccount)
		r.Get("/dashboard", s.handleDashboard())
		r.Group(func(r chi.Router) {
			r.Use(requireRole(s, catalog.RoleCreator, catalog.RoleAdmin))
			r.Get("/shows/new", s.handleShowNew())
			r.Post("/shows", s.handleShowCreate())
			r.Route("/shows/{showID}", func(r chi.Router) {
				r.Get("/", s.handleShow())
				r.Get("/edit", s.handleShowEdit())
				r.Post("/edit", s.handleShowUpdate())
				r.Get("/plan", s.handlePlan())
				r.Post("/plan", s.handlePlanSave())
				r.Get("/plan/preview", s.handlePlanPreview())
				r.Post("/episodes", s.handleEpisodeCreate())
				r.Post("/artwork", s.handleArtworkUpload())
				r.Get("/dashboard", s.handleShowDashboard())
				r.Get("/dashboard/{table}.csv", s.handleShowDashboardCSV())
				r.Get("/episodes/{episodeID}", s.handleEpisode())
				r.Post("/episodes/{episodeID}/delete", s.handleEpisodeDelete())
				r.Get("/episodes/{episodeID}/status", s.handleEpisodeStatus())
			})
		})
		r.With(requireRole(s, catalog.RoleAdmin)).Get("/admin", s.handleAdmin())
		r.With(requireRole(s, catalog.RoleAdmin)).Get("/admin/fleet", s.handleFleet())
		r.With(requireRole(s, catalog.RoleAdmin)).Post("/admin/fleet/nodes/{nodeID}/drain", s.handleNodeDrain())
	})
	s.moneyRoutes(r)
	s.statementRoutes(r)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address does not take "+r.Method+" requests.")
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "Cross-site request refused",
			"This form was sent from another site. Open the page on Fanseed itself and send it again.")
	}))
	return cop.Handler(r)
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}
