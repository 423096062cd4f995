package seeding

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"github.com/fanseed/fanseed/periodic"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"
)

// DefaultHeartbeatEvery is how often a node heartbeats when NodeConfig.HeartbeatEvery is zero.
const DefaultHeartbeatEvery = 2 * time.Second

// uploadBurst is how far a node with an upload limit may run ahead of it.
const uploadBurst = 256 << 10

// NodePeerIDPrefix starts the peer id of every seedbox node (BEP 20 style), so that the tracker
// can leave the fleet's own fetches out of a torrent's downloads. A client that copied it would
// only leave itself out of the counts.
const NodePeerIDPrefix = "-FS0100-"

// IsNodePeerID reports whether a peer id is a seedbox node's.
func IsNodePeerID(id [20]byte) bool {
	return string(id[:len(NodePeerIDPrefix)]) == NodePeerIDPrefix
}

// NodeConfig is a seedbox node's settings.
type NodeConfig struct {
	ControlURL     string // the control plane's base URL; empty for a node that only seeds what it is given (benchmarks)
	Token          string // the shared node token, sent as a Bearer header
	Name           string
	DataDir        string // torrents live under DataDir/torrents/<infohash>/<name>
	ListenAddr     string // host:port of the BitTorrent listener; port 0 picks a free one
	PublicAddr     string // host:port peers dial; empty means the address listened on
	CapacityBytes  int64
	Zone           string // NODE_ZONE: the node's zone (a rack, site or provider); empty for none
	UploadLimit    int64  // bytes per second the node uploads at most, to every peer together; 0 means no limit
	HeartbeatEvery time.Duration
	HTTPClient     *http.Client // nil means a client with a 30 s timeout
	// ICEServers are the STUN and TURN servers the node's WebRTC (its answers to browsers'
	// offers through the WebSocket tracker) gathers candidates with; none leaves it to its host
	// addresses.
	ICEServers []webrtc.ICEServer
	// LiveEdgeURL is where the node's Edge serves live segments, told to the control plane; "" for none.
	LiveEdgeURL string
	Log         *slog.Logger
}

// Node is one seedbox: a BitTorrent client (anacrolix/torrent) that fetches what the control
// plane assigns it from the origin web seed and the other nodes, verifies every piece, seeds it,
// and reports swarm counters in each heartbeat.
type Node struct {
	cfg   NodeConfig
	cl    *torrent.Client
	store storage.ClientImplCloser
	http  *http.Client
	log   *slog.Logger
	addr  string // public address
	// session names this run of the node: its upload counters start from zero.
	session string

	mu       sync.Mutex
	id       int64
	secret   string // the node's own secret, from its data directory or its enrolment
	torrents map[metainfo.Hash]*held

	// What the node uploaded to other seedbox nodes, so that the fleet's own copying is not
	// counted as served to fans: connections to nodes open now, and the bytes of those closed.
	toNodes *toNodes
}

// nodeWebTransport is the transport of the node's web seed requests: anacrolix's own (10
// connections per host at most), sending the node token to the control plane's host, so that the
// origin web seed counts the fleet's fetches apart from fans' and never slows them down.
func nodeWebTransport(controlURL, token string) http.RoundTripper {
	base := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxConnsPerHost: 10}
	u, err := url.Parse(controlURL)
	if err != nil || u.Host == "" || token == "" {
		return base
	}
	return tokenTransport{base: base, host: u.Host, token: token}
}

type tokenTransport struct {
	base  http.RoundTripper
	host  string
	token string
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == t.host && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.base.RoundTrip(r)
}

// toNodes counts the payload bytes a node sent to other nodes (peer ids with NodePeerIDPrefix),
// per torrent, since the torrent was added.
type toNodes struct {
	mu       sync.Mutex
	open     map[*torrent.PeerConn]metainfo.Hash
	closed   map[metainfo.Hash]int64
	reported map[metainfo.Hash]int64 // the last count reported, which never goes down
}

func (c *toNodes) added(pc *torrent.PeerConn) {
	if !IsNodePeerID([20]byte(pc.PeerID)) || pc.Torrent() == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open, c.closed, c.reported = map[*torrent.PeerConn]metainfo.Hash{}, map[metainfo.Hash]int64{}, map[metainfo.Hash]int64{}
	}
	c.open[pc] = pc.Torrent().InfoHash()
}

// gone moves a closed connection's bytes to the torrent's closed count. The client calls it with
// its lock held, which reading the connection's counters takes, so it reads them in a goroutine;
// until then the connection counts as open.
func (c *toNodes) gone(pc *torrent.PeerConn) {
	c.mu.Lock()
	_, ours := c.open[pc]
	c.mu.Unlock()
	if !ours || pc.Torrent() == nil {
		return
	}
	go func() {
		st := pc.Stats()
		sent := st.BytesWrittenData.Int64()
		c.mu.Lock()
		defer c.mu.Unlock()
		if ih, ok := c.open[pc]; ok {
			delete(c.open, pc)
			c.closed[ih] += sent
		}
	}()
}

// forget starts a dropped torrent's count again, as its upload counter does when it is added again.
func (c *toNodes) forget(ih metainfo.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pc, h := range c.open {
		if h == ih {
			delete(c.open, pc)
		}
	}
	delete(c.closed, ih)
	delete(c.reported, ih)
}

// sent returns the bytes of a torrent sent to nodes, at most uploaded (the torrent's own counter).
func (c *toNodes) sent(ih metainfo.Hash, uploaded int64) int64 {
	c.mu.Lock()
	var open []*torrent.PeerConn
	for pc, h := range c.open {
		if h == ih {
			open = append(open, pc)
		}
	}
	n := c.closed[ih]
	c.mu.Unlock()
	for _, pc := range open {
		st := pc.Stats()
		n += st.BytesWrittenData.Int64()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reported == nil {
		return 0
	}
	n = min(max(n, c.reported[ih]), uploaded)
	c.reported[ih] = n
	return n
}

// held is a torrent the node holds.
type held struct {
	t         *torrent.Torrent
	trackers  [][]string // the trackers' tiers, added once the torrent is published
	announced bool
	verified  chan struct{} // closed once the data on disk was hashed
}

// NewNode starts a node's BitTorrent client. Run connects it to the control plane.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.HeartbeatEvery <= 0 {
		cfg.HeartbeatEvery = DefaultHeartbeatEvery
	}
	dir := filepath.Join(cfg.DataDir, "torrents")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("node data directory: %w", err)
	}
	host, port, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("node listen address %q: %w", cfg.ListenAddr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("node listen port %q: %w", port, err)
	}
	// Plain files, named as in the torrent under a directory per infohash, and piece completion in
	// a bolt database beside them: a node restarts without fetching again, and VerifyData on add
	// hashes what is on disk rather than trusting a file of the right size.
	store := storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir: dir,
		UsePartFiles:  g.Some(false),
		TorrentDirMaker: func(base string, _ *metainfo.Info, ih metainfo.Hash) string {
			return filepath.Join(base, ih.HexString())
		},
		Logger: cfg.Log,
	})
	tc := torrent.NewDefaultClientConfig()
	tc.DataDir = dir
	tc.DefaultStorage = store
	tc.Seed = true
	tc.NoDHT = true
	tc.NoDefaultPortForwarding = true
	// A seedbox serves many fans, often behind one address; the accept limiter is for DHT strays.
	tc.DisableAcceptRateLimiting = true
	tc.ListenHost = func(string) string { return host }
	tc.ListenPort = p
	tc.Slogger = slog.New(pieceLines{cfg.Log.Handler()}).With(slog.String("component", "torrent"))
	tc.HTTPUserAgent = "Fanseed-seedbox"
	tc.WebTransport = nodeWebTransport(cfg.ControlURL, cfg.Token)
	tc.ICEServerList = cfg.ICEServers
	tc.Bep20 = NodePeerIDPrefix
	// Room for a leecher's whole request pipeline: with the default 1 MiB a fast leecher on a short
	// path waits on the buffer rather than the network.
	tc.MaxAllocPeerRequestDataPerConn = 8 << 20
	if cfg.UploadLimit > 0 {
		// The burst bounds the longest request the node accepts; clients ask for 16 KiB.
		tc.UploadRateLimiter = rate.NewLimiter(rate.Limit(cfg.UploadLimit), uploadBurst)
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		tc.DisableIPv6 = true
	}
	counts := &toNodes{}
	tc.Callbacks.PeerConnAdded = append(tc.Callbacks.PeerConnAdded, counts.added)
	tc.Callbacks.PeerConnClosed = counts.gone
	cl, err := torrent.NewClient(tc)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("start BitTorrent client on %s: %w", cfg.ListenAddr, err)
	}
	n := &Node{cfg: cfg, cl: cl, store: store, http: cfg.HTTPClient, log: cfg.Log, torrents: map[metainfo.Hash]*held{},
		session: rand.Text(), toNodes: counts}
	if n.http == nil {
		n.http = &http.Client{Timeout: 30 * time.Second}
	}
	n.addr = cfg.PublicAddr
	if n.addr == "" {
		n.addr = net.JoinHostPort(host, strconv.Itoa(cl.LocalPort()))
	}
	return n, nil
}

// Addr is the address other peers dial.
func (n *Node) Addr() string { return n.addr }

// ListenAddr is the address the BitTorrent client listens on.
func (n *Node) ListenAddr() string {
	host, _, _ := net.SplitHostPort(n.cfg.ListenAddr)
	return net.JoinHostPort(host, strconv.Itoa(n.cl.LocalPort()))
}

// Close stops the BitTorrent client; the data stays on disk.
func (n *Node) Close() {
	n.cl.Close()
	n.store.Close()
}

// ContentPath is where the node keeps a torrent's file.
func (n *Node) ContentPath(ih [20]byte, name string) string {
	return filepath.Join(n.cfg.DataDir, "torrents", hex.EncodeToString(ih[:]), name)
}

// Add makes the node hold a torrent: it hashes what is on disk, then fetches the rest from the
// web seeds in the metainfo and from peers, and seeds. announce says whether to announce to the
// tracker in the metainfo (which refuses torrents until they are published).
func (n *Node) Add(mi *metainfo.MetaInfo, peers []string, announce bool) error {
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		return err
	}
	spec.Trackers = nil
	spec.PeerAddrs = peers
	t, isNew, err := n.cl.AddTorrentSpec(spec)
	if err != nil {
		return fmt.Errorf("add torrent %s: %w", spec.InfoHash.HexString(), err)
	}
	n.mu.Lock()
	h := n.torrents[t.InfoHash()]
	if h == nil || isNew {
		h = &held{t: t, trackers: nodeTrackers(mi), verified: make(chan struct{})}
		n.torrents[t.InfoHash()] = h
		go n.fetch(h, h.verified)
	}
	n.mu.Unlock()
	if announce {
		n.announce(h)
	}
	return nil
}

// fetch verifies what is on disk, then downloads every missing piece; anacrolix/torrent checks
// each piece against its SHA-1 before it counts as complete. verified is closed once the data on
// disk is hashed.
func (n *Node) fetch(h *held, verified chan struct{}) {
	<-h.t.GotInfo()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-h.t.Closed():
			cancel()
		case <-ctx.Done():
		}
	}()
	defer cancel()
	if err := h.t.VerifyDataContext(ctx); err != nil && ctx.Err() == nil {
		n.log.Warn("verify torrent data", slog.String("infohash", h.t.InfoHash().HexString()), slog.Any("error", err))
	}
	// VerifyData returns once the last piece is hashed, a moment before the piece's completion is
	// recorded: wait for that too, so that what follows sees what is on disk.
	for !settled(h.t) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	close(verified)
	if ctx.Err() == nil {
		h.t.DownloadAll()
	}
}

// settled reports whether no piece of t is queued for hashing, being hashed or being marked.
func settled(t *torrent.Torrent) bool {
	for _, r := range t.PieceStateRuns() {
		if r.QueuedForHash || r.Hashing || r.Marking {
			return false
		}
	}
	return true
}

// announce adds the tracker once a torrent is published, so that fans find the node. It waits
// until the data on disk is hashed, so that the first announce tells the tracker what the node
// holds: a restarted node is a seeder at once, not a leecher until its next announce.
func (n *Node) announce(h *held) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h.announced || len(h.trackers) == 0 {
		return
	}
	h.announced = true
	verified := h.verified
	go func() {
		select {
		case <-verified:
			h.t.AddTrackers(h.trackers)
		case <-h.t.Closed():
		}
	}()
}

// nodeTrackers is what a node announces to: the torrent's tiers, and our WebSocket tracker
// (on the HTTP tracker's path, ws:// or wss://) for torrents made before it was listed, so that
// the node answers browsers' offers for every torrent it holds.
func nodeTrackers(mi *metainfo.MetaInfo) [][]string {
	tiers := mi.UpvertedAnnounceList().Clone()
	var web bool
	for _, tier := range tiers {
		for _, u := range tier {
			web = web || strings.HasPrefix(u, "ws://") || strings.HasPrefix(u, "wss://")
		}
	}
	if !web && strings.HasSuffix(mi.Announce, "/announce") {
		if rest, ok := strings.CutPrefix(mi.Announce, "https://"); ok {
			tiers = append(tiers, []string{"wss://" + rest})
		} else if rest, ok := strings.CutPrefix(mi.Announce, "http://"); ok {
			tiers = append(tiers, []string{"ws://" + rest})
		}
	}
	return tiers
}

// drop lets a torrent go and deletes its data.
func (n *Node) drop(ih metainfo.Hash) {
	n.mu.Lock()
	h := n.torrents[ih]
	delete(n.torrents, ih)
	n.mu.Unlock()
	if h == nil {
		return
	}
	h.t.Drop()
	n.toNodes.forget(ih)
	dir := filepath.Join(n.cfg.DataDir, "torrents", ih.HexString())
	if err := os.RemoveAll(dir); err != nil {
		n.log.Warn("remove dropped torrent", slog.String("infohash", ih.HexString()), slog.Any("error", err))
	}
	n.log.Info("dropped torrent", slog.String("infohash", ih.HexString()))
}

// Seeding reports whether the node holds all of a torrent, verified.
func (n *Node) Seeding(ih [20]byte) bool {
	n.mu.Lock()
	h := n.torrents[ih]
	var verified chan struct{}
	if h != nil {
		verified = h.verified
	}
	n.mu.Unlock()
	if h == nil {
		return false
	}
	select {
	case <-verified:
		return h.t.Complete().Bool()
	default:
		return false
	}
}

// heldNow is the torrents the node holds now.
func (n *Node) heldNow() []*held {
	n.mu.Lock()
	defer n.mu.Unlock()
	hs := make([]*held, 0, len(n.torrents))
	for _, h := range n.torrents {
		hs = append(hs, h)
	}
	return hs
}

// Reports is the node's account of every torrent it holds.
func (n *Node) Reports() (reports []Report, diskUsed int64) {
	for _, h := range n.heldNow() {
		r := Report{InfoHash: h.t.InfoHash().HexString(), State: StateFetching}
		if n.Seeding(h.t.InfoHash()) {
			r.State = StateSeeding
		}
		st := h.t.Stats()
		r.Uploaded = st.BytesWrittenData.Int64()
		r.UploadedToNodes = n.toNodes.sent(h.t.InfoHash(), r.Uploaded)
		if bad := st.PiecesDirtiedBad.Int64(); bad > 0 && r.State != StateSeeding {
			r.Error = fmt.Sprintf("%d pieces failed verification", bad)
		}
		if info := h.t.Info(); info != nil {
			diskUsed += h.t.BytesCompleted()
			for _, pc := range h.t.PeerConns() {
				r.Peers++
				if pc.PeerPieces().GetCardinality() == uint64(h.t.NumPieces()) {
					r.Seeders++
				} else {
					r.Leechers++
				}
			}
		}
		reports = append(reports, r)
	}
	return reports, diskUsed
}

// reverify hashes a held torrent's data again; it reports fetching until that is done. A torrent
// still being verified is left to finish.
func (n *Node) reverify(h *held) {
	n.mu.Lock()
	select {
	case <-h.verified:
	default:
		n.mu.Unlock()
		return
	}
	h.verified = make(chan struct{})
	verified := h.verified
	n.mu.Unlock()
	go n.fetch(h, verified)
}

// Apply makes the node hold exactly the torrents in the orders. With Verify (the node was marked
// down and is back), it hashes again the data of every torrent it holds.
func (n *Node) Apply(o Orders) {
	if o.Verify {
		hs := n.heldNow()
		for _, h := range hs {
			n.reverify(h)
		}
		if len(hs) > 0 {
			n.log.Info("back after being marked down: verifying the data held again", slog.Int("torrents", len(hs)))
		}
	}
	want := map[metainfo.Hash]bool{}
	for _, w := range o.Torrents {
		var ih metainfo.Hash
		if err := ih.FromHexString(w.InfoHash); err != nil {
			n.log.Warn("bad infohash in orders", slog.String("infohash", w.InfoHash))
			continue
		}
		want[ih] = true
		n.mu.Lock()
		h := n.torrents[ih]
		n.mu.Unlock()
		if h != nil {
			if w.Published {
				n.announce(h)
			}
			if !n.Seeding(ih) && len(w.Peers) > 0 {
				h.t.AddPeers(peerInfos(w.Peers))
			}
			continue
		}
		if len(w.Metainfo) == 0 {
			// The node reported it, yet does not hold it: it dropped the torrent meanwhile. The
			// next heartbeat does not report it, so the control plane sends the metainfo again.
			continue
		}
		mi, err := metainfo.Load(bytes.NewReader(w.Metainfo))
		if err != nil || mi.HashInfoBytes() != ih {
			n.log.Warn("bad metainfo in orders", slog.String("infohash", w.InfoHash), slog.Any("error", err))
			continue
		}
		if err := n.Add(mi, w.Peers, w.Published); err != nil {
			n.log.Warn("add torrent", slog.String("infohash", w.InfoHash), slog.Any("error", err))
			continue
		}
		n.log.Info("fetching torrent", slog.String("infohash", w.InfoHash), slog.Int("peers", len(w.Peers)))
	}
	n.mu.Lock()
	var drop []metainfo.Hash
	for ih := range n.torrents {
		if !want[ih] {
			drop = append(drop, ih)
		}
	}
	n.mu.Unlock()
	for _, ih := range drop {
		n.drop(ih)
	}
	n.removeStale(want)
}

// OnDisk lists the torrents whose data is on disk but which the node does not hold, such as
// those it seeded before a restart: the control plane may give them back rather than have them
// fetched again elsewhere.
func (n *Node) OnDisk() []string {
	entries, err := os.ReadDir(filepath.Join(n.cfg.DataDir, "torrents"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		var ih metainfo.Hash
		if !e.IsDir() || len(e.Name()) != 40 || ih.FromHexString(e.Name()) != nil {
			continue
		}
		n.mu.Lock()
		_, held := n.torrents[ih]
		n.mu.Unlock()
		if !held {
			out = append(out, e.Name())
		}
	}
	return out
}

// removeStale deletes the data of torrents the node no longer holds, such as those dropped while
// it was stopped.
func (n *Node) removeStale(want map[metainfo.Hash]bool) {
	dir := filepath.Join(n.cfg.DataDir, "torrents")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		var ih metainfo.Hash
		if !e.IsDir() || len(e.Name()) != 40 || ih.FromHexString(e.Name()) != nil || want[ih] {
			continue
		}
		n.mu.Lock()
		_, held := n.torrents[ih]
		n.mu.Unlock()
		if !held {
			os.RemoveAll(filepath.Join(dir, e.Name()))
			n.log.Info("removed data of a torrent no longer held", slog.String("infohash", e.Name()))
		}
	}
}

func peerInfos(addrs []string) []torrent.PeerInfo {
	out := make([]torrent.PeerInfo, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, torrent.PeerInfo{Addr: torrent.StringAddr(a), Source: torrent.PeerSourceDirect, Trusted: true})
	}
	return out
}

// What the control plane's answers mean to a node: it does not know the node (its database was
// reset: register again), it refused the node's secret (register again, which works once an
// admin re-admitted the node), or it refuses the node for good until an admin acts (stop).
var (
	errNodeUnknown   = errors.New("control plane does not know this node")
	errSecretRefused = errors.New("control plane refused this node's secret")
	errRefused       = errors.New("control plane refuses this node")
)

// answerError is a refusal by the control plane, with the reason it gave.
type answerError struct {
	kind error // errSecretRefused or errRefused
	text string
}

func (e *answerError) Error() string        { return e.text }
func (e *answerError) Is(target error) bool { return target == e.kind }

// errRemovedStop ends Run cleanly: the control plane answered that the node was removed.
var errRemovedStop = errors.New("removed from the fleet")

// Run registers with the control plane and heartbeats until ctx ends, then closes the node. It
// stops by itself, returning nil, once the control plane answers that the node was removed (its
// drain is over), and returns an error when the control plane refuses it for good: its name is
// enrolled by another node, or it was removed or revoked and no admin re-admitted it.
func (n *Node) Run(ctx context.Context) error {
	defer n.Close()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	periodic.Loop{Name: "seedbox node", Every: n.cfg.HeartbeatEvery, Now: true, Log: n.log}.Run(ctx, func(ctx context.Context) error {
		err := n.beat(ctx)
		if errors.Is(err, errRemovedStop) || errors.Is(err, errRefused) {
			stop(err)
			return nil
		}
		return err
	})
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errRemovedStop):
		n.log.Info("removed from the fleet: the seedbox node stops")
		return nil
	case errors.Is(cause, errRefused):
		return cause
	}
	return nil
}

// beat registers the node, or heartbeats once it is registered; a control plane that no longer
// knows it, or refuses its secret, has it register again on the next beat.
func (n *Node) beat(ctx context.Context) error {
	n.mu.Lock()
	id := n.id
	n.mu.Unlock()
	if id == 0 {
		return n.register(ctx)
	}
	err := n.heartbeat(ctx, id)
	if errors.Is(err, errNodeUnknown) || errors.Is(err, errSecretRefused) {
		n.mu.Lock()
		n.id = 0
		n.mu.Unlock()
	}
	return err
}

// secretPath is the file in the data directory that keeps the node's secret across restarts.
func (n *Node) secretPath() string { return filepath.Join(n.cfg.DataDir, NodeSecretFile) }

func (n *Node) register(ctx context.Context) error {
	n.mu.Lock()
	if n.secret == "" {
		if b, err := os.ReadFile(n.secretPath()); err == nil {
			n.secret = strings.TrimSpace(string(b))
		}
	}
	n.mu.Unlock()
	info := NodeInfo{Name: n.cfg.Name, ListenAddr: n.ListenAddr(), PublicAddr: n.addr, CapacityBytes: n.cfg.CapacityBytes, Zone: n.cfg.Zone}
	var e Enrolment
	err := n.post(ctx, "/api/nodes", info, &e)
	if ae := (*answerError)(nil); errors.As(err, &ae) {
		// 403 or 409 to a registration: removed, or the name is another node's (or its secret
		// was revoked). Nothing changes until an admin acts.
		ae.kind = errRefused
		return fmt.Errorf("register as %s: %w", n.cfg.Name, ae)
	}
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	n.mu.Lock()
	n.id = e.ID
	if e.Secret != "" {
		n.secret = e.Secret
	}
	n.mu.Unlock()
	if e.Secret != "" {
		if err := writeFileAtomic(n.secretPath(), []byte(e.Secret+"\n")); err != nil {
			n.log.Error("keep the node secret: after a restart an admin must re-admit this node", slog.Any("error", err))
		}
	}
	n.log.Info("registered with the control plane", slog.Int64("node_id", e.ID), slog.String("public_addr", n.addr),
		slog.Bool("enrolled", e.Secret != ""))
	return nil
}

// writeFileAtomic writes a file readable by its owner alone, whole or not at all.
func writeFileAtomic(name string, b []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// peerID is the node's BitTorrent peer id in hex.
func (n *Node) peerID() string {
	id := n.cl.PeerID()
	return hex.EncodeToString(id[:])
}

func (n *Node) heartbeat(ctx context.Context, id int64) error {
	reports, disk := n.Reports()
	var o Orders
	if err := n.post(ctx, "/api/nodes/"+strconv.FormatInt(id, 10)+"/heartbeat", Heartbeat{Session: n.session, PeerID: n.peerID(), DiskUsed: disk, Torrents: reports, OnDisk: n.OnDisk(), LiveEdgeURL: n.cfg.LiveEdgeURL}, &o); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if o.Status == NodeRemoved {
		return errRemovedStop
	}
	n.Apply(o)
	return nil
}

func (n *Node) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(n.cfg.ControlURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+n.cfg.Token)
	n.mu.Lock()
	if n.secret != "" {
		req.Header.Set(NodeSecretHeader, n.secret)
	}
	n.mu.Unlock()
	resp, err := n.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return errNodeUnknown
	}
	if resp.StatusCode != http.StatusOK {
		var answer struct {
			Error string `json:"error"`
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		if json.Unmarshal(msg, &answer) != nil || answer.Error == "" {
			answer.Error = strings.TrimSpace(string(msg))
		}
		text := fmt.Sprintf("control plane answered %s: %s", resp.Status, answer.Error)
		switch resp.StatusCode {
		case http.StatusForbidden:
			return &answerError{kind: errSecretRefused, text: text}
		case http.StatusConflict:
			return &answerError{kind: errRefused, text: text}
		}
		return errors.New(text)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
