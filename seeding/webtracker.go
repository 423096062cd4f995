package seeding

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
	"unicode/utf8"
)

// The WebSocket tracker speaks the WebTorrent tracker protocol (as bittorrent-tracker's server
// does): JSON text frames, with info_hash, peer_id and offer_id as 20-character strings whose
// code points are the bytes. Browsers cannot take TCP connections, so peers do not get addresses:
// an announce carries WebRTC offers, the tracker hands each to another peer of the swarm, and
// that peer's answer comes back through the tracker to the peer that offered.

// Limits of the WebSocket tracker.
const (
	// MaxWebFrameBytes is the largest frame a socket may send: ten offers of a few KiB each.
	MaxWebFrameBytes = 64 << 10
	// MaxWebOffers is how many offers one announce may carry, as WebTorrent clients send.
	MaxWebOffers = 10
	// maxSDPBytes bounds one session description.
	maxSDPBytes = 16 << 10
	// MaxWebSwarmsPerSocket is how many swarms one socket may be in: a seedbox node announces
	// every torrent it holds over one socket.
	MaxWebSwarmsPerSocket = 4096
	// WebAnnouncesPerMinute is how many announces (and answers) one socket may send a minute,
	// and WebAnnounceBurst how many at once, for a node announcing all it holds when it connects.
	WebAnnouncesPerMinute = 600
	WebAnnounceBurst      = MaxWebSwarmsPerSocket
	// DefaultWebSocketsPerIP is how many sockets one address (an IPv6 /64) may hold open when
	// WebTracker.SocketsPerIP is zero.
	DefaultWebSocketsPerIP = 64
	// DefaultWebInterval is how often WebSocket peers are asked to announce.
	DefaultWebInterval = 2 * time.Minute
)

// ErrTooManySockets refuses a socket from an address that holds as many as it may.
var ErrTooManySockets = errors.New("too many tracker sockets from this address")

// WebTracker is the WebSocket tracker. Its swarms count in the Tracker's statistics: a browser
// is a peer of the same swarm as the BitTorrent clients of the HTTP tracker, whatever its
// transport, and seedbox nodes (in both) count once. Set the fields before the first socket.
type WebTracker struct {
	// Tracker is the HTTP tracker, whose published torrents, counts and statistics are shared.
	Tracker *Tracker
	// Interval is the announce interval told to peers; zero means DefaultWebInterval.
	Interval time.Duration
	// SocketsPerIP is how many sockets one address may hold open; zero means
	// DefaultWebSocketsPerIP, a negative number no limit.
	SocketsPerIP int

	// LiveOn reports whether a live stream is on; nil refuses live swarms. A socket opened for
	// a live stream's page may join swarms of its own (p2p-media-loader names them by hashes
	// of the playlist's streams), up to MaxLiveSwarmsPerSocket, while that stream is on.
	LiveOn func(streamID int64) bool

	relay *webRelay // set by RelayThrough: offers and answers cross serve processes

	mu      sync.Mutex
	swarms  map[[20]byte]*webSwarm
	sockets map[netip.Addr]int // open sockets per household
	live    map[[20]byte]int64 // live swarms and their stream
}

// MaxLiveSwarmsPerSocket is how many live swarms one viewer's socket may open: one per stream
// of the playlist (video, and audio when it comes apart).
const MaxLiveSwarmsPerSocket = 4

// LiveSwarm reports whether ih is the swarm of a live stream that is still on, for the
// Tracker's Allowed beside the published torrents.
func (w *WebTracker) LiveSwarm(ih [20]byte) bool {
	w.mu.Lock()
	id, ok := w.live[ih]
	w.mu.Unlock()
	if !ok {
		return false
	}
	if w.LiveOn != nil && w.LiveOn(id) {
		return true
	}
	w.mu.Lock()
	delete(w.live, ih) // the stream ended: its swarm goes
	w.mu.Unlock()
	return false
}

// SetLive makes the socket a live stream's viewer: its announces for swarms the platform did
// not publish open live swarms of that stream.
func (c *WebSocket) SetLive(streamID int64) { c.liveStream = streamID }

// allowed reports whether the socket may announce in ih's swarm: a published torrent, or a
// live swarm of the socket's stream while it is on.
func (c *WebSocket) allowed(ih [20]byte) bool {
	w := c.w
	w.mu.Lock()
	id, isLive := w.live[ih]
	w.mu.Unlock()
	if isLive { // only the viewers of its own stream, while it is on
		return id == c.liveStream && w.LiveSwarm(ih)
	}
	if w.Tracker.allowed(ih) {
		return true
	}
	if c.liveStream == 0 || w.LiveOn == nil || !w.LiveOn(c.liveStream) {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, ok := w.live[ih]; ok {
		return id == c.liveStream
	}
	if c.liveSwarms >= MaxLiveSwarmsPerSocket {
		return false
	}
	if w.live == nil {
		w.live = map[[20]byte]int64{}
	}
	w.live[ih] = c.liveStream
	c.liveSwarms++
	return true
}

// WebSocket is one peer's socket: it may join many swarms and leaves all of them when closed.
type WebSocket struct {
	w    *WebTracker
	addr netip.Addr
	send func([]byte) bool

	// Guarded by w.mu.
	swarms map[[20]byte]*webEntry
	closed bool

	limit bucket // announces; only the socket's reading goroutine touches it

	liveStream int64 // the live stream whose page opened the socket; 0 for none
	liveSwarms int   // live swarms it opened; guarded by w.mu
}

// webSwarm is the peers of one torrent that a socket of some serve process holds: entries by
// peer id, and the same entries by rank for picking whom an offer goes to.
type webSwarm struct {
	entries map[[20]byte]*webEntry
	ranks   [3][]*webEntry
	local   int  // entries with a socket here
	loaded  bool // the other processes' entries were read
}

// The ranks of peers for offers: a newcomer's offers go to the fleet's seeders first, since a
// seedbox node re-announces (and so offers) seldom, then to other seeders, then to leechers.
const (
	rankNode = iota
	rankSeeder
	rankLeecher
)

// webEntry is a peer of a swarm: on a socket of this process, or on another process.
type webEntry struct {
	id      [20]byte
	sock    *WebSocket // nil for a peer of another process
	process string     // the other process
	seeder  bool
	rank    int
	pos     int // in its rank's slice
}

func rankOf(id [20]byte, seeder bool) int {
	switch {
	case seeder && IsNodePeerID(id):
		return rankNode
	case seeder:
		return rankSeeder
	}
	return rankLeecher
}

func (s *webSwarm) put(e *webEntry) {
	if s.entries == nil {
		s.entries = map[[20]byte]*webEntry{}
	}
	e.rank = rankOf(e.id, e.seeder)
	e.pos = len(s.ranks[e.rank])
	s.ranks[e.rank] = append(s.ranks[e.rank], e)
	s.entries[e.id] = e
	if e.sock != nil {
		s.local++
	}
}

func (s *webSwarm) del(e *webEntry) {
	if s.entries[e.id] != e {
		return
	}
	delete(s.entries, e.id)
	r := s.ranks[e.rank]
	last := r[len(r)-1]
	r[e.pos], last.pos = last, e.pos
	r[len(r)-1] = nil
	s.ranks[e.rank] = r[:len(r)-1]
	if e.sock != nil {
		s.local--
	}
}

// pick returns up to n peers other than self for self's offers, by rank, each rank from a
// random place on. A seeder's offers go to leechers only.
func (s *webSwarm) pick(self [20]byte, seeder bool, n int) []*webEntry {
	var out []*webEntry
	for rank := range s.ranks {
		if seeder && rank != rankLeecher {
			continue
		}
		r := s.ranks[rank]
		if len(r) == 0 {
			continue
		}
		start := rand.IntN(len(r))
		for i := 0; i < len(r) && len(out) < n; i++ {
			if e := r[(start+i)%len(r)]; e.id != self {
				out = append(out, e)
			}
		}
	}
	return out
}

func (w *WebTracker) interval() time.Duration {
	if w.Interval > 0 {
		return w.Interval
	}
	return DefaultWebInterval
}

func (w *WebTracker) socketsPerIP() int {
	if w.SocketsPerIP == 0 {
		return DefaultWebSocketsPerIP
	}
	return w.SocketsPerIP
}

// Open registers a socket from addr. send queues a frame for the peer without blocking and
// reports false when the peer is too slow to take it (the caller then closes the socket).
// Close the socket when it ends. Too many sockets from one address get ErrTooManySockets.
func (w *WebTracker) Open(addr netip.Addr, send func([]byte) bool) (*WebSocket, error) {
	home := household(addr)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sockets == nil {
		w.sockets = map[netip.Addr]int{}
	}
	if limit := w.socketsPerIP(); limit > 0 && w.sockets[home] >= limit {
		return nil, ErrTooManySockets
	}
	w.sockets[home]++
	return &WebSocket{w: w, addr: addr.Unmap(), send: send, swarms: map[[20]byte]*webEntry{},
		limit: bucket{tokens: WebAnnounceBurst, last: time.Now()}}, nil
}

// Close takes the socket out of every swarm it joined.
func (c *WebSocket) Close() {
	w := c.w
	w.mu.Lock()
	if c.closed {
		w.mu.Unlock()
		return
	}
	c.closed = true
	if home := household(c.addr); w.sockets[home] <= 1 {
		delete(w.sockets, home)
	} else {
		w.sockets[home]--
	}
	left := make([]*webEntry, 0, len(c.swarms))
	hashes := make([][20]byte, 0, len(c.swarms))
	for ih, e := range c.swarms {
		w.leave(ih, e)
		left, hashes = append(left, e), append(hashes, ih)
	}
	c.swarms = nil
	w.mu.Unlock()
	for i, e := range left {
		w.recordStats(c, hashes[i], e.id, Announce{Event: EventStopped})
	}
}

// leave takes e out of its swarm; w.mu is held.
func (w *WebTracker) leave(ih [20]byte, e *webEntry) {
	if s := w.swarms[ih]; s != nil {
		s.del(e)
		if s.local == 0 { // other processes' peers are read again when one joins here
			delete(w.swarms, ih)
		}
	}
	w.relay.left(ih, e.id)
}

// webRequest is a frame from a peer: an announce (perhaps with offers, or an answer to
// relay), or a scrape.
type webRequest struct {
	Action     string          `json:"action"`
	InfoHash   json.RawMessage `json:"info_hash"`
	PeerID     string          `json:"peer_id"`
	NumWant    *float64        `json:"numwant"`
	Uploaded   *float64        `json:"uploaded"`
	Downloaded *float64        `json:"downloaded"`
	Left       *float64        `json:"left"`
	Event      string          `json:"event"`
	Offers     []webOffer      `json:"offers"`
	Answer     json.RawMessage `json:"answer"`
	OfferID    string          `json:"offer_id"`
	ToPeerID   string          `json:"to_peer_id"`
}

type webOffer struct {
	Offer   json.RawMessage `json:"offer"`
	OfferID string          `json:"offer_id"`
}

// sessionDescription is a WebRTC offer or answer, relayed with nothing else it may carry.
type sessionDescription struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// webMessage is a frame to a peer. Binary strings are already latin-1 text.
type webMessage struct {
	Action     string              `json:"action"`
	Failure    string              `json:"failure reason,omitempty"`
	InfoHash   string              `json:"info_hash,omitempty"`
	Interval   int                 `json:"interval,omitempty"`
	Complete   *int                `json:"complete,omitempty"`
	Incomplete *int                `json:"incomplete,omitempty"`
	PeerID     string              `json:"peer_id,omitempty"`
	Offer      *sessionDescription `json:"offer,omitempty"`
	Answer     *sessionDescription `json:"answer,omitempty"`
	OfferID    string              `json:"offer_id,omitempty"`
	Files      map[string]webFile  `json:"files,omitempty"`
}

type webFile struct {
	Complete   int   `json:"complete"`
	Incomplete int   `json:"incomplete"`
	Downloaded int64 `json:"downloaded"`
}

// latin1 writes bytes as the protocol's binary string.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// binary20 reads a 20-byte binary string.
func binary20(field, s string) ([20]byte, error) {
	var out [20]byte
	n := 0
	for _, r := range s {
		if r > 0xFF || n == len(out) {
			return out, invalidf("%s must be 20 bytes as a string of code points up to U+00FF", field)
		}
		out[n] = byte(r)
		n++
	}
	if n != len(out) {
		return out, invalidf("%s must be 20 bytes, not %d", field, n)
	}
	return out, nil
}

// Handle answers one text frame from the peer. Whatever the frame holds, the peer gets an
// answer or a relayed message, or a failure reason saying what is wrong; nothing else happens.
func (c *WebSocket) Handle(frame []byte) {
	var req webRequest
	action := "announce"
	fail := func(ih string, err error) {
		c.reply(webMessage{Action: action, Failure: FailureReason(err), InfoHash: ih})
	}
	if len(frame) > MaxWebFrameBytes {
		fail("", invalidf("frame is larger than %d bytes", MaxWebFrameBytes))
		return
	}
	if !utf8.Valid(frame) {
		fail("", invalidf("frame is not UTF-8 text"))
		return
	}
	if err := json.Unmarshal(frame, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			fail("", invalidf("%s has the wrong type: %s is not a %s", te.Field, te.Value, te.Type))
		} else {
			fail("", invalidf("frame is not a JSON object"))
		}
		return
	}
	switch req.Action {
	case "announce":
	case "scrape":
		action = "scrape"
		c.scrape(req.InfoHash, fail)
		return
	default:
		fail("", invalidf("action must be announce or scrape"))
		return
	}
	var ihText string
	if err := json.Unmarshal(req.InfoHash, &ihText); err != nil {
		fail("", invalidf("info_hash must be a string"))
		return
	}
	ih, err := binary20("info_hash", ihText)
	if err != nil {
		fail("", err)
		return
	}
	if !c.limit.allowAt(WebAnnouncesPerMinute, WebAnnounceBurst, time.Now()) {
		fail(ihText, invalidf("too many announces on this socket; announce again in a minute"))
		return
	}
	if !c.allowed(ih) {
		fail(ihText, errNotPublished)
		return
	}
	peerID, err := binary20("peer_id", req.PeerID)
	if err != nil {
		fail(ihText, err)
		return
	}
	if len(req.Answer) > 0 && string(req.Answer) != "null" {
		if err := c.answer(ih, ihText, peerID, req); err != nil {
			fail(ihText, err)
		}
		return
	}
	a, offers, err := parseWebAnnounce(ih, peerID, req)
	if err != nil {
		fail(ihText, err)
		return
	}
	if err := c.announce(a, ihText, offers); err != nil {
		fail(ihText, err)
	}
}

// outOffer is a validated offer, with its id still as the binary string to relay.
type outOffer struct {
	desc sessionDescription
	id   string
}

func parseWebAnnounce(ih, peerID [20]byte, req webRequest) (Announce, []outOffer, error) {
	a := Announce{InfoHash: ih, PeerID: peerID, Addr: webKey(peerID), Left: 1}
	for _, f := range []struct {
		name string
		v    *float64
		dst  *int64
	}{{"uploaded", req.Uploaded, &a.Uploaded}, {"downloaded", req.Downloaded, &a.Downloaded}, {"left", req.Left, &a.Left}} {
		if f.v == nil { // a browser without the metadata yet sends no left (Infinity is null)
			continue
		}
		if *f.v < 0 || math.IsNaN(*f.v) {
			return a, nil, invalidf("%s must be a non-negative number", f.name)
		}
		*f.dst = int64(min(*f.v, math.MaxInt64/2))
	}
	switch Event(req.Event) {
	case EventStarted, EventStopped, EventCompleted:
		a.Event = Event(req.Event)
	default: // anacrolix sends "<regular>"; anything else is an update too
		a.Event = EventNone
	}
	if len(req.Offers) > MaxWebOffers {
		return a, nil, invalidf("offers: at most %d in one announce, not %d", MaxWebOffers, len(req.Offers))
	}
	offers := make([]outOffer, 0, len(req.Offers))
	for i, o := range req.Offers {
		if _, err := binary20(fmt.Sprintf("offers[%d].offer_id", i), o.OfferID); err != nil {
			return a, nil, err
		}
		d, err := parseSessionDescription(fmt.Sprintf("offers[%d].offer", i), o.Offer, "offer")
		if err != nil {
			return a, nil, err
		}
		offers = append(offers, outOffer{desc: d, id: o.OfferID})
	}
	return a, offers, nil
}

func parseSessionDescription(field string, raw json.RawMessage, kind string) (sessionDescription, error) {
	var d sessionDescription
	if len(raw) > maxSDPBytes+64 || json.Unmarshal(raw, &d) != nil {
		return d, invalidf("%s must be an object with type and sdp, at most %d bytes", field, maxSDPBytes)
	}
	if d.Type != kind || d.SDP == "" || len(d.SDP) > maxSDPBytes {
		return d, invalidf("%s must have type %q and an sdp of 1 to %d bytes", field, kind, maxSDPBytes)
	}
	return d, nil
}

// announce puts the socket's peer in the swarm (or takes it out on stopped), answers with the
// swarm's counts and relays the offers.
func (c *WebSocket) announce(a Announce, ihText string, offers []outOffer) error {
	w := c.w
	seeder := a.Left == 0
	w.relay.load(w, a.InfoHash)
	w.mu.Lock()
	if c.closed {
		w.mu.Unlock()
		return nil
	}
	var picked []*webEntry
	prev := c.swarms[a.InfoHash]
	changed := false
	var renamed [20]byte // the peer id this socket announced before in the swarm
	if a.Event == EventStopped {
		if prev != nil {
			w.leave(a.InfoHash, prev)
			delete(c.swarms, a.InfoHash)
		}
	} else {
		if prev == nil && len(c.swarms) >= MaxWebSwarmsPerSocket {
			w.mu.Unlock()
			return invalidf("a socket may be in at most %d swarms", MaxWebSwarmsPerSocket)
		}
		s := w.swarm(a.InfoHash)
		if prev == nil || prev.id != a.PeerID || prev.seeder != seeder {
			if prev != nil {
				s.del(prev)
				if prev.id != a.PeerID {
					w.relay.left(a.InfoHash, prev.id)
					renamed = prev.id
				}
			}
			if other := s.entries[a.PeerID]; other != nil { // the peer moved to this socket
				s.del(other)
				if other.sock != nil {
					delete(other.sock.swarms, a.InfoHash)
				}
			}
			e := &webEntry{id: a.PeerID, sock: c, seeder: seeder}
			s.put(e)
			c.swarms[a.InfoHash] = e
			changed = true
		}
		picked = s.pick(a.PeerID, seeder, len(offers))
	}
	targets := make([]webTarget, len(picked))
	for i, e := range picked {
		targets[i] = webTarget{sock: e.sock, process: e.process, id: e.id}
	}
	w.mu.Unlock()

	if changed {
		w.relay.joined(a.InfoHash, a.PeerID, seeder)
	}
	if renamed != ([20]byte{}) {
		w.recordStats(c, a.InfoHash, renamed, Announce{Event: EventStopped})
	}
	complete, incomplete := w.recordStats(c, a.InfoHash, a.PeerID, a)
	c.reply(webMessage{Action: "announce", InfoHash: ihText, Interval: int(w.interval() / time.Second),
		Complete: &complete, Incomplete: &incomplete})
	from := latin1(a.PeerID[:])
	for i, t := range targets {
		w.deliver(a.InfoHash, t, webMessage{Action: "announce", Offer: &offers[i].desc, OfferID: offers[i].id,
			PeerID: from, InfoHash: ihText})
	}
	return nil
}

// recordStats counts a browser's announce in the Tracker's swarm and returns the swarm's
// seeders and leechers. A seedbox node is in the swarm through the HTTP tracker already, so its
// announces here are not counted again.
func (w *WebTracker) recordStats(c *WebSocket, ih, id [20]byte, a Announce) (complete, incomplete int) {
	a.InfoHash, a.PeerID, a.Addr, a.Client = ih, id, webKey(id), c.addr
	return w.Tracker.announceWeb(a, !IsNodePeerID(id))
}

// answer relays a peer's answer to the peer whose offer it answers. The answering peer must
// have announced in the swarm.
func (c *WebSocket) answer(ih [20]byte, ihText string, peerID [20]byte, req webRequest) error {
	to, err := binary20("to_peer_id", req.ToPeerID)
	if err != nil {
		return err
	}
	if _, err := binary20("offer_id", req.OfferID); err != nil {
		return err
	}
	d, err := parseSessionDescription("answer", req.Answer, "answer")
	if err != nil {
		return err
	}
	w := c.w
	w.relay.load(w, ih)
	w.mu.Lock()
	me := c.swarms[ih]
	var t webTarget
	var found bool
	if s := w.swarms[ih]; s != nil && me != nil && me.id == peerID {
		if e := s.entries[to]; e != nil {
			t, found = webTarget{sock: e.sock, process: e.process, id: e.id}, true
		}
	}
	w.mu.Unlock()
	switch {
	case me == nil || me.id != peerID:
		return invalidf("announce in the swarm with this peer_id before answering")
	case !found:
		return invalidf("to_peer_id is not in the swarm")
	}
	w.deliver(ih, t, webMessage{Action: "announce", Answer: &d, OfferID: req.OfferID, PeerID: latin1(peerID[:]), InfoHash: ihText})
	return nil
}

// webTarget is a peer a message goes to: a socket here, or a peer of another process.
type webTarget struct {
	sock    *WebSocket
	process string
	id      [20]byte
}

func (w *WebTracker) deliver(ih [20]byte, t webTarget, m webMessage) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	if t.sock != nil {
		t.sock.sendFrame(b)
		return
	}
	w.relay.send(t.process, ih, t.id, b)
}

// deliverLocal hands a frame relayed by another process to the peer of this process it is for.
func (w *WebTracker) deliverLocal(ih, to [20]byte, frame []byte) {
	w.mu.Lock()
	var sock *WebSocket
	if s := w.swarms[ih]; s != nil {
		if e := s.entries[to]; e != nil {
			sock = e.sock
		}
	}
	w.mu.Unlock()
	if sock != nil {
		sock.sendFrame(frame)
	}
}

func (c *WebSocket) sendFrame(b []byte) {
	c.send(b)
}

func (c *WebSocket) reply(m webMessage) {
	if b, err := json.Marshal(m); err == nil {
		c.sendFrame(b)
	}
}

// scrape answers with the counts of one torrent or of a list of them.
func (c *WebSocket) scrape(raw json.RawMessage, fail func(string, error)) {
	var list []string
	var one string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		fail("", invalidf("scrape needs an info_hash"))
		return
	case json.Unmarshal(raw, &one) == nil:
		list = []string{one}
	case json.Unmarshal(raw, &list) == nil:
	default:
		fail("", invalidf("info_hash must be a string or a list of strings"))
		return
	}
	if len(list) == 0 || len(list) > MaxScrapeHashes {
		fail("", invalidf("scrape 1 to %d info_hash at once", MaxScrapeHashes))
		return
	}
	if !c.limit.allowAt(WebAnnouncesPerMinute, WebAnnounceBurst, time.Now()) {
		fail("", invalidf("too many requests on this socket; scrape again in a minute"))
		return
	}
	hashes := make([][20]byte, len(list))
	for i, s := range list {
		ih, err := binary20("info_hash", s)
		if err != nil {
			fail("", err)
			return
		}
		hashes[i] = ih
	}
	files := map[string]webFile{}
	for _, f := range c.w.Tracker.Scrape(hashes) {
		files[latin1(f.InfoHash[:])] = webFile{Complete: f.Complete, Incomplete: f.Incomplete, Downloaded: f.Downloaded}
	}
	c.reply(webMessage{Action: "scrape", Files: files})
}

// swarm returns a torrent's swarm, made empty if there is none; w.mu is held.
func (w *WebTracker) swarm(ih [20]byte) *webSwarm {
	if w.swarms == nil {
		w.swarms = map[[20]byte]*webSwarm{}
	}
	s := w.swarms[ih]
	if s == nil {
		s = &webSwarm{}
		w.swarms[ih] = s
	}
	return s
}

// Counts is the number of swarms with a socket of this process and of its sockets' peers in
// them, for monitoring.
func (w *WebTracker) Counts() (swarms, peers int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.swarms {
		if s.local > 0 {
			swarms++
			peers += s.local
		}
	}
	return swarms, peers
}

// webPrefix is 0100::/64, the discard-only prefix (RFC 6666): a WebSocket peer's key in the
// Tracker's swarm lies in it, so it is never mistaken for an address a client could dial.
var webPrefix = [8]byte{0x01}

// webKey is a WebSocket peer's key in the Tracker's swarm, made from its peer id.
func webKey(id [20]byte) netip.AddrPort {
	h := sha1.Sum(id[:])
	var a [16]byte
	copy(a[:8], webPrefix[:])
	copy(a[8:], h[:8])
	return netip.AddrPortFrom(netip.AddrFrom16(a), binary.BigEndian.Uint16(h[8:])|1)
}

func isWebKey(k netip.AddrPort) bool {
	a := k.Addr()
	if !a.Is6() || a.Is4In6() {
		return false
	}
	b := a.As16()
	return [8]byte(b[:8]) == webPrefix
}

// allowAt takes a token from a bucket refilled at perMinute, holding at most burst.
func (b *bucket) allowAt(perMinute, burst int, now time.Time) bool {
	b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Minutes()*float64(perMinute))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
