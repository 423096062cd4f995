package seeding

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// wsPeer is a socket of the WebSocket tracker as a browser holds it: frames in, frames out.
type wsPeer struct {
	sock   *WebSocket
	frames chan []byte
	id     [20]byte
}

func openPeer(t *testing.T, w *WebTracker, addr string, n int) *wsPeer {
	t.Helper()
	p := &wsPeer{frames: make(chan []byte, 1024)}
	copy(p.id[:], fmt.Sprintf("-WW0208-%012d", n))
	sock, err := w.Open(netip.MustParseAddr(addr), func(b []byte) bool {
		select {
		case p.frames <- b:
			return true
		default:
			return false
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	p.sock = sock
	t.Cleanup(sock.Close)
	return p
}

func (p *wsPeer) send(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p.sock.Handle(b)
}

// next returns the next frame the peer got.
func (p *wsPeer) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case b := <-p.frames:
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("frame %q is not a JSON object: %v", b, err)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no frame")
		return nil
	}
}

// none checks that the peer got no frame.
func (p *wsPeer) none(t *testing.T) {
	t.Helper()
	select {
	case b := <-p.frames:
		t.Fatalf("unexpected frame %s", b)
	case <-time.After(20 * time.Millisecond):
	}
}

func (p *wsPeer) announce(ih [20]byte, left any, event string, offers int) map[string]any {
	m := map[string]any{"action": "announce", "info_hash": latin1(ih[:]), "peer_id": latin1(p.id[:]),
		"numwant": offers, "uploaded": 0, "downloaded": 0, "left": left}
	if left == 0 {
		m["uploaded"] = 16384 // a seeder that has served some, so it counts as one at once (see isSeeder)
	}
	if event != "" {
		m["event"] = event
	}
	if offers > 0 {
		list := make([]any, offers)
		for i := range list {
			list[i] = map[string]any{"offer_id": latin1(offerID(p.id, i)), "offer": map[string]any{"type": "offer", "sdp": fmt.Sprintf("v=0 offer %d of %x", i, p.id[8:])}}
		}
		m["offers"] = list
	}
	return m
}

func offerID(id [20]byte, i int) []byte {
	b := make([]byte, 20)
	copy(b, id[8:])
	b[19] = byte(i)
	return b
}

func newWebTracker(t *testing.T) (*WebTracker, *Tracker) {
	tr, _ := newTestTracker()
	tr.now = nil
	return &WebTracker{Tracker: tr}, tr
}

func nodeID(n int) [20]byte {
	var id [20]byte
	copy(id[:], fmt.Sprintf("%s%012d", NodePeerIDPrefix, n))
	return id
}

// Every malformed or refused frame is answered with a failure reason that names what is wrong,
// and changes nothing.
func TestWebTrackerRefusals(t *testing.T) {
	t.Parallel()
	w, _ := newWebTracker(t)
	ih := latin1(published[:])
	pid := latin1([]byte("-WW0208-000000000001"))
	offer := func(o any) []any { return []any{o} }
	for _, tc := range []struct {
		name  string
		frame string
		want  string
	}{
		{"not JSON", `{"action": "announce"`, "frame is not a JSON object"},
		{"not an object", `[1,2]`, "frame is not a JSON object"},
		{"not UTF-8", "\xff\xfe", "frame is not UTF-8 text"},
		{"oversized", `{"action":"announce","x":"` + strings.Repeat("a", MaxWebFrameBytes) + `"}`, "frame is larger than 65536 bytes"},
		{"unknown action", `{"action":"offer"}`, "action must be announce or scrape"},
		{"no action", `{}`, "action must be announce or scrape"},
		{"info_hash not a string", `{"action":"announce","info_hash":5}`, "info_hash must be a string"},
		{"short info_hash", mustJSON(map[string]any{"action": "announce", "info_hash": "abc", "peer_id": pid}), "info_hash must be 20 bytes, not 3"},
		{"info_hash beyond latin-1", mustJSON(map[string]any{"action": "announce", "info_hash": strings.Repeat("é", 19) + "ā", "peer_id": pid}), "info_hash must be 20 bytes as a string of code points up to U+00FF"},
		{"unpublished", mustJSON(map[string]any{"action": "announce", "info_hash": latin1(unpublished[:]), "peer_id": pid}), "torrent is not published on this tracker"},
		{"no peer_id", mustJSON(map[string]any{"action": "announce", "info_hash": ih}), "peer_id must be 20 bytes, not 0"},
		{"negative left", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid, "left": -1}), "left must be a non-negative number"},
		{"numwant a string", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid, "numwant": "ten"}), "numwant has the wrong type"},
		{"eleven offers", func() string {
			list := make([]any, 11)
			for i := range list {
				list[i] = map[string]any{"offer_id": strings.Repeat("o", 20), "offer": map[string]any{"type": "offer", "sdp": "v=0"}}
			}
			return mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid, "offers": list})
		}(), "offers: at most 10 in one announce, not 11"},
		{"offer without sdp", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid,
			"offers": offer(map[string]any{"offer_id": strings.Repeat("o", 20), "offer": map[string]any{"type": "offer"}})}), `offers[0].offer must have type "offer" and an sdp`},
		{"offer of the wrong type", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid,
			"offers": offer(map[string]any{"offer_id": strings.Repeat("o", 20), "offer": map[string]any{"type": "answer", "sdp": "v=0"}})}), `offers[0].offer must have type "offer"`},
		{"offer sdp too long", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid,
			"offers": offer(map[string]any{"offer_id": strings.Repeat("o", 20), "offer": map[string]any{"type": "offer", "sdp": strings.Repeat("s", maxSDPBytes+1)}})}), `offers[0].offer must have type "offer" and an sdp of 1 to 16384 bytes`},
		{"short offer_id", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid,
			"offers": offer(map[string]any{"offer_id": "o", "offer": map[string]any{"type": "offer", "sdp": "v=0"}})}), "offers[0].offer_id must be 20 bytes, not 1"},
		{"offers not a list", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid, "offers": "x"}), "offers has the wrong type"},
		{"answer without to_peer_id", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid,
			"offer_id": strings.Repeat("o", 20), "answer": map[string]any{"type": "answer", "sdp": "v=0"}}), "to_peer_id must be 20 bytes, not 0"},
		{"answer before announcing", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid, "to_peer_id": strings.Repeat("t", 20),
			"offer_id": strings.Repeat("o", 20), "answer": map[string]any{"type": "answer", "sdp": "v=0"}}), "announce in the swarm with this peer_id before answering"},
		{"answer that is an offer", mustJSON(map[string]any{"action": "announce", "info_hash": ih, "peer_id": pid, "to_peer_id": strings.Repeat("t", 20),
			"offer_id": strings.Repeat("o", 20), "answer": map[string]any{"type": "offer", "sdp": "v=0"}}), `answer must have type "answer"`},
		{"scrape of nothing", `{"action":"scrape"}`, "scrape needs an info_hash"},
		{"scrape of a number", `{"action":"scrape","info_hash":7}`, "info_hash must be a string or a list of strings"},
		{"scrape of too many", mustJSON(map[string]any{"action": "scrape", "info_hash": make([]string, MaxScrapeHashes+1)}), "scrape 1 to 64 info_hash at once"},
		{"scrape of a short hash", mustJSON(map[string]any{"action": "scrape", "info_hash": []string{"abc"}}), "info_hash must be 20 bytes, not 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openPeer(t, w, "198.51.100.1", 1)
			p.sock.Handle([]byte(tc.frame))
			m := p.next(t)
			if got, _ := m["failure reason"].(string); !strings.Contains(got, tc.want) {
				t.Errorf("failure reason %q, want %q", got, tc.want)
			}
			p.none(t)
		})
	}
	if swarms, peers := w.Counts(); swarms != 0 || peers != 0 {
		t.Errorf("refused frames left %d swarms and %d peers", swarms, peers)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// An announce is answered with the interval and the swarm's counts; its offers go to other
// peers of the swarm with the offering peer's id; an answer goes back to the peer that offered.
func TestWebTrackerRelaysOffersAndAnswers(t *testing.T) {
	t.Parallel()
	w, _ := newWebTracker(t)
	a := openPeer(t, w, "198.51.100.1", 1)
	b := openPeer(t, w, "198.51.100.2", 2)

	a.send(t, a.announce(published, 1000, "started", 0))
	m := a.next(t)
	if m["action"] != "announce" || m["interval"] != float64(120) || m["complete"] != float64(0) || m["incomplete"] != float64(1) || m["info_hash"] != latin1(published[:]) {
		t.Fatalf("announce response %v", m)
	}
	a.none(t)

	b.send(t, b.announce(published, 0, "started", 3))
	m = b.next(t)
	if m["complete"] != float64(1) || m["incomplete"] != float64(1) {
		t.Errorf("second announce response %v, want 1 seeder and 1 leecher", m)
	}
	b.none(t) // its offers go to others, never back
	got := a.next(t)
	offer, _ := got["offer"].(map[string]any)
	if got["action"] != "announce" || got["peer_id"] != latin1(b.id[:]) || got["info_hash"] != latin1(published[:]) ||
		got["offer_id"] != latin1(offerID(b.id, 0)) || offer["type"] != "offer" || !strings.HasPrefix(offer["sdp"].(string), "v=0 offer 0") {
		t.Fatalf("relayed offer %v", got)
	}
	a.none(t) // one offer per peer: the other two had nobody else to go to

	a.send(t, map[string]any{"action": "announce", "info_hash": latin1(published[:]), "peer_id": latin1(a.id[:]),
		"to_peer_id": latin1(b.id[:]), "offer_id": got["offer_id"], "answer": map[string]any{"type": "answer", "sdp": "v=0 answer"}})
	a.none(t)
	got = b.next(t)
	answer, _ := got["answer"].(map[string]any)
	if got["peer_id"] != latin1(a.id[:]) || got["offer_id"] != latin1(offerID(b.id, 0)) || answer["sdp"] != "v=0 answer" || answer["type"] != "answer" {
		t.Fatalf("relayed answer %v", got)
	}

	// Answering a peer that left is refused.
	b.sock.Close()
	a.send(t, map[string]any{"action": "announce", "info_hash": latin1(published[:]), "peer_id": latin1(a.id[:]),
		"to_peer_id": latin1(b.id[:]), "offer_id": got["offer_id"], "answer": map[string]any{"type": "answer", "sdp": "v=0"}})
	if m := a.next(t); m["failure reason"] != "to_peer_id is not in the swarm" {
		t.Errorf("answer to a closed socket: %v", m)
	}
}

// A newcomer's offers go to the fleet's seeders first, then to other seeders, then to leechers:
// a seedbox node re-announces seldom, so it answers browsers mostly through their offers. A
// seeder's offers go to leechers only.
func TestWebTrackerOffersGoToNodesFirst(t *testing.T) {
	t.Parallel()
	w, _ := newWebTracker(t)
	var leechers []*wsPeer
	for i := range 12 {
		p := openPeer(t, w, fmt.Sprintf("198.51.100.%d", 10+i), 10+i)
		p.send(t, p.announce(published, 500, "started", 0))
		p.next(t)
		leechers = append(leechers, p)
	}
	seed := openPeer(t, w, "198.51.100.2", 2)
	seed.send(t, seed.announce(published, 0, "started", 0))
	seed.next(t)
	node := openPeer(t, w, "203.0.113.7", 3)
	node.id = nodeID(1)
	node.send(t, node.announce(published, 0, "<regular>", 0)) // anacrolix's event: an update
	node.next(t)

	for i := range 5 {
		p := openPeer(t, w, fmt.Sprintf("198.51.100.%d", 100+i), 100+i)
		p.send(t, p.announce(published, 500, "started", 2))
		p.next(t)
		if m := node.next(t); m["peer_id"] != latin1(p.id[:]) || m["offer_id"] != latin1(offerID(p.id, 0)) {
			t.Fatalf("newcomer %d: the node got %v, want its first offer", i, m)
		}
		if m := seed.next(t); m["peer_id"] != latin1(p.id[:]) || m["offer_id"] != latin1(offerID(p.id, 1)) {
			t.Fatalf("newcomer %d: the seeder got %v, want its second offer", i, m)
		}
		for _, l := range leechers {
			l.none(t)
		}
		p.sock.Close()
	}

	// A seeder offering: its offers reach leechers only.
	seed2 := openPeer(t, w, "198.51.100.3", 4)
	seed2.send(t, seed2.announce(published, 0, "completed", 10))
	seed2.next(t)
	node.none(t)
	seed.none(t)
	got := 0
	for _, l := range leechers {
		select {
		case b := <-l.frames:
			var m map[string]any
			if json.Unmarshal(b, &m) == nil && m["peer_id"] == latin1(seed2.id[:]) && m["offer"] != nil {
				got++
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	if got != 10 {
		t.Errorf("%d leechers got the seeder's 10 offers, want 10", got)
	}
}

// A socket joins many swarms and leaves them all when it closes; stopped leaves one.
func TestWebTrackerSocketLeavesItsSwarms(t *testing.T) {
	t.Parallel()
	other := [20]byte{0xcc, 3}
	w, tr := newWebTracker(t)
	tr.Allowed = func(ih [20]byte) bool { return ih == published || ih == other }
	p := openPeer(t, w, "198.51.100.1", 1)
	for _, ih := range [][20]byte{published, other} {
		p.send(t, p.announce(ih, 100, "started", 0))
		p.next(t)
	}
	if swarms, peers := w.Counts(); swarms != 2 || peers != 2 {
		t.Fatalf("counts %d swarms %d peers, want 2 and 2", swarms, peers)
	}
	scrape := func() map[string]any {
		q := openPeer(t, w, "198.51.100.9", 9)
		q.send(t, map[string]any{"action": "scrape", "info_hash": []string{latin1(published[:]), latin1(other[:])}})
		m := q.next(t)
		if m["action"] != "scrape" {
			t.Fatalf("scrape answer %v", m)
		}
		return m["files"].(map[string]any)
	}
	if f := scrape()[latin1(other[:])].(map[string]any); f["incomplete"] != float64(1) {
		t.Errorf("scrape of the second swarm %v, want 1 leecher", f)
	}
	p.send(t, p.announce(other, 100, "stopped", 0))
	if m := p.next(t); m["incomplete"] != float64(0) {
		t.Errorf("stopped answered %v, want no leecher left", m)
	}
	if swarms, _ := w.Counts(); swarms != 1 {
		t.Errorf("after stopped: %d swarms, want 1", swarms)
	}
	p.sock.Close()
	if swarms, peers := w.Counts(); swarms != 0 || peers != 0 {
		t.Errorf("after close: %d swarms %d peers", swarms, peers)
	}
	for ih, f := range scrape() {
		if f := f.(map[string]any); f["incomplete"] != float64(0) || f["complete"] != float64(0) {
			t.Errorf("swarm %x after close: %v", ih, f)
		}
	}
}

// Browsers and BitTorrent clients are one swarm in the counts: the HTTP tracker's answers and
// statistics count WebSocket peers, by their address, and never list them as peers to dial;
// a seedbox node in both counts once.
func TestWebTrackerSharesTheSwarmsStatistics(t *testing.T) {
	t.Parallel()
	w, tr := newWebTracker(t)
	httpNode := client(1, 0, EventStarted)
	httpNode.PeerID = nodeID(1)
	mustAnnounce(t, tr, httpNode)
	mustAnnounce(t, tr, client(2, 100, EventStarted))

	// Two tabs of one household, and the node over WebSocket too.
	b1 := openPeer(t, w, "192.0.2.50", 50)
	b2 := openPeer(t, w, "192.0.2.50", 51)
	node := openPeer(t, w, "198.51.100.1", 3)
	node.id = nodeID(1)
	b1.send(t, b1.announce(published, nil, "started", 0)) // no metadata yet: left unknown
	b1.next(t)
	b2.send(t, b2.announce(published, 100, "started", 0))
	b2.next(t)
	node.send(t, node.announce(published, 0, "started", 0))
	if m := node.next(t); m["complete"] != float64(1) || m["incomplete"] != float64(3) {
		t.Errorf("counts %v, want the node once and 3 leechers", m)
	}
	r := mustAnnounce(t, tr, client(4, 100, EventStarted))
	if r.Complete != 1 || r.Incomplete != 4 {
		t.Errorf("HTTP announce counts %d seeders %d leechers, want 1 and 4", r.Complete, r.Incomplete)
	}
	for _, p := range r.Peers {
		if isWebKey(p.Addr) {
			t.Errorf("HTTP client given a WebSocket peer %v", p.Addr)
		}
	}
	if len(r.Peers) != 2 {
		t.Errorf("HTTP client given %d peers, want the other 2 BitTorrent clients", len(r.Peers))
	}
	b2.send(t, b2.announce(published, 0, "completed", 0))
	b2.next(t)
	stats := tr.Snapshot()
	if len(stats) != 1 {
		t.Fatalf("%d swarms", len(stats))
	}
	s := stats[0]
	// Downloaders: 198.51.100.2, 198.51.100.4 and the household 192.0.2.50 (two tabs).
	if s.Seeders != 2 || s.Leechers != 3 || s.Completed != 1 || s.Downloaders != 3 {
		t.Errorf("snapshot %+v, want 2 seeders, 3 leechers, 1 completion, 3 downloaders", s)
	}
	if len(s.CompletedAddrs) != 1 || s.CompletedAddrs[0] != netip.MustParseAddr("192.0.2.50") {
		t.Errorf("completion counted by %v, want the browser's address", s.CompletedAddrs)
	}
	seeders, leechers := tr.FanCounts(published)
	if seeders != 1 || leechers != 3 {
		t.Errorf("fans %d seeders %d leechers, want the browser and 3 leechers without the node", seeders, leechers)
	}
}

// Limits: sockets per address, announces per socket.
func TestWebTrackerLimits(t *testing.T) {
	t.Parallel()
	w, _ := newWebTracker(t)
	w.SocketsPerIP = 2
	a := openPeer(t, w, "2001:db8::1", 1)
	openPeer(t, w, "2001:db8::2", 2) // the same /64
	if _, err := w.Open(netip.MustParseAddr("2001:db8::3"), func([]byte) bool { return true }); err != ErrTooManySockets {
		t.Fatalf("third socket of a /64: %v, want ErrTooManySockets", err)
	}
	a.sock.Close()
	openPeer(t, w, "2001:db8::3", 3)

	p := openPeer(t, w, "198.51.100.1", 4)
	p.sock.limit.tokens = 2
	for i := range 3 {
		p.send(t, p.announce(published, 1, "", 0))
		m := p.next(t)
		if reason, _ := m["failure reason"].(string); (i == 2) != strings.Contains(reason, "too many announces on this socket") {
			t.Errorf("announce %d: %v", i, m)
		}
	}
}

// Whatever a frame holds, the socket gets JSON objects back (an answer or a failure reason) and
// the tracker does not panic.
func FuzzWebTrackerFrame(f *testing.F) {
	p := &wsPeer{id: [20]byte([]byte("-WW0208-000000000001"))}
	for _, seed := range []string{
		mustJSON(p.announce(published, 100, "started", 2)),
		mustJSON(p.announce(published, nil, "<regular>", 0)),
		mustJSON(map[string]any{"action": "scrape", "info_hash": latin1(published[:])}),
		mustJSON(map[string]any{"action": "announce", "info_hash": latin1(published[:]), "peer_id": latin1(p.id[:]),
			"to_peer_id": latin1(p.id[:]), "offer_id": strings.Repeat("o", 20), "answer": map[string]any{"type": "answer", "sdp": "v=0"}}),
		`{"action":"announce","info_hash":"\u00aa\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000","peer_id":"x","left":1e400}`,
		`{"action":"announce","offers":[null,{}],"answer":null}`,
		"\x00\x01", "", "null", "[]", `"announce"`,
	} {
		f.Add([]byte(seed))
	}
	w, _ := newWebTracker(&testing.T{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		for i, before := range []bool{false, true} {
			p := openPeer(t, w, "198.51.100.1", i)
			if before { // a peer in the swarm, to offer to and be answered
				p.send(t, p.announce(published, 1, "started", 0))
				p.next(t)
			}
			p.sock.Handle(frame)
			n := 0
		drain:
			for {
				select {
				case b := <-p.frames:
					n++
					var m map[string]any
					if err := json.Unmarshal(b, &m); err != nil {
						t.Fatalf("frame %q answered with %q, not a JSON object", frame, b)
					}
					if r, ok := m["failure reason"]; ok {
						if s, _ := r.(string); s == "" || s == "internal tracker error" {
							t.Fatalf("frame %q answered with failure reason %q", frame, r)
						}
					}
				default:
					break drain
				}
			}
			if n == 0 && !(before && strings.Contains(string(frame), "answer")) {
				t.Fatalf("frame %q got no answer", frame)
			}
			p.sock.Close()
		}
	})
}
