package seeding

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Limits on what a BitTorrent client may ask of the tracker.
const (
	DefaultNumWant = 50
	MaxNumWant     = 200
	// MaxScrapeHashes caps one scrape, so a request cannot make the tracker walk every swarm.
	MaxScrapeHashes = 64
	// maxQueryBytes is far above any real client's announce and keeps parsing cheap.
	maxQueryBytes = 8 << 10
)

// Event is the event parameter of an announce.
type Event string

// The events a client reports (BEP 3).
const (
	EventNone      Event = ""
	EventStarted   Event = "started"
	EventStopped   Event = "stopped"
	EventCompleted Event = "completed"
)

// Announce is one validated tracker announce: what a client says about itself in a swarm.
type Announce struct {
	InfoHash   [20]byte
	PeerID     [20]byte
	Addr       netip.AddrPort // where other peers reach it
	Uploaded   int64
	Downloaded int64
	Left       int64
	Event      Event
	Compact    bool // BEP 23 peer list; clients that send no compact get it too
	NoPeerID   bool // leave peer ids out of a dict peer list
	NumWant    int  // 0..MaxNumWant
	// Client is a WebSocket peer's own address, which it is counted and limited by; its Addr is
	// then only its key in the swarm (see webKey), never given to BitTorrent clients.
	Client netip.Addr
}

// from is the address the announce is counted by.
func (a Announce) from() netip.Addr {
	if a.Client.IsValid() {
		return a.Client
	}
	return a.Addr.Addr()
}

// ParseAnnounce validates an announce request's raw query string. remoteIP is the address the
// request came from; an "ip" parameter replaces it only when valid and trustIP says the sender
// is one the operator trusts (a configured proxy or seedbox network), so nobody can point a
// swarm at a stranger or count as someone else. Errors are ErrInvalid with text fit for a
// "failure reason".
func ParseAnnounce(rawQuery string, remoteIP net.IP, trustIP bool) (Announce, error) {
	q, err := parseQuery(rawQuery)
	if err != nil {
		return Announce{}, err
	}
	var a Announce
	if a.InfoHash, err = q.hash20("info_hash"); err != nil {
		return Announce{}, err
	}
	if a.PeerID, err = q.hash20("peer_id"); err != nil {
		return Announce{}, err
	}
	port, err := q.one("port")
	if err != nil {
		return Announce{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Announce{}, invalidf("port must be a number from 1 to 65535")
	}
	for _, f := range []struct {
		key string
		dst *int64
	}{{"uploaded", &a.Uploaded}, {"downloaded", &a.Downloaded}, {"left", &a.Left}} {
		s, err := q.one(f.key)
		if err != nil {
			return Announce{}, err
		}
		if *f.dst, err = strconv.ParseInt(s, 10, 64); err != nil || *f.dst < 0 {
			return Announce{}, invalidf("%s must be a non-negative integer", f.key)
		}
	}
	if a.Event, err = q.event(); err != nil {
		return Announce{}, err
	}
	if a.Compact, err = q.flag("compact", true); err != nil {
		return Announce{}, err
	}
	if a.NoPeerID, err = q.flag("no_peer_id", false); err != nil {
		return Announce{}, err
	}
	if a.NumWant, err = q.numWant(); err != nil {
		return Announce{}, err
	}
	param := ""
	if trustIP {
		param = q.optional("ip")
	}
	ip, ok := peerIP(remoteIP, param)
	if !ok {
		return Announce{}, invalidf("cannot tell the peer's address")
	}
	a.Addr = netip.AddrPortFrom(ip, uint16(p))
	return a, nil
}

// ParseScrape validates a scrape request: one to MaxScrapeHashes info_hash parameters. A scrape
// of everything is refused: the tracker serves only what was asked for by hash.
func ParseScrape(rawQuery string) ([][20]byte, error) {
	q, err := parseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	values := q["info_hash"]
	switch {
	case len(values) == 0:
		return nil, invalidf("scrape needs an info_hash")
	case len(values) > MaxScrapeHashes:
		return nil, invalidf("scrape at most %d info_hash at once", MaxScrapeHashes)
	}
	out := make([][20]byte, 0, len(values))
	for _, v := range values {
		if len(v) != 20 {
			return nil, invalidf("info_hash must be 20 bytes, not %d", len(v))
		}
		out = append(out, [20]byte([]byte(v)))
	}
	return out, nil
}

// query is a parsed query string: percent-decoded, with '+' kept as a byte, because a binary
// info_hash may hold 0x2B unescaped and url.ParseQuery would turn it into a space.
type query map[string][]string

func parseQuery(raw string) (query, error) {
	if len(raw) > maxQueryBytes {
		return nil, invalidf("request is too long")
	}
	q := query{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.PathUnescape(k)
		value, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, invalidf("malformed percent-encoding in the query")
		}
		if len(q[key]) >= MaxScrapeHashes {
			return nil, invalidf("too many %q parameters", key)
		}
		q[key] = append(q[key], value)
	}
	return q, nil
}

// optional returns the parameter's only value, or "" when it is absent or repeated.
func (q query) optional(key string) string {
	if v := q[key]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// one returns a required parameter given exactly once.
func (q query) one(key string) (string, error) {
	switch v := q[key]; len(v) {
	case 0:
		return "", invalidf("missing %s", key)
	case 1:
		return v[0], nil
	default:
		return "", invalidf("%s given more than once", key)
	}
}

func (q query) hash20(key string) ([20]byte, error) {
	v, err := q.one(key)
	if err != nil {
		return [20]byte{}, err
	}
	if len(v) != 20 {
		return [20]byte{}, invalidf("%s must be 20 bytes, not %d", key, len(v))
	}
	return [20]byte([]byte(v)), nil
}

func (q query) event() (Event, error) {
	if len(q["event"]) > 1 {
		return "", invalidf("event given more than once")
	}
	switch e := Event(q.optional("event")); e {
	case EventNone, EventStarted, EventStopped, EventCompleted:
		return e, nil
	case "paused": // BEP 21: a partial seed still in the swarm
		return EventNone, nil
	default:
		return "", invalidf("event must be started, stopped, completed or empty")
	}
}

func (q query) flag(key string, def bool) (bool, error) {
	switch q.optional(key) {
	case "":
		return def, nil
	case "1":
		return true, nil
	case "0":
		return false, nil
	default:
		return false, invalidf("%s must be 0 or 1", key)
	}
}

// numWant reads numwant: absent or negative means the default, anything above MaxNumWant
// (however many digits) means MaxNumWant.
func (q query) numWant() (int, error) {
	s := q.optional("numwant")
	if s == "" {
		return DefaultNumWant, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		if s[0] == '-' {
			return DefaultNumWant, nil
		}
		return MaxNumWant, nil
	}
	switch {
	case err != nil:
		return 0, invalidf("numwant must be an integer")
	case n < 0:
		return DefaultNumWant, nil
	}
	return int(min(n, MaxNumWant)), nil
}

// peerIP picks the address other peers should dial. The result is unmapped (IPv4 as 4 bytes).
func peerIP(remote net.IP, param string) (netip.Addr, bool) {
	addr, ok := netip.AddrFromSlice(remote)
	addr = addr.Unmap()
	if !ok || !usable(addr) {
		return netip.Addr{}, false
	}
	if param == "" {
		return addr, true
	}
	if given, err := netip.ParseAddr(param); err == nil && usable(given.Unmap()) && given.Zone() == "" {
		return given.Unmap(), true
	}
	return addr, true
}

func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}
