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
	// The tracker answers thousands of announces a second and needs no session, body or
	// database: only the client's address, the log, panics caught and the request metrics.
	r.Group(func(r chi.Router) {
		r.Use(s.resolveClient, s.logRequests, s.recoverPanics, s.metrics.middleware)
		r.Get("/announce", s.handleAnnounce())
		r.Get("/scrape", s.handleScrape())
	})
	// Everything else: a request id, body limits, the database watched, text checked, the
	// session's account loaded.
	r.Group(func(r chi.Router) {
		r.Use(middleware.RequestID, s.resolveClient, s.limitBodyRate, s.logRequests, s.watchDatabase, s.recoverPanics, s.metrics.middleware, s.rejectBadText, s.loadAccount)

		r.Get("/healthz", handleHealthz())
		r.Get("/readyz", handleReadyz(s.ready, s.log, s.dbHealth))
		r.Method(http.MethodGet, "/metrics", s.guardMetrics(s.metrics.handler()))
		static, _ := fs.Sub(templates.FS, "static")
		r.Handle("/static/*", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(filesOnly{static}))))
		r.Get("/favicon.ico", handleFavicon())

		r.Get("/seed/{infohash}/{name}", s.handleWebSeed())
		r.Head("/seed/{infohash}/{name}", s.handleWebSeed())
		r.Options("/seed/{infohash}/{name}", handleWebSeedPreflight())
		r.Get("/t/{file}", s.handleTorrentFile())
		// tus uploads: creation, HEAD for the offset, PATCH, termination; with a creator's session
		// or an API token of the write scope.
		r.Route("/api/uploads", func(r chi.Router) {
			r.Use(plainUploadErrors)
			r.Use(s.loadToken, s.requireUploader, s.tus.Middleware)
			r.With(s.checkUploadCreate).Post("/", s.tus.PostFile)
			r.Route("/{uploadID}", func(r chi.Router) {
				r.Use(s.checkUploadOwner, uploadIDPath)
				r.Head("/", s.tus.HeadFile)
				r.Patch("/", s.tus.PatchFile)
				r.Delete("/", s.handleUploadDelete())
			})
		})
		// The machine API of seedbox nodes: register, then heartbeat, with the node token (no
		// cookies, and no Origin header for cross-origin protection to refuse).
		r.Route("/api/nodes", func(r chi.Router) {
			r.Use(s.requireNodeToken)
			r.Post("/", s.handleNodeRegister())
			r.Post("/{nodeID}/heartbeat", s.handleNodeHeartbeat()) // nodeHeartbeatRoute
		})
		r.Mount("/api/v1", s.apiV1())
		r.Post("/webhooks/stripe", s.handleStripeWebhook())

		r.Get("/s/{slug}", s.handleFanShow())
		r.Get("/s/{slug}/e/{episodeID}", s.handleFanEpisode())
		r.Get("/s/{slug}/e/{episodeID}/embed", s.handleEpisodeEmbed())
		r.Post("/s/{slug}/e/{episodeID}/playback", s.handlePlayback())
		r.Get("/s/{slug}/embed", s.handleEmbed())
		r.Get("/s/{slug}/artwork", s.handleArtwork())
		r.Get("/s/{slug}/torrents.rss", s.handleTorrentFeed())
		r.Get("/s/{slug}/podcast.rss", s.handlePodcastFeed())
		r.Get("/s/{slug}/live", s.handleFanLive())
		r.Get("/live/{streamID}/{file}", s.handleLiveFile())
		r.Head("/live/{streamID}/{file}", s.handleLiveFile())
		r.Post("/live/{streamID}/report", s.handleLiveReport())
		r.Get("/overlay/{token}", s.handleOverlay())
		r.Get("/overlay/{token}/events", s.handleOverlayEvents())
		r.Get("/s/{slug}/manage", s.handleDonationFind())
		r.Post("/s/{slug}/manage", s.handleDonationFindSend())

		r.Get("/", s.handleHome())
		r.Get("/signup", s.handleSignupForm())
		r.Post("/signup", s.handleSignup())
		r.Get("/login", s.handleLoginForm())
		r.Post("/login", s.handleLogin())
		r.Post("/logout", s.handleLogout())
		r.Get("/verify", s.handleVerifyForm())
		r.Post("/verify", s.handleVerify())
		r.Get("/password/forgot", s.handleForgotForm())
		r.Post("/password/forgot", s.handleForgot())
		r.Get("/password/reset", s.handleResetForm())
		r.Post("/password/reset", s.handleReset())
		r.Get("/invitations/accept", s.handleInvitation())
		r.Get("/donations/manage", s.handleDonationManage())
		r.Post("/donations/manage", s.handleDonationManageAction())
		r.Get("/s/{slug}/donate", s.handleDonateForm())
		r.Post("/s/{slug}/donate", s.handleDonationCreate())
		r.Get("/s/{slug}/donate/thanks", s.handleDonateThanks())
		r.Get("/s/{slug}/donate/cancelled", s.handleDonateCancelled())
		r.Get("/checkout/test/{session}", s.handleCheckoutTest())
		r.Post("/checkout/test/{session}", s.handleCheckoutTestComplete())
		r.Get("/sponsor/{token}", s.handleSponsorPay())
		r.Post("/sponsor/{token}", s.handleSponsorCheckout())
		r.Get("/sponsor/{token}/thanks", s.handleSponsorThanks())
		r.Get("/campaigns/{campaignID}", s.handleCampaign())
		r.Post("/campaigns/{campaignID}/pledge", s.handlePledgeCreate())
		r.Get("/campaigns/{campaignID}/embed", s.handleCampaignEmbed())
		r.Get("/campaigns/{campaignID}/updates.rss", s.handleCampaignFeed())
		r.Get("/pledges/{token}", s.handlePledge())
		r.Post("/pledges/{token}", s.handlePledgeChange())
		r.Get("/pledges/{token}/pay", s.handlePledgePay())
		r.Post("/pledges/{token}/pay", s.handlePledgePayStart())
		r.Get("/pledges/{token}/early/{episode}", s.handleEarlyTorrent())
		r.Get("/early/{passkey}/announce", s.handleEarlyAnnounce())
		r.Get("/early/{passkey}/{infohash}/{expires}/{sig}/{name}", s.handleEarlyWebSeed())
		r.Head("/early/{passkey}/{infohash}/{expires}/{sig}/{name}", s.handleEarlyWebSeed())

		// Statements also take an API token, so a script can fetch the CSV.
		r.Group(func(r chi.Router) {
			r.Use(s.loadToken, s.requireAccount)
			r.Get("/statements", s.handleStatements())
			r.Get("/statements/{party}", s.handleStatement())
		})

		r.Group(func(r chi.Router) {
			r.Use(s.requireAccount)
			r.Get("/dashboard", s.handleDashboard())
			r.Get("/backer", s.handleBacker())
			r.Get("/account", s.handleAccount())
			r.Post("/account/password", s.handlePasswordChange())
			r.Post("/account/verify", s.handleVerifyResend())
			r.Post("/account/sessions/end", s.handleSessionsEnd())
			r.Post("/account/sessions/{sessionID}/end", s.handleSessionEnd())
			r.Post("/invitations/accept", s.handleInvitationAccept())
			r.Get("/account/tokens", s.handleTokens())
			r.Post("/account/tokens", s.handleTokenCreate())
			r.Post("/account/tokens/{tokenID}/revoke", s.handleTokenRevoke())
			r.Get("/connect", s.handleConnect())
			r.Post("/connect", s.handleConnectStart())
			r.Post("/connect/threshold", s.handleThreshold())
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
					r.Post("/plan/parties/{partyID}/invite", s.handlePartyInvite())
					r.Get("/plan/preview", s.handlePlanPreview())
					r.Post("/episodes", s.handleEpisodeCreate())
					r.Post("/artwork", s.handleArtworkUpload())
					r.Get("/dashboard", s.handleShowDashboard())
					r.Get("/dashboard/{table}.csv", s.handleShowDashboardCSV())
					r.Get("/episodes/{episodeID}", s.handleEpisode())
					r.Post("/episodes/{episodeID}/delete", s.handleEpisodeDelete())
					r.Get("/episodes/{episodeID}/status", s.handleEpisodeStatus())
					r.Get("/live", s.handleLive())
					r.Get("/live/stats", s.handleLiveStats())
					r.Post("/live/key", s.handleLiveKeyCreate())
					r.Post("/live/key/revoke", s.handleLiveKeyRevoke())
					r.Post("/live/settings", s.handleLiveSettings())
					r.Get("/sponsorships", s.handleSponsorships())
					r.Post("/sponsorships", s.handleSponsorshipCreate())
					r.Post("/sponsorships/{sponsorshipID}/cancel", s.handleSponsorshipCancel())
					r.Get("/campaigns", s.handleCampaigns())
					r.Post("/campaigns", s.handleCampaignCreate())
					r.Get("/campaigns/{campaignID}", s.handleCampaignManage())
					r.Post("/campaigns/{campaignID}/edit", s.handleCampaignUpdate())
					r.Post("/campaigns/{campaignID}/tiers", s.handleTierCreate())
					r.Post("/campaigns/{campaignID}/launch", s.handleCampaignLaunch())
					r.Post("/campaigns/{campaignID}/cancel", s.handleCampaignCancel())
					r.Post("/campaigns/{campaignID}/refund", s.handleCampaignRefund())
					r.Post("/campaigns/{campaignID}/updates", s.handleCampaignUpdatePost())
					r.Post("/campaigns/{campaignID}/episodes", s.handleEarlyEpisodeAdd())
				})
			})
			r.Route("/admin", func(r chi.Router) {
				r.Use(requireRole(s, catalog.RoleAdmin))
				r.Get("/", s.handleAdmin())
				r.Get("/fleet", s.handleFleet())
				r.Post("/fleet/nodes/{nodeID}/drain", s.handleNodeDrain())
				r.Post("/fleet/nodes/{nodeID}/revoke", s.handleNodeRevoke())
				r.Post("/fleet/nodes/{nodeID}/readmit", s.handleNodeReadmit())
				r.Get("/outbox", s.handleOutbox())
				r.Get("/outbox/{messageID}", s.handleOutboxMessage())
				r.Get("/payouts", s.handlePayouts())
				r.Post("/payouts", s.handlePayoutRun())
				r.Get("/refunds", s.handleRefunds())
				r.Post("/refunds", s.handleRefundCreate())
				r.Get("/events", s.handleStuckEvents())
				r.Post("/events/retry", s.handleRetryEvents())
			})
		})
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			s.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address does not take "+r.Method+" requests.")
		})
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "Cross-site request refused",
			"This form was sent from another site. Open the page on Fanseed itself and send it again.")
	}))
	return s.securityHeaders(cop.Handler(r))
}

// apiV1 lists the routes of the JSON API, with a token or a session (its own router, so that a
// test can walk it against the OpenAPI document).
func (s *Server) apiV1() chi.Router {
	r := chi.NewRouter()
	r.Use(s.loadToken)
	r.NotFound(s.handleAPINotFound())
	r.MethodNotAllowed(s.handleAPIMethodNotAllowed())
	r.Get("/openapi.json", s.handleOpenAPI())
	r.Group(func(r chi.Router) {
		r.Use(s.requireAPIAccount, requireScope(catalog.ScopeRead))
		r.Get("/shows", s.handleAPIShows())
		r.Get("/shows/{showID}", s.handleAPIShow())
		r.Get("/shows/{showID}/episodes", s.handleAPIEpisodes())
		r.Get("/shows/{showID}/episodes/{episodeID}", s.handleAPIEpisode())
		r.Get("/shows/{showID}/plan", s.handleAPIPlan())
		r.Get("/donations", s.handleAPIDonations())
		r.Get("/statements", s.handleAPIStatements())
		r.Get("/statements/{partyID}", s.handleAPIStatement())
	})
	r.Group(func(r chi.Router) {
		r.Use(s.requireAPIAccount, requireScope(catalog.ScopeWrite), s.requireAPICreator)
		r.Post("/shows", s.handleAPIShowCreate())
		r.Patch("/shows/{showID}", s.handleAPIShowUpdate())
		r.Post("/shows/{showID}/episodes", s.handleAPIEpisodeCreate())
		r.Patch("/shows/{showID}/episodes/{episodeID}", s.handleAPIEpisodeUpdate())
		r.Put("/shows/{showID}/plan", s.handleAPIPlanSet())
	})
	return r
}

// filesOnly serves files and no directory: a directory is not found, so /static/ lists nothing.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if "/static/"+r.URL.Path == playerWorker {
			// webtorrent's worker serves the player's streams under the fan pages.
			w.Header().Set("Service-Worker-Allowed", playerScope)
		}
		h.ServeHTTP(w, r)
	})
}
