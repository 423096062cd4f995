package seeding

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// DefaultInterval is how often clients are asked to announce when Tracker.Interval is zero.
const DefaultInterval = 30 * time.Minute

// maxDownloadersPerPeriod bounds the distinct-address set a swarm keeps between snapshots.
const maxDownloadersPerPeriod = 1 << 20

// Tracker is the BitTorrent tracker for published episodes: peers per torrent in memory, and
// the counters the creator dashboard shows. Set the fields before the first announce; the
// methods are safe for concurrent use. Peers are forgotten after two intervals without an
// announce. Call Snapshot periodically: it resets the per-period counters and drops idle swarms.
type Tracker struct {
	// Interval is the announce interval told to clients; zero means DefaultInterval.
	Interval time.Duration
	// Allowed reports whether the platform published a torrent; others are refused. Nil
	// refuses everything. It is called without the tracker's lock held.
	Allowed func(infoHash [20]byte) bool
	// AnnouncesPerMinute is how many announces one address (an IPv6 /64) may make per minute,
	// and at once after a quiet minute; more are refused with a failure reason. Zero means
	// DefaultAnnouncesPerMinute, a negative number no limit.
	AnnouncesPerMinute int

	now func() time.Time // time.Now unless a test sets it

	limit limiter

	// Set by ShareThrough: the swarms are shared with the other serve processes.
	shared  DBTX
	process string

	mu     sync.Mutex
	swarms map[[20]byte]*swarm
	// down holds the peer ids of seedbox nodes marked down (SetDownPeers): their peers are gone
	// from this process's swarms and left out of what other processes share.
	down map[[20]byte]struct{}
}

// Peer is another client in a swarm, as an announce response lists it.
type Peer struct {
	ID   [20]byte
	Addr netip.AddrPort
}

// AnnounceResponse is what Tracker.Announce tells a client; EncodeAnnounceResponse writes it.
type AnnounceResponse struct {
	Interval   time.Duration
	Complete   int // seeders
	Incomplete int // leechers
	Peers      []Peer
	Compact    bool // write peers as BEP 23 strings (and "peers6")
	NoPeerID   bool // leave ids out of a dict peer list
}

// ScrapeFile is one torrent's counts in a scrape response.
type ScrapeFile struct {
	InfoHash   [20]byte
	Complete   int   // seeders now
	Incomplete int   // leechers now
	Downloaded int64 // completions since this process started
}

// SwarmStats is one torrent's counters for the creator dashboard, to be stored in time buckets.
// Seeders and Leechers are the swarm now; the other fields count since the previous Snapshot.
type SwarmStats struct {
	InfoHash  [20]byte
	Seeders   int
	Leechers  int
	Completed int64 // downloads finished, once per address a day (see swarm.record)
	// CompletedAddrs are the addresses that finished, so that RecordStats counts each once a
	// day across every serve process.
	CompletedAddrs []netip.Addr
	// Downloaders counts distinct IP addresses (an IPv6 /64 as one) that announced event=started
	// with bytes left, or finished a download. Addresses, not peer ids or ports: clients make a new
	// peer id on every start and may announce from any port, while one address is usually one
	// household (NAT undercounts). Seedbox nodes count as seeders and leechers but never as
	// downloaders or completions.
	// DownloaderAddrs are those addresses, so that RecordStats counts each once for good.
	Downloaders     int
	DownloaderAddrs []netip.Addr
	Announces       int64
}

// A peer is its address, as in opentracker: a client that restarts on the same port with a new
// peer id replaces its entry instead of counting twice until the old one expires.
type peerState struct {
	addr       netip.AddrPort
	id         [20]byte
	seen       time.Time
	seeder     bool
	empty      bool // its last announce said nothing was left (see isSeeder)
	completed  bool
	prev, next *peerState // in the swarm's list, least recently announced first
	at         int        // its index in the swarm's order
}

type swarm struct {
	peers             map[netip.AddrPort]*peerState
	order             []*peerState // the same peers in no particular order, to pick from a random place on
	oldest, newest    *peerState
	seeders, leechers int
	downloadedTotal   int64

	// Since the last snapshot.
	completed      int64
	announces      int64
	downloaders    map[netip.Addr]struct{}
	completedAddrs []netip.Addr

	// The addresses that finished a download on day (UTC midnight): one address counts once a
	// day, whatever ports and peer ids it announces from.
	day          time.Time
	completedDay map[netip.Addr]struct{}

	// Shared with other processes (see Tracker.Share): this process's peers announced or gone
	// since the last Share (gone ones with when they were last seen here), the other processes'
	// peers as of the last Share, and the completions recorded by every process.
	changed         map[netip.AddrPort]struct{}
	gone            map[netip.AddrPort]time.Time
	remote          []remotePeer
	remoteSeeders   int
	remoteLeechers  int
	sharedCompleted int64
	synced          bool // remote holds what other processes had when this swarm was last shared
}

// remotePeer is a peer another serve process heard from.
type remotePeer struct {
	addr   netip.AddrPort
	id     [20]byte
	seeder bool
}

// unprovenInterval is the announce interval given to a client with nothing left that has not
// shown it holds the data: its next announce, with nothing left again, makes it a seeder.
const unprovenInterval = 2 * time.Minute

func (t *Tracker) interval() time.Duration {
	if t.Interval > 0 {
		return t.Interval
	}
	return DefaultInterval
}

func (t *Tracker) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

func (t *Tracker) allowed(ih [20]byte) bool {
	return t.Allowed != nil && t.Allowed(ih)
}

// errNotPublished is the failure reason for a torrent the platform did not publish.
var errNotPublished = &reasonError{kind: ErrNotAllowed, reason: "torrent is not published on this tracker"}

func (t *Tracker) announcesPerMinute() int {
	if t.AnnouncesPerMinute == 0 {
		return DefaultAnnouncesPerMinute
	}
	return t.AnnouncesPerMinute
}

// Announce records a client's announce and returns peers for it, never the client itself.
// A seeder is given only leechers. Unpublished torrents get ErrNotAllowed, an address over its
// announce rate ErrRateLimited.
func (t *Tracker) Announce(a Announce) (AnnounceResponse, error) {
	return t.announce(a, nil)
}

// announce is Announce, appending the peers to buf.
func (t *Tracker) announce(a Announce, buf []Peer) (AnnounceResponse, error) {
	now := t.clock()
	if !t.limit.allow(household(a.Addr.Addr()), t.announcesPerMinute(), now) {
		return AnnounceResponse{}, errRateLimited
	}
	if !t.allowed(a.InfoHash) {
		return AnnounceResponse{}, errNotPublished
	}
	expiry := 2 * t.interval()
	// So that a client's first announce here is not answered with half a swarm.
	loaded := t.loadUnsynced([][20]byte{a.InfoHash}, now.Add(-expiry))
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.swarm(a.InfoHash)
	s.prune(now, expiry, t.shared != nil)
	seeder := s.record(a, now, t.shared != nil)
	if sh, ok := loaded[a.InfoHash]; ok && !s.synced {
		s.install(sh, t.down)
	}
	resp := AnnounceResponse{
		Interval: t.interval(), Complete: s.seeders + s.remoteSeeders, Incomplete: s.leechers + s.remoteLeechers,
		Compact: a.Compact, NoPeerID: a.NoPeerID,
	}
	if a.Event != EventStopped && a.NumWant > 0 {
		resp.Peers = s.pick(a, seeder, buf)
	}
	if a.Left == 0 && !seeder {
		// Nothing left but not shown to hold the data (see isSeeder): asked back soon, so that a
		// seeder is counted as one within minutes and a magnet client says what it lacks.
		resp.Interval = min(resp.Interval, unprovenInterval)
	}
	return resp, nil
}

// announceWeb counts a WebSocket peer's announce in the swarm when record is set (a.Addr is its
// webKey, a.Client its address) and returns the swarm's seeders and leechers, HTTP and WebSocket
// peers of every process together. The WebTracker checked that the torrent is published and
// limits its sockets itself.
func (t *Tracker) announceWeb(a Announce, record bool) (complete, incomplete int) {
	now := t.clock()
	expiry := 2 * t.interval()
	loaded := t.loadUnsynced([][20]byte{a.InfoHash}, now.Add(-expiry))
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.swarm(a.InfoHash)
	s.prune(now, expiry, t.shared != nil)
	if record {
		s.record(a, now, t.shared != nil)
	}
	if sh, ok := loaded[a.InfoHash]; ok && !s.synced {
		s.install(sh, t.down)
	}
	return s.seeders + s.remoteSeeders, s.leechers + s.remoteLeechers
}

// swarm returns the swarm of a torrent, made empty if there is none; t.mu is held.
func (t *Tracker) swarm(ih [20]byte) *swarm {
	if t.swarms == nil {
		t.swarms = map[[20]byte]*swarm{}
	}
	s := t.swarms[ih]
	if s == nil {
		s = &swarm{peers: map[netip.AddrPort]*peerState{}, downloaders: map[netip.Addr]struct{}{}}
		t.swarms[ih] = s
	}
	return s
}

// loadUnsynced reads from the other processes, when the tracker shares its swarms, what they
// hold of the given swarms this process has not shared yet. On error it returns nothing: the
// answer then counts this process's peers only, until the next Share.
func (t *Tracker) loadUnsynced(hashes [][20]byte, cutoff time.Time) map[[20]byte]sharedSwarm {
	if t.shared == nil {
		return nil
	}
	var need [][20]byte
	t.mu.Lock()
	for _, ih := range hashes {
		if s := t.swarms[ih]; s == nil || !s.synced {
			need = append(need, ih)
		}
	}
	t.mu.Unlock()
	if len(need) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	loaded, _ := t.loadShared(ctx, need, cutoff)
	return loaded
}

// record updates the swarm for one announce; shared notes the change for the next Share. It
// reports whether the client counts as a seeder (see isSeeder).
func (s *swarm) record(a Announce, now time.Time, shared bool) (seeder bool) {
	s.announces++
	prev := s.peers[a.Addr]
	if prev != nil {
		s.remove(prev)
	}
	if shared {
		s.noteChange(a.Addr, a.Event == EventStopped, now)
	}
	// The entry is this client session's only if the peer id is the same: else the client at
	// this address restarted.
	same := prev != nil && prev.id == a.PeerID
	// A download finished when the client says so (event=completed), or when it has nothing left
	// after downloading in this session: in its first announce (it finished before announcing,
	// from the web seed), or after announcing here as a leecher (it never sent completed, as
	// aria2c stopping at once does not). Seedbox nodes fetching are not fans downloading.
	finished := a.Event == EventCompleted ||
		a.Left == 0 && a.Downloaded > 0 && (a.Event == EventStarted || same && !prev.seeder)
	counted := same && prev.completed
	seeder = isSeeder(a, same && prev.empty, finished)
	if home := household(a.from()); !IsNodePeerID(a.PeerID) {
		if finished && !counted {
			counted = true
			if s.firstCompletionToday(home, now) {
				s.completed++
				s.downloadedTotal++
				s.completedAddrs = append(s.completedAddrs, home)
			}
		}
		if (finished || a.Event == EventStarted && a.Left > 0) && len(s.downloaders) < maxDownloadersPerPeriod {
			s.downloaders[home] = struct{}{}
		}
	}
	if a.Event == EventStopped {
		return seeder
	}
	p := prev
	if p == nil {
		p = &peerState{addr: a.Addr}
	}
	p.id, p.seen, p.seeder, p.empty, p.completed = a.PeerID, now, seeder, a.Left == 0, counted
	s.add(p)
	return seeder
}

// isSeeder decides whether an announce is a seeder's. Nothing left is not enough: a client
// started from a magnet has no metadata yet, so it knows no length and announces left=0 with
// nothing downloaded (aria2c does). Taken for a seeder, it would get only leechers, often none,
// and never the metadata. So a client with nothing left is a seeder once it shows it has the
// data: it finished a download here, it has uploaded or downloaded bytes, it is a seedbox node,
// or it announced nothing left before in this session (a magnet client has the metadata and
// announces what it lacks within seconds; it is asked back within unprovenInterval). Until then
// it is a leecher, given peers and counted as one: so is a fan who restarts a client on complete
// files nobody downloads from, for those minutes.
func isSeeder(a Announce, before, finished bool) bool {
	if a.Left != 0 {
		return false
	}
	return before || finished || a.Uploaded > 0 || a.Downloaded > 0 || IsNodePeerID(a.PeerID)
}

// firstCompletionToday notes that addr finished a download at now, and reports whether it is
// the address's first completion of the torrent that day: 500 completions from one address on
// 500 ports are one download.
func (s *swarm) firstCompletionToday(addr netip.Addr, now time.Time) bool {
	if day := now.UTC().Truncate(24 * time.Hour); !day.Equal(s.day) || s.completedDay == nil {
		s.day, s.completedDay = day, map[netip.Addr]struct{}{}
	}
	if _, seen := s.completedDay[addr]; seen {
		return false
	}
	if len(s.completedDay) < maxDownloadersPerPeriod {
		s.completedDay[addr] = struct{}{}
	}
	return true
}

// add puts p in the swarm as its most recent announce.
func (s *swarm) add(p *peerState) {
	s.peers[p.addr] = p
	p.at = len(s.order)
	s.order = append(s.order, p)
	p.prev, p.next = s.newest, nil
	if s.newest != nil {
		s.newest.next = p
	} else {
		s.oldest = p
	}
	s.newest = p
	s.count(p, +1)
}

func (s *swarm) remove(p *peerState) {
	delete(s.peers, p.addr)
	last := s.order[len(s.order)-1]
	s.order[p.at], last.at = last, p.at
	s.order[len(s.order)-1] = nil
	s.order = s.order[:len(s.order)-1]
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		s.oldest = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		s.newest = p.prev
	}
	p.prev, p.next = nil, nil
	s.count(p, -1)
}

func (s *swarm) count(p *peerState, d int) {
	if p.seeder {
		s.seeders += d
	} else {
		s.leechers += d
	}
}

// pick returns up to a.NumWant live peers other than the announcing client: this process's
// from a random place on, then other processes' from a random place on; seeders get only
// leechers.
func (s *swarm) pick(a Announce, seeder bool, out []Peer) []Peer {
	out = slices.Grow(out[:0], min(a.NumWant, len(s.order)+len(s.remote)))
	if n := len(s.order); n > 0 {
		start := rand.IntN(n)
		for i := range n {
			if len(out) == a.NumWant {
				return out
			}
			p := s.order[(start+i)%n]
			if p.addr == a.Addr || p.id == a.PeerID || seeder && p.seeder || isWebKey(p.addr) {
				continue
			}
			out = append(out, Peer{ID: p.id, Addr: p.addr})
		}
	}
	start := 0
	if len(s.remote) > 0 {
		start = rand.IntN(len(s.remote))
	}
	for i := range s.remote {
		if len(out) == a.NumWant {
			break
		}
		r := s.remote[(start+i)%len(s.remote)]
		if r.addr == a.Addr || r.id == a.PeerID || seeder && r.seeder || s.peers[r.addr] != nil || isWebKey(r.addr) {
			continue
		}
		out = append(out, Peer{ID: r.id, Addr: r.addr})
	}
	return out
}

// prune forgets peers not heard from within expiry: the oldest first, so it costs only what
// it removes. shared notes them for the next Share.
func (s *swarm) prune(now time.Time, expiry time.Duration, shared bool) {
	for s.oldest != nil && now.Sub(s.oldest.seen) > expiry {
		if shared {
			s.noteChange(s.oldest.addr, true, s.oldest.seen)
		}
		s.remove(s.oldest)
	}
}

// noteChange records for the next Share that a peer announced, or is gone (last seen at when).
func (s *swarm) noteChange(key netip.AddrPort, gone bool, when time.Time) {
	if s.changed == nil {
		s.changed, s.gone = map[netip.AddrPort]struct{}{}, map[netip.AddrPort]time.Time{}
	}
	if gone {
		delete(s.changed, key)
		s.gone[key] = when
		return
	}
	delete(s.gone, key)
	s.changed[key] = struct{}{}
}

// install takes what the other processes hold of the swarm, leaving out this process's peers
// and those with a peer id in down.
func (s *swarm) install(sh sharedSwarm, down map[[20]byte]struct{}) {
	s.remote, s.remoteSeeders, s.remoteLeechers = s.remote[:0], 0, 0
	for _, r := range sh.peers {
		if _, gone := down[r.id]; s.peers[r.addr] != nil || gone {
			continue
		}
		s.remote = append(s.remote, r)
		if r.seeder {
			s.remoteSeeders++
		} else {
			s.remoteLeechers++
		}
	}
	s.sharedCompleted, s.synced = sh.completed, true
}

// SetDownPeers tells the tracker which peer ids belong to seedbox nodes marked down: the peers
// of those newly down leave every swarm at once, so fans stop being sent a dead node's address
// and the counts leave it out, rather than an expiry later. A node back up is left out of ids.
func (t *Tracker) SetDownPeers(ids [][20]byte) {
	down := make(map[[20]byte]struct{}, len(ids))
	var fresh bool
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		down[id] = struct{}{}
		if _, known := t.down[id]; !known {
			fresh = true
		}
	}
	t.down = down
	if !fresh {
		return
	}
	for _, s := range t.swarms {
		for addr, p := range s.peers {
			if _, gone := down[p.id]; gone {
				s.remove(p)
				if t.shared != nil {
					s.noteChange(addr, true, p.seen)
				}
			}
		}
		kept := s.remote[:0]
		for _, r := range s.remote {
			if _, gone := down[r.id]; !gone {
				kept = append(kept, r)
			} else if r.seeder {
				s.remoteSeeders--
			} else {
				s.remoteLeechers--
			}
		}
		s.remote = kept
	}
}

// Scrape returns the counts of the requested torrents that the platform published, in the
// order asked; others are left out, as trackers do for torrents they do not know.
func (t *Tracker) Scrape(hashes [][20]byte) []ScrapeFile {
	out := make([]ScrapeFile, 0, len(hashes))
	for _, ih := range hashes {
		if t.allowed(ih) {
			out = append(out, ScrapeFile{InfoHash: ih})
		}
	}
	now := t.clock()
	expiry := 2 * t.interval()
	requested := make([][20]byte, len(out))
	for i := range out {
		requested[i] = out[i].InfoHash
	}
	loaded := t.loadUnsynced(requested, now.Add(-expiry))
	t.mu.Lock()
	defer t.mu.Unlock()
	for ih, sh := range loaded {
		if s := t.swarm(ih); !s.synced {
			s.install(sh, t.down)
		}
	}
	for i := range out {
		if s := t.swarms[out[i].InfoHash]; s != nil {
			s.prune(now, expiry, t.shared != nil)
			out[i].Complete, out[i].Incomplete = s.seeders+s.remoteSeeders, s.leechers+s.remoteLeechers
			out[i].Downloaded = max(s.downloadedTotal, s.sharedCompleted)
		}
	}
	return out
}

// Snapshot returns every swarm's counters, sorted by infohash, and starts a new period: the
// caller adds them to its time buckets. Memory held by swarms left with no peers is released.
func (t *Tracker) Snapshot() []SwarmStats {
	now := t.clock()
	expiry := 2 * t.interval()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]SwarmStats, 0, len(t.swarms))
	for ih, s := range t.swarms {
		s.prune(now, expiry, t.shared != nil)
		addrs := make([]netip.Addr, 0, len(s.downloaders))
		for a := range s.downloaders {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		out = append(out, SwarmStats{
			InfoHash: ih, Seeders: s.seeders, Leechers: s.leechers,
			Completed: s.completed, CompletedAddrs: s.completedAddrs,
			Downloaders: len(s.downloaders), DownloaderAddrs: addrs, Announces: s.announces,
		})
		// Fresh maps, because a cleared Go map keeps its peak size.
		s.completed, s.announces, s.downloaders, s.completedAddrs = 0, 0, map[netip.Addr]struct{}{}, nil
		if !now.UTC().Truncate(24 * time.Hour).Equal(s.day) {
			s.completedDay = nil // yesterday's
		}
		switch {
		case len(s.peers) > 0 || len(s.gone) > 0 || len(s.remote) > 0 || s.completedDay != nil:
		case s.downloadedTotal == 0 && s.sharedCompleted == 0:
			delete(t.swarms, ih)
		default: // keep the completion count scrapes report
			s.peers = map[netip.AddrPort]*peerState{}
		}
	}
	t.limit.prune(t.announcesPerMinute(), now)
	slices.SortFunc(out, func(a, b SwarmStats) int { return bytes.Compare(a.InfoHash[:], b.InfoHash[:]) })
	return out
}

// AnnounceBody answers an announce request's raw query with the bencoded response body,
// including a failure reason when the request is refused: the tracker endpoint writes it
// as it is, with status 200 as clients expect. trustIP honours the "ip" parameter (see
// ParseAnnounce).
func (t *Tracker) AnnounceBody(rawQuery string, remoteIP net.IP, trustIP bool) []byte {
	a, err := ParseAnnounce(rawQuery, remoteIP, trustIP)
	if err != nil {
		return EncodeFailure(FailureReason(err))
	}
	buf := peerBufs.Get().(*[]Peer)
	defer peerBufs.Put(buf)
	resp, err := t.announce(a, *buf)
	if err != nil {
		return EncodeFailure(FailureReason(err))
	}
	*buf = resp.Peers[:0]
	return EncodeAnnounceResponse(resp)
}

// peerBufs holds the peer lists of answers being encoded, so that a busy tracker does not make
// one for every announce.
var peerBufs = sync.Pool{New: func() any { return new([]Peer) }}

// ScrapeBody answers a scrape request's raw query with the bencoded response body.
func (t *Tracker) ScrapeBody(rawQuery string) []byte {
	hashes, err := ParseScrape(rawQuery)
	if err != nil {
		return EncodeFailure(FailureReason(err))
	}
	return EncodeScrapeResponse(t.Scrape(hashes))
}

// Counts is the number of swarms this process knows and of the peers in them, its own and
// those other processes shared, for monitoring.
func (t *Tracker) Counts() (swarms, peers int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.swarms {
		peers += len(s.peers) + len(s.remote)
	}
	return len(t.swarms), peers
}
