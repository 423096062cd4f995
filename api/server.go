package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	tus "github.com/tus/tusd/v2/pkg/handler"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/live"
	"github.com/fanseed/fanseed/mail"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

// Config is what the HTTP layer needs to know about its deployment.
type Config struct {
	BaseURL        *url.URL // public URL; cookies are Secure when its scheme is https
	UploadMaxBytes int64    // the largest file an upload may be
	ArtworkDir     string   // where show images are kept
	// TrustedProxies are the networks whose X-Forwarded-For and Forwarded headers name the
	// client (and whose announces may name a peer's address with ip=); nobody else's are read.
	TrustedProxies []netip.Prefix
	// BodyTimeout is how long a request body may take to start arriving, and how far ahead a
	// body arriving at 1 KiB/s or faster stays; zero means DefaultBodyTimeout.
	BodyTimeout time.Duration

	Uploads   *publishing.UploadStore // where upload bytes live
	Publisher *publishing.Publisher   // turns finished uploads into torrents
	Tracker   *seeding.Tracker        // our BitTorrent tracker
	// WebTracker is the WebSocket tracker on /announce for browsers (nil: none).
	WebTracker *seeding.WebTracker
	// EmbedOrigins are the origins (scheme://host[:port], lower case) of other sites whose pages
	// may use the WebSocket tracker, besides BaseURL's.
	EmbedOrigins []string
	// PlayerPeerGrace is how long the browser player lets the swarm fill a low buffer before it
	// adds the web seed (0: the player's default).
	PlayerPeerGrace time.Duration
	// WebSeedTally counts the web seed's bytes per torrent for the playback days (nil: /metrics only).
	WebSeedTally *seeding.WebSeedTally
	// WebSeedGate bounds the web seed's rate to fans' BitTorrent clients while the fleet seeds a
	// torrent well (nil: no bound).
	WebSeedGate *seeding.WebSeedGate
	Published   *seeding.Published // the torrents the tracker serves
	Fleet       *seeding.Fleet     // seedbox nodes and their assignments
	NodeToken   string             // the shared secret seedbox nodes send; empty closes the node API

	MetricsAllow []netip.Prefix // networks /metrics answers; nil: loopback only
	MetricsToken string         // a Bearer token that opens /metrics from anywhere; empty: none

	// EarlyTracker is the tracker of campaigns' private early-access torrents, apart from the
	// public one (whose swarms never list a private torrent); the announce handler lets in
	// only passkeys entitled to the torrent. EarlyAccessKey signs their web seed URLs. Either
	// nil turns early access off.
	EarlyTracker   *seeding.Tracker
	EarlyAccessKey []byte
	// Live is the RTMP ingest whose streams' HLS files /live/ serves (nil: no live ingest).
	Live *live.Service
	// LiveRTMPURL is the server URL creators put into OBS.
	LiveRTMPURL string
	// Stopping ends when the process starts shutting down: responses that last (the overlay's
	// event stream) end then, so that shutting down does not wait on them; nil for never.
	Stopping context.Context

	Money *billing.Service // Stripe, webhooks and payouts (required; without a key, offline test mode)
	Mail  *mail.Service    // email; nil keeps every message in the outbox
}

// Server holds the dependencies shared by handlers.
type Server struct {
	cfg     Config
	db      *pgxpool.Pool
	log     *slog.Logger
	views   *views
	metrics *metrics
	ready   func(context.Context) error

	uploads    *publishing.UploadStore
	tus        *tus.UnroutedHandler
	publisher  *publishing.Publisher
	tracker    *seeding.Tracker
	webTracker *seeding.WebTracker
	published  *seeding.Published
	fleet      *seeding.Fleet
	fans       fanCache

	csp, embedCSP  string       // Content-Security-Policy of every page, and of the embeddable button
	liveCSP        string       // of the live page, whose player plays a MediaSource (a blob: URL)
	playerEmbedCSP string       // of the episode player other sites frame
	playerScript   string       // the player bundle's URL; "" when it was not built
	liveScript     string       // the live player bundle's URL; "" when it was not built
	playbackLimit  *addrLimiter // playback reports, per client address
	mail           *mail.Service
	dbHealth       *dbHealth
	manageLimit    *addrLimiter // asking for donation management links, per client address
}

// NewServer builds the HTTP handler for the control plane. ready reports whether the process
// can serve traffic (database reachable, migrations applied), for /readyz.
func NewServer(cfg Config, db *pgxpool.Pool, logger *slog.Logger, reg prometheus.Registerer, ready func(context.Context) error) (http.Handler, error) {
	if cfg.Money == nil {
		return nil, errors.New("api: Config.Money is required: build the money service once, where the program is wired")
	}
	v, err := parseViews()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, db: db, log: logger, views: v, metrics: newMetrics(reg), ready: ready,
		uploads: cfg.Uploads, publisher: cfg.Publisher, tracker: cfg.Tracker, webTracker: cfg.WebTracker, published: cfg.Published, fleet: cfg.Fleet}
	if s.cfg.MetricsAllow == nil {
		s.cfg.MetricsAllow = loopbackOnly
	}
	var origins []string
	if cfg.BaseURL != nil {
		origins = append(origins, cfg.BaseURL.String())
	}
	if cfg.Publisher != nil {
		origins = append(origins, cfg.Publisher.BaseURL)
	}
	s.csp, s.embedCSP = contentSecurityPolicy("'none'", origins...), contentSecurityPolicy("*", origins...)
	s.liveCSP = strings.Replace(s.csp, "media-src ", "media-src blob: ", 1)
	s.playerEmbedCSP = contentSecurityPolicy(strings.Join(append([]string{"'self'"}, cfg.EmbedOrigins...), " "), origins...)
	s.playbackLimit = &addrLimiter{every: playbackEvery, burst: playbackBurst}
	if s.playerScript = playerScript(); s.playerScript == "" {
		logger.Warn("the player bundle is not built (templates/static/player/): episode pages play the web seed alone; build it with `npm ci --ignore-scripts && node build.mjs` in web/")
	}
	s.liveScript = bundleScript(liveBundle)
	s.mail = cfg.Mail
	if s.mail == nil {
		s.mail = &mail.Service{DB: db, From: "Fanseed <noreply@localhost>", Log: logger}
	}
	s.dbHealth = &dbHealth{log: logger, ping: db.Ping}
	s.manageLimit = &addrLimiter{every: manageEvery, burst: manageBurst}
	s.uploads.Rejected = s.uploadRejected
	if s.tus, err = s.newTusHandler(); err != nil {
		return nil, err
	}
	return s.routes(), nil
}

func (s *Server) secureCookies() bool {
	return s.cfg.BaseURL != nil && s.cfg.BaseURL.Scheme == "https"
}
