package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
	"github.com/pion/webrtc/v4"
)

// fleetEnvVars document the fleet's variables, for `fanseed help` and the README.
var fleetEnvVars = []envVar{
	{"NODE_TOKEN", "random in dev", "the fleet token of the control plane and its seedbox nodes (at least 16 characters): nodes enrol with it, then each uses a secret of its own; serve closes the node API without it."},
	{"NODE_DOWN_AFTER", "30s", "serve: a seedbox node silent for this long is down and its torrents go to other nodes."},
	{"RECONCILE_EVERY", "5s", "serve: how often replicas are checked, nodes marked down and torrents published or failed."},
	{"PUBLISH_TIMEOUT", "30m", "serve: an episode not seeded by REPLICAS nodes by then fails, with the reason shown to its creator."},
	{"PROOF_INTERVAL", "1h", "serve: the mean time between proofs of one replica (fetching random pieces from the node and checking their hashes), each from half to one and a half times it; failed proofs and suspect nodes are retried after it or a minute, whichever is shorter."},
	{"PROOF_TIMEOUT", "30s", "serve: how long a node has to send the pieces of one proof before it fails it and is suspect."},
	{"REPLICAS_MAX", "REPLICAS+2", "serve: the most replicas a busy torrent gets (demand-following replicas); REPLICAS turns them off."},
	{"REPLICAS_HOT", "10", "serve: leechers per seed in a torrent's swarm at or above which it gains a replica, up to REPLICAS_MAX."},
	{"REPLICAS_COLD", "2", "serve: leechers per seed at or below which a torrent with extra replicas gives one back, down to REPLICAS."},
	{"REBALANCE_BYTES_PER_MINUTE", "1073741824", "serve: the bytes of replicas the rebalancer may start moving in a minute, toward an even spread over the nodes; 0 turns rebalancing off."},
	{"CONTROL_URL", "", "seedbox: the control plane's URL (http or https). Required."},
	{"NODE_NAME", "the host name", "seedbox: this node's name in the fleet."},
	{"NODE_DATA_DIR", "./var/seedbox", "seedbox: where the node keeps its torrents."},
	{"NODE_LISTEN_ADDR", "0.0.0.0:6881", "seedbox: host:port of the node's BitTorrent listener (TCP and uTP)."},
	{"NODE_PUBLIC_ADDR", "NODE_LISTEN_ADDR", "seedbox: host:port peers dial; required when listening on all interfaces."},
	{"NODE_CAPACITY_BYTES", "107374182400", "seedbox: how many bytes of episodes the node may hold (100 GiB)."},
	{"NODE_ZONE", "", "seedbox: the node's zone (a rack, site or provider: letters, digits, dots, dashes, underscores); no two replicas of a torrent are placed in one zone while another zone has room."},
	{"NODE_UPLOAD_LIMIT", "0", "seedbox: bytes per second the node uploads at most, to all peers together; 0 means no limit."},
	{"NODE_LIVE_EDGE_ADDR", "", "seedbox: host:port of the node's HTTP edge for live streams (viewers fetch segments from it, each fetched once from serve); unset, no edge."},
	{"NODE_LIVE_EDGE_URL", "http://<NODE_LIVE_EDGE_ADDR>", "seedbox: the edge's public URL, given to viewers' pages."},
	{"ICE_SERVERS", "", "seedbox: comma-separated STUN and TURN servers for WebRTC with browsers: stun:host:port, turn:user:password@host:port?transport=udp (turns: for TLS)."},
}

// fleetConfig is what `serve` needs to run the fleet.
type fleetConfig struct {
	NodeToken      string
	DownAfter      time.Duration
	ReconcileEvery time.Duration
	PublishTimeout time.Duration
	ProofInterval  time.Duration
	ProofTimeout   time.Duration

	ReplicasMax             int
	ReplicasHot             float64
	ReplicasCold            float64
	RebalanceBytesPerMinute int64 // < 0 for no rebalancing
}

// minTokenLen keeps the node token out of guessing range.
const minTokenLen = 16

func getOr(getenv func(string) string, name, def string) string {
	if v := strings.TrimSpace(getenv(name)); v != "" {
		return v
	}
	return def
}

func positiveDuration(getenv func(string) string, name, def string, errs *[]error) time.Duration {
	d, err := time.ParseDuration(getOr(getenv, name, def))
	if err != nil || d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s: %q must be a positive duration such as %s", name, getenv(name), def))
	}
	return d
}

// loadFleetConfig reads the fleet's settings for serve and dev; dev makes up a node token.
func loadFleetConfig(getenv func(string) string, dev bool) (fleetConfig, error) {
	var errs []error
	c := fleetConfig{NodeToken: strings.TrimSpace(getenv("NODE_TOKEN"))}
	if c.NodeToken == "" && dev {
		c.NodeToken = rand.Text()
	}
	if c.NodeToken != "" && len(c.NodeToken) < minTokenLen {
		errs = append(errs, fmt.Errorf("NODE_TOKEN: must be at least %d characters (for example: openssl rand -hex 32)", minTokenLen))
	}
	c.DownAfter = positiveDuration(getenv, "NODE_DOWN_AFTER", "30s", &errs)
	c.ReconcileEvery = positiveDuration(getenv, "RECONCILE_EVERY", "5s", &errs)
	c.PublishTimeout = positiveDuration(getenv, "PUBLISH_TIMEOUT", "30m", &errs)
	c.ProofInterval = positiveDuration(getenv, "PROOF_INTERVAL", "1h", &errs)
	c.ProofTimeout = positiveDuration(getenv, "PROOF_TIMEOUT", "30s", &errs)
	replicas, err := strconv.Atoi(getOr(getenv, "REPLICAS", "2")) // loadConfig reports a bad one
	if err != nil {
		replicas = 2
	}
	if c.ReplicasMax, err = strconv.Atoi(getOr(getenv, "REPLICAS_MAX", strconv.Itoa(replicas+2))); err != nil || c.ReplicasMax < replicas || c.ReplicasMax > 20 {
		errs = append(errs, fmt.Errorf("REPLICAS_MAX: %q must be a whole number from REPLICAS (%d) to 20", getenv("REPLICAS_MAX"), replicas))
	}
	if c.ReplicasHot, err = strconv.ParseFloat(getOr(getenv, "REPLICAS_HOT", "10"), 64); err != nil || !(c.ReplicasHot > 0) || c.ReplicasHot > 1e6 {
		errs = append(errs, fmt.Errorf("REPLICAS_HOT: %q must be a positive number of leechers per seed, such as 10", getenv("REPLICAS_HOT")))
	}
	if c.ReplicasCold, err = strconv.ParseFloat(getOr(getenv, "REPLICAS_COLD", "2"), 64); err != nil || !(c.ReplicasCold > 0) || c.ReplicasCold > 1e6 {
		errs = append(errs, fmt.Errorf("REPLICAS_COLD: %q must be a positive number of leechers per seed, such as 2", getenv("REPLICAS_COLD")))
	} else if c.ReplicasCold >= c.ReplicasHot && c.ReplicasHot > 0 {
		errs = append(errs, fmt.Errorf("REPLICAS_COLD: %v must be below REPLICAS_HOT (%v), or torrents would gain and lose replicas in turn", c.ReplicasCold, c.ReplicasHot))
	}
	if c.RebalanceBytesPerMinute, err = strconv.ParseInt(getOr(getenv, "REBALANCE_BYTES_PER_MINUTE", "1073741824"), 10, 64); err != nil || c.RebalanceBytesPerMinute < 0 {
		errs = append(errs, fmt.Errorf("REBALANCE_BYTES_PER_MINUTE: %q must be a number of bytes, 0 to turn rebalancing off", getenv("REBALANCE_BYTES_PER_MINUTE")))
	} else if c.RebalanceBytesPerMinute == 0 {
		c.RebalanceBytesPerMinute = -1
	}
	return c, errors.Join(errs...)
}

// startFleet wires the fleet into the control plane: new torrents get their replicas in the
// transaction that creates them, and the fleet is reconciled and its replicas proven in the
// background.
func startFleet(ctx context.Context, cfg config, fc fleetConfig, pool *pgxpool.Pool, published *seeding.Published,
	publisher *publishing.Publisher, logger *slog.Logger) *seeding.Fleet {
	fleet := &seeding.Fleet{DB: pool, Replicas: cfg.Replicas, DownAfter: fc.DownAfter, PublishTimeout: fc.PublishTimeout,
		Published: published, Episodes: publishing.Episodes{}, Log: logger,
		Demand:                  seeding.Demand{Max: fc.ReplicasMax, Hot: fc.ReplicasHot, Cold: fc.ReplicasCold},
		RebalanceBytesPerMinute: fc.RebalanceBytesPerMinute}
	publisher.Assigned = fleet.Assign
	go fleet.Run(ctx, fc.ReconcileEvery)
	// Replicas a node reports seeding count once proven; the prover looks for due ones every
	// second (or every reconcile, if more often), so a proof follows a node's report closely.
	prover := &seeding.Prover{Fleet: fleet, Interval: fc.ProofInterval, Timeout: fc.ProofTimeout, Log: logger}
	go prover.Run(ctx, min(fc.ReconcileEvery, time.Second))
	go fleet.RunRebalance(ctx, fc.ReconcileEvery)
	if fc.NodeToken == "" {
		logger.Warn("NODE_TOKEN is unset: seedbox nodes cannot register, so no episode can be published")
	}
	return fleet
}

// devNodeCapacity is what each of dev's nodes offers: plenty for a laptop's test episodes.
const devNodeCapacity = 64 << 30

// startDevNodes runs two seedbox nodes in this process for `fanseed dev`, under DATA_DIR/nodes.
// stop ends them and waits until they have closed their files.
func startDevNodes(ctx context.Context, cfg config, fc fleetConfig, fleet *seeding.Fleet, controlURL string, logger *slog.Logger) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }
	for i := 1; i <= 2; i++ {
		name := "dev-" + strconv.Itoa(i)
		nc := seeding.NodeConfig{
			ControlURL: controlURL, Token: fc.NodeToken, Name: name,
			DataDir:       filepath.Join(cfg.DataDir, "nodes", strconv.Itoa(i)),
			CapacityBytes: devNodeCapacity,
			Log:           logger.With(slog.String("node", name)),
		}
		// The address the node had last time, so that a restarted dev is the same peer to the
		// tracker (a peer is its address) rather than a second one until the first expires.
		addrFile := filepath.Join(nc.DataDir, "listen_addr")
		var node *seeding.Node
		if b, err := os.ReadFile(addrFile); err == nil {
			nc.ListenAddr = strings.TrimSpace(string(b))
			node, err = seeding.NewNode(nc)
			if err != nil {
				logger.Info("dev seedbox node takes a new port", slog.String("node", name), slog.Any("error", err))
			}
		}
		if node == nil {
			nc.ListenAddr = "127.0.0.1:0"
			if node, err = seeding.NewNode(nc); err != nil {
				stop()
				return nil, fmt.Errorf("seedbox node %s: %w", name, err)
			}
		}
		if err := os.WriteFile(addrFile, []byte(node.ListenAddr()+"\n"), 0o600); err != nil {
			logger.Warn("remember dev seedbox node address", slog.String("node", name), slog.Any("error", err))
		}
		// The node keeps its secret in its data directory; dev, its own admin, lets a node whose
		// directory was wiped enrol again under its name.
		if _, err := os.Stat(filepath.Join(nc.DataDir, seeding.NodeSecretFile)); errors.Is(err, os.ErrNotExist) {
			if id, err := fleet.NodeID(ctx, name); err == nil {
				if err := fleet.Readmit(ctx, id); err != nil {
					logger.Warn("re-admit dev seedbox node", slog.String("node", name), slog.Any("error", err))
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := node.Run(ctx); err != nil {
				logger.Error("dev seedbox node stopped", slog.String("node", name), slog.Any("error", err))
			}
		}()
	}
	return stop, nil
}

// seedboxConfig is every setting of `fanseed seedbox`.
type seedboxConfig struct {
	ControlURL    string
	Token         string
	Name          string
	DataDir       string
	ListenAddr    string
	PublicAddr    string
	CapacityBytes int64
	Zone          string
	UploadLimit   int64
	ICEServers    []webrtc.ICEServer
	LiveEdgeAddr  string // host:port the live edge listens on; "" for none
	LiveEdgeURL   string // its public URL
	LogFormat     string
	LogLevel      slog.Level
}

// loadSeedboxConfig reads and validates a node's environment. Every problem names its variable.
func loadSeedboxConfig(getenv func(string) string) (seedboxConfig, error) {
	var errs []error
	host, _ := os.Hostname()
	c := seedboxConfig{
		ControlURL: strings.TrimRight(getOr(getenv, "CONTROL_URL", ""), "/"),
		Token:      strings.TrimSpace(getenv("NODE_TOKEN")),
		Name:       getOr(getenv, "NODE_NAME", host),
		DataDir:    getOr(getenv, "NODE_DATA_DIR", "./var/seedbox"),
		ListenAddr: getOr(getenv, "NODE_LISTEN_ADDR", "0.0.0.0:6881"),
		PublicAddr: getOr(getenv, "NODE_PUBLIC_ADDR", ""),
		Zone:       getOr(getenv, "NODE_ZONE", ""),
		LogFormat:  getOr(getenv, "LOG_FORMAT", "json"),
	}
	if c.ControlURL == "" {
		errs = append(errs, errors.New("CONTROL_URL: is required (the control plane's URL, for example https://fanseed.example)"))
	} else if u, err := url.Parse(c.ControlURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("CONTROL_URL: %q must be an absolute http or https URL", c.ControlURL))
	}
	switch {
	case c.Token == "":
		errs = append(errs, errors.New("NODE_TOKEN: is required (the same secret the control plane has)"))
	case len(c.Token) < minTokenLen:
		errs = append(errs, fmt.Errorf("NODE_TOKEN: must be at least %d characters", minTokenLen))
	}
	if c.Name == "" || len(c.Name) > 63 || strings.Trim(c.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		errs = append(errs, fmt.Errorf("NODE_NAME: %q must be 1 to 63 letters, digits, dots, dashes or underscores", c.Name))
	}
	lhost, lport, err := net.SplitHostPort(c.ListenAddr)
	if p, perr := strconv.Atoi(lport); err != nil || perr != nil || p < 0 || p > 65535 {
		errs = append(errs, fmt.Errorf("NODE_LISTEN_ADDR: %q is not host:port", c.ListenAddr))
	}
	if c.PublicAddr != "" {
		h, port, err := net.SplitHostPort(c.PublicAddr)
		if p, perr := strconv.Atoi(port); err != nil || h == "" || perr != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("NODE_PUBLIC_ADDR: %q must be host:port with a port from 1 to 65535", c.PublicAddr))
		}
	} else if ip := net.ParseIP(lhost); lhost == "" || (ip != nil && ip.IsUnspecified()) {
		errs = append(errs, fmt.Errorf("NODE_PUBLIC_ADDR: is required when NODE_LISTEN_ADDR (%s) listens on every interface: give the address peers dial", c.ListenAddr))
	}
	if c.CapacityBytes, err = strconv.ParseInt(getOr(getenv, "NODE_CAPACITY_BYTES", "107374182400"), 10, 64); err != nil || c.CapacityBytes <= 0 {
		errs = append(errs, fmt.Errorf("NODE_CAPACITY_BYTES: %q must be a positive number of bytes", getenv("NODE_CAPACITY_BYTES")))
	}
	if c.Zone != "" && (len(c.Zone) > 63 || strings.Trim(c.Zone, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" || strings.ContainsAny(c.Zone[:1], "._-")) {
		errs = append(errs, fmt.Errorf("NODE_ZONE: %q must be 1 to 63 letters, digits, dots, dashes or underscores, starting with a letter or digit", c.Zone))
	}
	if c.UploadLimit, err = strconv.ParseInt(getOr(getenv, "NODE_UPLOAD_LIMIT", "0"), 10, 64); err != nil || c.UploadLimit < 0 {
		errs = append(errs, fmt.Errorf("NODE_UPLOAD_LIMIT: %q must be a number of bytes per second, or 0 for no limit", getenv("NODE_UPLOAD_LIMIT")))
	}
	if c.LiveEdgeAddr = getOr(getenv, "NODE_LIVE_EDGE_ADDR", ""); c.LiveEdgeAddr != "" {
		if _, _, err := net.SplitHostPort(c.LiveEdgeAddr); err != nil {
			errs = append(errs, fmt.Errorf("NODE_LIVE_EDGE_ADDR: %q is not host:port", c.LiveEdgeAddr))
		}
	}
	if c.LiveEdgeURL = strings.TrimRight(getOr(getenv, "NODE_LIVE_EDGE_URL", ""), "/"); c.LiveEdgeURL != "" {
		if u, err := url.Parse(c.LiveEdgeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(c.LiveEdgeURL) > 300 {
			errs = append(errs, fmt.Errorf("NODE_LIVE_EDGE_URL: %q must be an http or https URL such as https://edge1.example.com", c.LiveEdgeURL))
		}
	}
	if c.ICEServers, err = parseICEServers(getOr(getenv, "ICE_SERVERS", "")); err != nil {
		errs = append(errs, fmt.Errorf("ICE_SERVERS: %w", err))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q must be json or text", c.LogFormat))
	}
	if err := c.LogLevel.UnmarshalText([]byte(getOr(getenv, "LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %q must be debug, info, warn or error", getenv("LOG_LEVEL")))
	}
	return c, errors.Join(errs...)
}

// parseICEServers reads ICE_SERVERS: comma-separated stun:, stuns:, turn: or turns: URLs, a
// TURN server's username and credential before its host (turn:user:secret@host:3478).
func parseICEServers(raw string) ([]webrtc.ICEServer, error) {
	var out []webrtc.ICEServer
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		scheme, rest, _ := strings.Cut(part, ":")
		var s webrtc.ICEServer
		if creds, host, ok := strings.Cut(rest, "@"); ok {
			user, secret, ok := strings.Cut(creds, ":")
			if !ok || user == "" || secret == "" {
				return nil, fmt.Errorf("%s:...@%s: credentials must be user:password", scheme, host)
			}
			s.Username, s.Credential, rest = user, secret, host
		}
		switch {
		case scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns":
			return nil, fmt.Errorf("%q must start with stun:, stuns:, turn: or turns:", scheme+":"+rest)
		case strings.HasPrefix(scheme, "turn") && s.Username == "":
			return nil, fmt.Errorf("%s:%s: a TURN server needs user:password@ before its host", scheme, rest)
		case strings.HasPrefix(scheme, "stun") && s.Username != "":
			return nil, fmt.Errorf("%s:%s: a STUN server takes no credentials", scheme, rest)
		}
		host, _, _ := strings.Cut(rest, "?")
		if _, port, err := net.SplitHostPort(host); err != nil && !strings.Contains(err.Error(), "missing port") || port == "0" {
			return nil, fmt.Errorf("%s:%s: not host or host:port", scheme, rest)
		}
		s.URLs = []string{scheme + ":" + rest}
		out = append(out, s)
	}
	return out, nil
}

// seedboxUsage lists the seedbox commands.
const seedboxUsage = "usage: fanseed seedbox [remove NAME | revoke NAME | readmit NAME]"

// seedbox runs one node of the fleet until ctx ends (or until the fleet removed it); `seedbox
// remove NAME` drains a node, `revoke NAME` takes its secret away and `readmit NAME` lets it
// enrol again.
func seedbox(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if len(args) != 2 {
			return errors.New(seedboxUsage)
		}
		switch args[0] {
		case "remove":
			return removeNode(ctx, args[1], getenv, stdout, stderr)
		case "revoke", "readmit":
			return nodeAdmin(ctx, args[0], args[1], getenv, stdout, stderr)
		}
		return fmt.Errorf("%s; %q is not a seedbox command", seedboxUsage, args[0])
	}
	c, err := loadSeedboxConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(config{LogFormat: c.LogFormat, LogLevel: c.LogLevel}, stderr).With(slog.String("node", c.Name))
	if c.LiveEdgeAddr != "" {
		ln, err := net.Listen("tcp", c.LiveEdgeAddr)
		if err != nil {
			return fmt.Errorf("NODE_LIVE_EDGE_ADDR: listen on %s: %w", c.LiveEdgeAddr, err)
		}
		if c.LiveEdgeURL == "" {
			c.LiveEdgeURL = "http://" + ln.Addr().String()
		}
		edge := &http.Server{Handler: &seeding.Edge{Origin: strings.TrimRight(c.ControlURL, "/")}, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		go edge.Serve(ln)
		defer edge.Close()
		logger.Info("live edge", slog.String("addr", ln.Addr().String()), slog.String("url", c.LiveEdgeURL))
	}
	node, err := seeding.NewNode(seeding.NodeConfig{
		ControlURL: c.ControlURL, Token: c.Token, Name: c.Name, DataDir: c.DataDir,
		ListenAddr: c.ListenAddr, PublicAddr: c.PublicAddr, CapacityBytes: c.CapacityBytes, Zone: c.Zone, UploadLimit: c.UploadLimit, Log: logger,
		ICEServers: c.ICEServers, LiveEdgeURL: c.LiveEdgeURL,
	})
	if err != nil {
		return fmt.Errorf("NODE_LISTEN_ADDR or NODE_DATA_DIR: %w", err)
	}
	logger.Info("seedbox node started", slog.String("listen_addr", node.ListenAddr()), slog.String("public_addr", node.Addr()),
		slog.String("control_url", c.ControlURL))
	return node.Run(ctx)
}

// removeNode drains a node: the fleet copies its torrents to other nodes, then it drops them
// and is marked removed, and its next heartbeat tells the node process to stop. It returns at
// once; the admin fleet page shows the progress.
func removeNode(ctx context.Context, name string, getenv func(string) string, stdout, stderr io.Writer) error {
	_, _, pool, err := connect(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := (&seeding.Fleet{DB: pool}).DrainByName(ctx, name); err != nil {
		if errors.Is(err, seeding.ErrNotFound) {
			return fmt.Errorf("no node named %q that is up or down (it may already be draining or removed)", name)
		}
		return err
	}
	fmt.Fprintf(stdout, "node %s is draining: once its torrents are seeded elsewhere it is removed and its process told to stop\n", name)
	return nil
}

// nodeAdmin revokes a node's secret (the node is refused and marked down until re-admitted) or
// re-admits a node (its next registration enrols it again with a new secret, even if it was
// removed or revoked).
func nodeAdmin(ctx context.Context, action, name string, getenv func(string) string, stdout, stderr io.Writer) error {
	_, logger, pool, err := connect(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	fleet := &seeding.Fleet{DB: pool}
	id, err := fleet.NodeID(ctx, name)
	if errors.Is(err, seeding.ErrNotFound) {
		return fmt.Errorf("no node named %q", name)
	}
	if err != nil {
		return err
	}
	if action == "revoke" {
		if err := fleet.Revoke(ctx, id); err != nil {
			return err
		}
		logger.Info("seedbox node secret revoked", slog.String("node", name), slog.Int64("node_id", id))
		fmt.Fprintf(stdout, "node %s: its secret is revoked; it is refused until `fanseed seedbox readmit %s`\n", name, name)
		return nil
	}
	if err := fleet.Readmit(ctx, id); err != nil {
		return err
	}
	logger.Info("seedbox node re-admitted", slog.String("node", name), slog.Int64("node_id", id))
	fmt.Fprintf(stdout, "node %s is re-admitted: its next registration enrols it again with a new secret\n", name)
	return nil
}
