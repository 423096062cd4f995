package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fanseed/fanseed/mail"
)

// config is every setting Fanseed reads from its environment, read once at start-up.
type config struct {
	DatabaseURL     string
	Addr            string
	BaseURL         *url.URL
	DataDir         string
	LogFormat       string
	LogLevel        slog.Level
	ShutdownTimeout time.Duration
	UploadMaxBytes  int64
	Replicas        int

	StripeSecretKey     string // "" for offline test mode
	StripeWebhookSecret string
	StripeAPIBase       string // "" for Stripe itself
	EventWorkers        int
	EventBatchWorkers   int

	MetricsAllow       []netip.Prefix // networks /metrics answers; empty with METRICS_ALLOW=none
	MetricsToken       string         // Bearer token that opens /metrics from anywhere
	EarlyAccessKey     []byte         // signs early-access web seed URLs; random per process when unset
	SMTPURL            string         // "" keeps mail in the outbox
	MailFrom           string
	TrustedProxies     []netip.Prefix
	AnnouncesPerMinute int      // < 0 for no limit
	SocketsPerIP       int      // WebSocket tracker; < 0 for no limit
	EmbedOrigins       []string // scheme://host[:port] of other sites whose pages may use the WebSocket tracker
	BodyTimeout        time.Duration
	UploadExpireAfter  time.Duration
	PlayerPeerGrace    time.Duration // how long the browser player waits on the swarm before the web seed helps
	WebSeedClientRate  int64         // bytes/s to a fan's BitTorrent client while the fleet seeds the torrent well; 0: no bound
	LiveRTMPAddr       string        // host:port of the RTMP ingest; "" for none
	LiveRTMPURL        string        // the server URL creators put into OBS
	LiveSilence        time.Duration // a stream sending nothing for this long ends
}

// envVar documents one variable for `fanseed help` and the README.
type envVar struct {
	Name, Default, Help string
}

var envVars = []envVar{
	{"DATABASE_URL", "", "PostgreSQL URL (postgres://user:pass@host:5432/db). Required for serve and migrate; dev starts a private cluster when unset."},
	{"ADDR", "127.0.0.1:8080", "host:port the HTTP server listens on."},
	{"BASE_URL", "http://<ADDR>", "public URL of the site (http or https); cookies are Secure when https."},
	{"DATA_DIR", "./var", "directory for uploads, torrents and the dev database."},
	{"LOG_FORMAT", "json", "json or text."},
	{"LOG_LEVEL", "info", "debug, info, warn or error."},
	{"SHUTDOWN_TIMEOUT", "20s", "how long shutting down may take in all after SIGTERM: requests in flight and jobs finish side by side; what still runs then is cut off."},
	{"UPLOAD_MAX_BYTES", "21474836480", "the largest episode file an upload may be, in bytes (20 GiB)."},
	{"REPLICAS", "2", "how many seedbox nodes must seed a torrent before it is published."},
	{"STRIPE_SECRET_KEY", "", "Stripe secret key (sk_live_..., sk_test_... or rk_...); unset for offline test mode, where donations complete on a test checkout page."},
	{"STRIPE_WEBHOOK_SECRET", "", "signing secret of the Stripe webhook endpoint /webhooks/stripe (whsec_...); required with STRIPE_SECRET_KEY."},
	{"STRIPE_API_BASE", "https://api.stripe.com", "Stripe API base URL, for stripe-mock in tests."},
	{"EVENT_WORKERS", "16", "how many Stripe events are applied one by one at once (those a batch leaves, and those woken by the payment they waited for)."},
	{"EVENT_BATCH_WORKERS", "2", "how many batches of pending Stripe events are applied at once (about one per core)."},
	{"METRICS_ALLOW", "127.0.0.0/8,::1/128", "networks (comma-separated CIDRs or addresses) whose clients may read /metrics; none for no network, only METRICS_TOKEN."},
	{"METRICS_TOKEN", "", "a secret (at least 16 characters) that opens /metrics from anywhere, sent as Authorization: Bearer <token>."},
	{"EARLY_ACCESS_KEY", "random per process", "a secret (at least 32 characters) that signs the expiring web seed URLs of campaigns' private early-access torrents; several serve processes need the same one."},
	{"SMTP_URL", "", "SMTP server mail is sent through: smtp://user:pass@host:587 (STARTTLS when offered) or smtps://user:pass@host:465; unset, mail stays in the outbox, read on /admin/outbox."},
	{"MAIL_FROM", "Fanseed <noreply@localhost>", "the From address of Fanseed's email (Name <address> or address); required with SMTP_URL."},
	{"TRUSTED_PROXIES", "", "comma-separated networks (CIDRs or addresses) of reverse proxies whose X-Forwarded-For or Forwarded header names the client, for the tracker, logs, throttling and counts; their announces may also name a peer's address with ip=."},
	{"UPLOAD_EXPIRE_AFTER", "24h", "an unfinished upload nobody has written to for this long is deleted, with its bytes; its episode asks for the file again."},
	{"REQUEST_BODY_TIMEOUT", "30s", "how long a request body may take to start arriving; it must then keep coming at 1 KiB/s on average, so a body trickling in is cut while uploads at any real speed go on."},
	{"TRACKER_ANNOUNCES_PER_MINUTE", "120", "how many tracker announces one address (an IPv6 /64) may make per minute; 0 means no limit."},
	{"TRACKER_SOCKETS_PER_IP", "64", "how many WebSocket tracker connections one address (an IPv6 /64) may hold open; 0 means no limit."},
	{"EMBED_ORIGINS", "", "comma-separated origins (https://host[:port]) of other sites whose pages may use the WebSocket tracker, besides BASE_URL's own."},
	{"WEBSEED_CLIENT_RATE", "262144", "bytes per second the web seed sends one fan's address for one torrent from a BitTorrent client while the fleet seeds that torrent with REPLICAS proven nodes (seedbox nodes and browsers are never bounded); 0 means no bound. 256 KiB/s keeps a client fetching from the nodes at 20 Mbit/s under 10% from the origin and still brings a 300 MiB episode in 20 minutes to a client that reaches no node."},
	{"LIVE_RTMP_ADDR", "127.0.0.1:1935 in dev", "host:port the RTMP ingest listens on (OBS, ffmpeg: rtmp://host:1935/live/KEY); unset in serve, there is no live ingest."},
	{"LIVE_RTMP_URL", "rtmp://<BASE_URL host>:<port>/live", "the RTMP server URL the creator's live page tells them to put into OBS."},
	{"LIVE_SILENCE", "10s", "a live stream that sends nothing for this long ends, and its recording is published."},
	{"PLAYER_PEER_GRACE", "1s", "how long the browser player lets the swarm fill a low buffer before it adds the web seed; longer saves origin bytes, shorter starts sooner."},
}

// loadConfig reads and validates the environment. Every problem names its variable.
func loadConfig(getenv func(string) string, dev bool) (config, error) {
	var errs []error
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := config{
		DatabaseURL: get("DATABASE_URL", ""),
		Addr:        get("ADDR", "127.0.0.1:8080"),
		DataDir:     get("DATA_DIR", "./var"),
		LogFormat:   get("LOG_FORMAT", "json"),
	}
	if dev && getenv("LOG_FORMAT") == "" {
		c.LogFormat = "text"
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("DATABASE_URL: must be a postgres:// URL"))
		}
	} else if !dev {
		errs = append(errs, errors.New("DATABASE_URL: is required (for example postgres://postgres@127.0.0.1:5432/fanseed)"))
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("ADDR: %q is not host:port", c.Addr))
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		errs = append(errs, fmt.Errorf("ADDR: port %q is not a number from 0 to 65535", port))
	}
	if raw := get("BASE_URL", ""); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("BASE_URL: %q must be an absolute http or https URL", raw))
		} else {
			u.Path = strings.TrimRight(u.Path, "/")
			c.BaseURL = u
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q must be json or text", c.LogFormat))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %q must be debug, info, warn or error", getenv("LOG_LEVEL")))
	}
	d, err := time.ParseDuration(get("SHUTDOWN_TIMEOUT", "20s"))
	if err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT: %q must be a positive duration such as 20s", getenv("SHUTDOWN_TIMEOUT")))
	}
	c.ShutdownTimeout = d
	if c.UploadMaxBytes, err = strconv.ParseInt(get("UPLOAD_MAX_BYTES", "21474836480"), 10, 64); err != nil || c.UploadMaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("UPLOAD_MAX_BYTES: %q must be a positive number of bytes", getenv("UPLOAD_MAX_BYTES")))
	}
	if c.Replicas, err = strconv.Atoi(get("REPLICAS", "2")); err != nil || c.Replicas < 1 || c.Replicas > 20 {
		errs = append(errs, fmt.Errorf("REPLICAS: %q must be a whole number from 1 to 20", getenv("REPLICAS")))
	}
	c.StripeSecretKey, c.StripeWebhookSecret = get("STRIPE_SECRET_KEY", ""), get("STRIPE_WEBHOOK_SECRET", "")
	if k := c.StripeSecretKey; k != "" && !strings.HasPrefix(k, "sk_") && !strings.HasPrefix(k, "rk_") {
		errs = append(errs, errors.New("STRIPE_SECRET_KEY: must start with sk_ or rk_"))
	}
	if c.StripeSecretKey != "" && c.StripeWebhookSecret == "" {
		errs = append(errs, errors.New("STRIPE_WEBHOOK_SECRET: is required with STRIPE_SECRET_KEY (the endpoint's signing secret, whsec_...)"))
	}
	if raw := get("STRIPE_API_BASE", ""); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("STRIPE_API_BASE: %q must be an absolute http or https URL", raw))
		} else {
			c.StripeAPIBase = strings.TrimRight(raw, "/")
		}
	}
	if c.EventWorkers, err = strconv.Atoi(get("EVENT_WORKERS", "16")); err != nil || c.EventWorkers < 1 || c.EventWorkers > 1000 {
		errs = append(errs, fmt.Errorf("EVENT_WORKERS: %q must be a whole number from 1 to 1000", getenv("EVENT_WORKERS")))
	}
	if c.EventBatchWorkers, err = strconv.Atoi(get("EVENT_BATCH_WORKERS", "2")); err != nil || c.EventBatchWorkers < 1 || c.EventBatchWorkers > 100 {
		errs = append(errs, fmt.Errorf("EVENT_BATCH_WORKERS: %q must be a whole number from 1 to 100", getenv("EVENT_BATCH_WORKERS")))
	}
	if c.MetricsAllow, err = parseNetworks(get("METRICS_ALLOW", "127.0.0.0/8,::1/128")); err != nil {
		errs = append(errs, fmt.Errorf("METRICS_ALLOW: %w", err))
	}
	if c.MetricsToken = get("METRICS_TOKEN", ""); c.MetricsToken != "" && len(c.MetricsToken) < minTokenLen {
		errs = append(errs, fmt.Errorf("METRICS_TOKEN: must be at least %d characters (for example: openssl rand -hex 32)", minTokenLen))
	}
	if key := get("EARLY_ACCESS_KEY", ""); key != "" {
		if len(key) < 32 {
			errs = append(errs, fmt.Errorf("EARLY_ACCESS_KEY: must be at least 32 characters (for example: openssl rand -hex 32)"))
		}
		c.EarlyAccessKey = []byte(key)
	} else {
		c.EarlyAccessKey = make([]byte, 32)
		rand.Read(c.EarlyAccessKey)
	}
	c.SMTPURL, c.MailFrom = get("SMTP_URL", ""), get("MAIL_FROM", "")
	if c.SMTPURL != "" {
		if _, err := mail.ParseURL(c.SMTPURL); err != nil {
			errs = append(errs, fmt.Errorf("SMTP_URL: %w (for example smtp://user:pass@mail.example.com:587)", err))
		}
		if c.MailFrom == "" {
			errs = append(errs, errors.New("MAIL_FROM: is required with SMTP_URL (for example Fanseed <noreply@example.com>)"))
		}
	}
	if c.MailFrom == "" {
		c.MailFrom = "Fanseed <noreply@localhost>"
	}
	if a, err := netmail.ParseAddress(c.MailFrom); err != nil || !strings.Contains(a.Address, "@") {
		errs = append(errs, fmt.Errorf("MAIL_FROM: %q must be an address such as Fanseed <noreply@example.com>", c.MailFrom))
	}
	if raw := get("TRUSTED_PROXIES", ""); raw != "" {
		if c.TrustedProxies, err = parseNetworks(raw); err != nil {
			errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %w", err))
		}
	}
	if c.UploadExpireAfter, err = time.ParseDuration(get("UPLOAD_EXPIRE_AFTER", "24h")); err != nil || c.UploadExpireAfter < time.Minute {
		errs = append(errs, fmt.Errorf("UPLOAD_EXPIRE_AFTER: %q must be a duration of a minute or more, such as 24h", getenv("UPLOAD_EXPIRE_AFTER")))
	}
	if c.PlayerPeerGrace, err = time.ParseDuration(get("PLAYER_PEER_GRACE", "1s")); err != nil || c.PlayerPeerGrace < 0 || c.PlayerPeerGrace > time.Minute {
		errs = append(errs, fmt.Errorf("PLAYER_PEER_GRACE: %q must be a duration from 0s to 1m, such as 1s", getenv("PLAYER_PEER_GRACE")))
	}
	if c.WebSeedClientRate, err = strconv.ParseInt(get("WEBSEED_CLIENT_RATE", "262144"), 10, 64); err != nil || c.WebSeedClientRate < 0 || (c.WebSeedClientRate > 0 && c.WebSeedClientRate < 16<<10) {
		errs = append(errs, fmt.Errorf("WEBSEED_CLIENT_RATE: %q must be a number of bytes per second of at least 16384 (one block a second), or 0 for no bound", getenv("WEBSEED_CLIENT_RATE")))
	}
	if c.BodyTimeout, err = time.ParseDuration(get("REQUEST_BODY_TIMEOUT", "30s")); err != nil || c.BodyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("REQUEST_BODY_TIMEOUT: %q must be a positive duration such as 30s", getenv("REQUEST_BODY_TIMEOUT")))
	}
	if c.AnnouncesPerMinute, err = strconv.Atoi(get("TRACKER_ANNOUNCES_PER_MINUTE", "120")); err != nil || c.AnnouncesPerMinute < 0 {
		errs = append(errs, fmt.Errorf("TRACKER_ANNOUNCES_PER_MINUTE: %q must be a whole number, 0 for no limit", getenv("TRACKER_ANNOUNCES_PER_MINUTE")))
	} else if c.AnnouncesPerMinute == 0 {
		c.AnnouncesPerMinute = -1
	}
	if c.SocketsPerIP, err = strconv.Atoi(get("TRACKER_SOCKETS_PER_IP", "64")); err != nil || c.SocketsPerIP < 0 {
		errs = append(errs, fmt.Errorf("TRACKER_SOCKETS_PER_IP: %q must be a whole number, 0 for no limit", getenv("TRACKER_SOCKETS_PER_IP")))
	} else if c.SocketsPerIP == 0 {
		c.SocketsPerIP = -1
	}
	liveDefault := ""
	if dev {
		liveDefault = "127.0.0.1:1935"
	}
	if c.LiveRTMPAddr = get("LIVE_RTMP_ADDR", liveDefault); c.LiveRTMPAddr != "" {
		if _, port, err := net.SplitHostPort(c.LiveRTMPAddr); err != nil {
			errs = append(errs, fmt.Errorf("LIVE_RTMP_ADDR: %q is not host:port", c.LiveRTMPAddr))
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("LIVE_RTMP_ADDR: port %q is not a number from 0 to 65535", port))
		}
	}
	if c.LiveRTMPURL = get("LIVE_RTMP_URL", ""); c.LiveRTMPURL != "" {
		if u, err := url.Parse(c.LiveRTMPURL); err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" {
			errs = append(errs, fmt.Errorf("LIVE_RTMP_URL: %q must be an rtmp:// URL such as rtmp://live.example.com:1935/live", c.LiveRTMPURL))
		}
	}
	if c.LiveSilence, err = time.ParseDuration(get("LIVE_SILENCE", "10s")); err != nil || c.LiveSilence < time.Second || c.LiveSilence > 10*time.Minute {
		errs = append(errs, fmt.Errorf("LIVE_SILENCE: %q must be a duration from 1s to 10m, such as 10s", getenv("LIVE_SILENCE")))
	}
	if c.EmbedOrigins, err = parseOrigins(get("EMBED_ORIGINS", "")); err != nil {
		errs = append(errs, fmt.Errorf("EMBED_ORIGINS: %w", err))
	}
	return c, errors.Join(errs...)
}

// parseOrigins reads a comma-separated list of web origins, scheme://host[:port], in lower case.
func parseOrigins(raw string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("%q is not an origin such as https://example.com or https://example.com:8443", part)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

// parseNetworks reads a comma-separated list of CIDRs or single addresses; "none" is no network.
func parseNetworks(raw string) ([]netip.Prefix, error) {
	nets := []netip.Prefix{}
	if strings.TrimSpace(raw) == "none" {
		return nets, nil
	}
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a network such as 10.0.0.0/8 or an address such as 10.0.0.7", part)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		nets = append(nets, p.Masked())
	}
	if len(nets) == 0 {
		return nil, errors.New(`no network given (use "none" for none)`)
	}
	return nets, nil
}

// liveRTMPURLFor fills in LIVE_RTMP_URL from BASE_URL's host and the port the ingest listens on.
func (c *config) liveRTMPURLFor(ln net.Addr) {
	if c.LiveRTMPURL != "" {
		return
	}
	_, port, _ := net.SplitHostPort(ln.String())
	c.LiveRTMPURL = "rtmp://" + net.JoinHostPort(c.BaseURL.Hostname(), port) + "/live"
}

// baseURLFor fills in BASE_URL from the address actually listened on when it was not set.
func (c *config) baseURLFor(ln net.Addr) {
	if c.BaseURL != nil {
		return
	}
	c.BaseURL = &url.URL{Scheme: "http", Host: ln.String()}
}
