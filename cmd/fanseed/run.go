package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/live"
	"github.com/fanseed/fanseed/migrations"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

var commands = []struct{ name, help string }{
	{"serve", "run the control plane: portal, fan pages, API, webhooks, tracker, web seed"},
	{"dev", "run everything in one process with no set-up (a private PostgreSQL when DATABASE_URL is unset)"},
	{"seedbox", "run one seedbox node of the fleet (CONTROL_URL, NODE_TOKEN, NODE_*); `seedbox remove NAME` drains a node, `seedbox revoke NAME` takes its secret away, `seedbox readmit NAME` lets it enrol again"},
	{"migrate", "apply database migrations and exit"},
	{"admin create-user", "create an account: -email, -name, -role (admin, creator, partner), -password-file"},
	{"payouts run", "pay every connected party its balance: -period 2026-11"},
	{"refund", "refund a payment through Stripe: -charge ch_... [-amount 12.50] [-reason TEXT]; `refund list` lists payments, refunds and disputes"},
	{"version", "print the version"},
	{"help", "print this help"},
}

// run is the whole program: main only supplies the process's environment, so tests can
// start the real thing.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		usage(stderr)
		return errors.New("no command given")
	}
	switch args[1] {
	case "serve":
		return serve(ctx, getenv, stdout, stderr, false)
	case "dev":
		return serve(ctx, getenv, stdout, stderr, true)
	case "seedbox":
		return seedbox(ctx, args[2:], getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, getenv, stderr)
	case "admin":
		if len(args) < 3 || args[2] != "create-user" {
			return errors.New("usage: fanseed admin create-user -email EMAIL -name NAME [-role admin] [-password-file FILE]")
		}
		return createUser(ctx, args[3:], getenv, stdout, stderr)
	case "payouts":
		return payouts(ctx, args[2:], getenv, stdout, stderr)
	case "refund":
		return refund(ctx, args[2:], getenv, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "fanseed", version)
		return nil
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[1])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Fanseed: creators publish over BitTorrent and are paid by their fans.")
	fmt.Fprintln(w, "\nUsage: fanseed COMMAND")
	fmt.Fprintln(w, "\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.help)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nEnvironment:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range slices.Concat(envVars, fleetEnvVars) {
		fmt.Fprintf(tw, "  %s\t%s\t(default %s)\n", v.Name, v.Help, orNone(v.Default))
	}
	tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openDB connects to PostgreSQL and applies pending migrations under the advisory lock.
func openDB(ctx context.Context, url string, logger *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	applied, err := migrations.Up(ctx, pool, nil)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if len(applied) > 0 {
		logger.Info("migrations applied", slog.Any("versions", applied))
	}
	// River's own tables, by its migrator, under the same advisory lock.
	riverApplied, err := billing.MigrateJobs(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if len(riverApplied) > 0 {
		logger.Info("river migrations applied", slog.Any("versions", riverApplied))
	}
	return pool, nil
}

// connect is how a command that needs the database starts: the configuration, the logger, and
// the database migrated and open (the caller closes it).
func connect(ctx context.Context, getenv func(string) string, stderr io.Writer) (config, *slog.Logger, *pgxpool.Pool, error) {
	cfg, err := loadConfig(getenv, false)
	if err != nil {
		return config{}, nil, nil, err
	}
	logger := newLogger(cfg, stderr)
	pool, err := openDB(ctx, cfg.DatabaseURL, logger)
	return cfg, logger, pool, err
}

func migrate(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	_, logger, pool, err := connect(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	pool.Close()
	logger.Info("database is up to date")
	return nil
}

// serve runs the control plane until ctx ends, then lets in-flight requests finish.
func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, dev bool) error {
	cfg, err := loadConfig(getenv, dev)
	fleetCfg, fleetErr := loadFleetConfig(getenv, dev)
	if err = errors.Join(err, fleetErr); err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	if dev && cfg.DatabaseURL == "" {
		url, stop, err := devDatabase(ctx, cfg.DataDir, localServer, logger)
		if err != nil {
			return err
		}
		defer stop()
		cfg.DatabaseURL = url
	}
	pool, err := openDB(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("ADDR: listen on %s: %w", cfg.Addr, err)
	}
	cfg.baseURLFor(ln.Addr())

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ready := func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
		pending, err := migrations.Pending(ctx, pool)
		if err != nil {
			return err
		}
		if pending {
			return errors.New("migrations pending")
		}
		return nil
	}
	uploads, err := publishing.NewUploadStore(filepath.Join(cfg.DataDir, "uploads"))
	if err != nil {
		return fmt.Errorf("DATA_DIR: %w", err)
	}
	published := &seeding.Published{DB: pool}
	tracker := &seeding.Tracker{AnnouncesPerMinute: cfg.AnnouncesPerMinute}
	webTracker := &seeding.WebTracker{Tracker: tracker, SocketsPerIP: cfg.SocketsPerIP, LiveOn: (&live.OnAir{DB: pool}).On}
	// The published torrents, and the swarms of live streams while they are on.
	tracker.Allowed = func(ih [20]byte) bool { return published.Allowed(ih) || webTracker.LiveSwarm(ih) }
	// Processes behind one load balancer share their swarms through the database.
	tracker.ShareThrough(pool)
	go tracker.ShareEvery(ctx, 3*time.Second, logger)
	go seeding.FollowDownNodes(ctx, pool, tracker, 3*time.Second, logger)
	// Browsers: the WebSocket tracker, one swarm with the HTTP one, relaying between processes.
	webTracker.RelayThrough(ctx, pool, logger)
	// Campaigns' private early-access torrents have a tracker of their own, in this process:
	// the announce handler lets in only passkeys entitled to the torrent they name.
	earlyTracker := &seeding.Tracker{Allowed: func([20]byte) bool { return true }, AnnouncesPerMinute: cfg.AnnouncesPerMinute}
	publisher := &publishing.Publisher{DB: pool, Store: uploads, BaseURL: cfg.BaseURL.String()}
	// Torrents made before the WebSocket tracker (or under another BASE_URL) list it from now on.
	if n, err := seeding.AddWebTrackerToAll(ctx, pool, publisher.WebTrackerURL()); err != nil {
		logger.Warn("add the WebSocket tracker to torrents", slog.Any("error", err))
	} else if n > 0 {
		logger.Info("torrents re-issued with the WebSocket tracker", slog.Int("torrents", n))
	}
	// Torrents made before url-list named the file itself (webtorrent needs it) name it from now on.
	if n, err := seeding.SetWebSeedOfAll(ctx, pool, publisher.WebSeedURL); err != nil {
		logger.Warn("set the web seed of torrents", slog.Any("error", err))
	} else if n > 0 {
		logger.Info("torrents re-issued with the web seed's file URL", slog.Int("torrents", n))
	}
	go publishing.ExpireUploadsEvery(ctx, pool, uploads, cfg.UploadExpireAfter, min(time.Hour, cfg.UploadExpireAfter/4), logger)
	go seeding.RecordStatsEvery(ctx, pool, tracker, 30*time.Second, logger)
	go billing.RollupStatementDaysEvery(ctx, pool, 10*time.Minute, logger)
	fleet := startFleet(ctx, cfg, fleetCfg, pool, published, publisher, logger)
	reg.MustRegister(newOpsCollector(pool, fleet, tracker, logger))

	money, post, jobs, err := newMoney(cfg, pool, logger, true)
	if err != nil {
		return err
	}
	stopJobs, err := startJobs(ctx, jobs, logger)
	if err != nil {
		return err
	}
	defer func() { // on the way out of an error; shutdown below stops them first
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		stopJobs(ctx)
	}()

	// Live: the RTMP ingest, its streams' segments under DATA_DIR/live, recordings published.
	var liveIngest *live.Service
	if cfg.LiveRTMPAddr != "" {
		rtmp, err := net.Listen("tcp", cfg.LiveRTMPAddr)
		if err != nil {
			return fmt.Errorf("LIVE_RTMP_ADDR: listen on %s: %w", cfg.LiveRTMPAddr, err)
		}
		cfg.liveRTMPURLFor(rtmp.Addr())
		liveIngest = &live.Service{DB: pool, Dir: filepath.Join(cfg.DataDir, "live"), Log: logger, Silence: cfg.LiveSilence,
			Publish: live.PublishWith(publisher, pool)}
		liveDone := make(chan struct{})
		go func() {
			defer close(liveDone)
			if err := liveIngest.Serve(ctx, rtmp); err != nil {
				logger.Error("live ingest stopped", slog.Any("error", err))
			}
		}()
		defer func() { <-liveDone }()
		logger.Info("live ingest", slog.String("addr", rtmp.Addr().String()), slog.String("server_url", cfg.LiveRTMPURL))
	}
	// The web seed's bytes by who asked, added to the playback days every 10 s.
	webSeedTally := &seeding.WebSeedTally{}
	go webSeedTally.FlushEvery(ctx, pool, 10*time.Second, logger)
	var webSeedGate *seeding.WebSeedGate
	if cfg.WebSeedClientRate > 0 {
		webSeedGate = &seeding.WebSeedGate{Fleet: fleet, Rate: cfg.WebSeedClientRate}
	}
	handler, err := api.NewServer(api.Config{
		BaseURL: cfg.BaseURL, UploadMaxBytes: cfg.UploadMaxBytes, ArtworkDir: filepath.Join(cfg.DataDir, "artwork"),
		TrustedProxies: cfg.TrustedProxies, BodyTimeout: cfg.BodyTimeout,
		Uploads: uploads, Publisher: publisher, Tracker: tracker, Published: published,
		WebTracker: webTracker, EmbedOrigins: cfg.EmbedOrigins, PlayerPeerGrace: cfg.PlayerPeerGrace, WebSeedTally: webSeedTally,
		WebSeedGate: webSeedGate,
		Fleet:       fleet, NodeToken: fleetCfg.NodeToken,
		MetricsAllow: cfg.MetricsAllow, MetricsToken: cfg.MetricsToken,
		EarlyTracker: earlyTracker, EarlyAccessKey: cfg.EarlyAccessKey,
		Live: liveIngest, LiveRTMPURL: cfg.LiveRTMPURL, Stopping: ctx,
		Money: money, Mail: post,
	}, pool, logger, reg, ready)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("base_url", cfg.BaseURL.String()))
	if dev {
		stopNodes, err := startDevNodes(ctx, cfg, fleetCfg, fleet, "http://"+ln.Addr().String(), logger)
		if err != nil {
			return err
		}
		defer stopNodes()
		fmt.Fprintf(stdout, "Fanseed is running at %s\n", cfg.BaseURL)
	}

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// One deadline for everything: requests in flight and jobs finish side by side, and what is
	// still running at the deadline is cut, so that closing the pool does not wait on it.
	logger.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	jobsStopped := make(chan struct{})
	go func() {
		defer close(jobsStopped)
		stopJobs(shutCtx)
	}()
	err = srv.Shutdown(shutCtx)
	if err != nil {
		srv.Close() // cancels the requests still running, which lets go of their connections
		err = fmt.Errorf("shutdown: requests still running after SHUTDOWN_TIMEOUT (%s) were cut off: %w", cfg.ShutdownTimeout, err)
	}
	<-jobsStopped
	return err
}

func createUser(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin create-user", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email address (required)")
	name := fs.String("name", "Admin", "display name")
	role := fs.String("role", "admin", "admin, creator or partner")
	pwFile := fs.String("password-file", "", "file holding the password; a random one is made and printed when unset")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(getenv, false)
	if err != nil {
		return err
	}
	password, generated := "", false
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("-password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	} else {
		password, generated = rand.Text(), true
	}
	logger := newLogger(cfg, stderr)
	pool, err := openDB(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer pool.Close()
	a, err := createAccount(ctx, pool, *email, *name, password, *role)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s account %d for %s\n", a.Role, a.ID, a.Email)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", password)
	}
	return nil
}
