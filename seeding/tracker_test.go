package seeding

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	httpTracker "github.com/anacrolix/torrent/tracker/http"
)

// fakeClock is a tracker clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var (
	published   = [20]byte{0xaa, 1}
	unpublished = [20]byte{0xbb, 2}
)

func newTestTracker() (*Tracker, *fakeClock) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	t := &Tracker{Allowed: func(ih [20]byte) bool { return ih == published }, now: clock.Now}
	return t, clock
}

// client is a test peer; n picks its id and address. One with nothing left has uploaded a
// little, which shows it holds the data (see isSeeder).
func client(n int, left int64, event Event) Announce {
	var id [20]byte
	copy(id[:], fmt.Sprintf("-TT0001-%012d", n))
	a := Announce{
		InfoHash: published, PeerID: id, Left: left, Event: event, Compact: true, NumWant: 50,
		Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(n)}), 6881),
	}
	if left == 0 {
		a.Uploaded = 16384
	}
	return a
}

func mustAnnounce(t *testing.T, tr *Tracker, a Announce) AnnounceResponse {
	t.Helper()
	r, err := tr.Announce(a)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func peerSet(r AnnounceResponse) map[netip.AddrPort]bool {
	m := map[netip.AddrPort]bool{}
	for _, p := range r.Peers {
		m[p.Addr] = true
	}
	return m
}

func TestTrackerNotAllowed(t *testing.T) {
	tr, _ := newTestTracker()
	a := client(1, 100, EventStarted)
	a.InfoHash = unpublished
	if _, err := tr.Announce(a); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("Announce unpublished: error = %v, want ErrNotAllowed", err)
	}
	var nilAllowed Tracker
	if _, err := nilAllowed.Announce(client(1, 100, EventStarted)); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("Tracker without Allowed: error = %v, want ErrNotAllowed", err)
	}
	if got := tr.Scrape([][20]byte{unpublished, published}); len(got) != 1 || got[0].InfoHash != published {
		t.Errorf("Scrape = %+v, want only the published torrent", got)
	}
	if s := tr.Snapshot(); len(s) != 0 {
		t.Errorf("Snapshot after refused announces = %+v", s)
	}
}

func TestTrackerSwarm(t *testing.T) {
	tr, _ := newTestTracker()
	seed := mustAnnounce(t, tr, client(1, 0, EventStarted))
	if len(seed.Peers) != 0 || seed.Complete != 1 || seed.Incomplete != 0 || seed.Interval != DefaultInterval {
		t.Errorf("first seeder got %+v", seed)
	}
	mustAnnounce(t, tr, client(2, 0, EventStarted))
	r := mustAnnounce(t, tr, client(3, 500, EventStarted))
	if got := peerSet(r); len(got) != 2 || !got[client(1, 0, "").Addr] || !got[client(2, 0, "").Addr] {
		t.Errorf("leecher got peers %v, want both seeders", got)
	}
	if r.Complete != 2 || r.Incomplete != 1 {
		t.Errorf("counts %d/%d, want 2/1", r.Complete, r.Incomplete)
	}
	mustAnnounce(t, tr, client(4, 500, EventStarted))
	// A seeder is given only leechers, and never itself.
	if got := peerSet(mustAnnounce(t, tr, client(1, 0, EventNone))); len(got) != 2 || !got[client(3, 0, "").Addr] || !got[client(4, 0, "").Addr] {
		t.Errorf("seeder got peers %v, want the two leechers", got)
	}
	// A leecher finishing becomes a seeder, counted once however often it says so.
	mustAnnounce(t, tr, client(3, 0, EventCompleted))
	r = mustAnnounce(t, tr, client(3, 0, EventCompleted))
	if r.Complete != 3 || r.Incomplete != 1 {
		t.Errorf("after completion counts %d/%d, want 3/1", r.Complete, r.Incomplete)
	}
	// numwant limits the list; stopped leaves the swarm and gets no peers.
	a := client(4, 500, EventNone)
	a.NumWant = 1
	if r := mustAnnounce(t, tr, a); len(r.Peers) != 1 {
		t.Errorf("numwant=1 got %d peers", len(r.Peers))
	}
	if r := mustAnnounce(t, tr, client(2, 0, EventStopped)); len(r.Peers) != 0 || r.Complete != 2 {
		t.Errorf("stopped got %+v", r)
	}
	if got := peerSet(mustAnnounce(t, tr, client(4, 500, EventNone))); got[client(2, 0, "").Addr] || len(got) != 2 {
		t.Errorf("after a stop, peers %v", got)
	}
	scrape := tr.Scrape([][20]byte{published})
	if len(scrape) != 1 || scrape[0] != (ScrapeFile{InfoHash: published, Complete: 2, Incomplete: 1, Downloaded: 1}) {
		t.Errorf("Scrape = %+v", scrape)
	}
	snap := tr.Snapshot()
	want := SwarmStats{InfoHash: published, Seeders: 2, Leechers: 1, Completed: 1, Downloaders: 2, Announces: 10,
		CompletedAddrs:  []netip.Addr{client(3, 0, "").Addr.Addr()},
		DownloaderAddrs: []netip.Addr{client(3, 0, "").Addr.Addr(), client(4, 0, "").Addr.Addr()}}
	slices.SortFunc(want.DownloaderAddrs, netip.Addr.Compare)
	if len(snap) != 1 || !reflect.DeepEqual(snap[0], want) {
		t.Errorf("Snapshot = %+v, want %+v", snap, want)
	}
	// The next period starts from zero, the swarm itself stays.
	snap = tr.Snapshot()
	want = SwarmStats{InfoHash: published, Seeders: 2, Leechers: 1, DownloaderAddrs: []netip.Addr{}}
	if len(snap) != 1 || !reflect.DeepEqual(snap[0], want) {
		t.Errorf("second Snapshot = %+v, want %+v", snap, want)
	}
}

func TestTrackerDownloadersByAddress(t *testing.T) {
	tr, _ := newTestTracker()
	// One household restarting its client (new peer id, same address) is one downloader.
	a, b := client(1, 100, EventStarted), client(2, 100, EventStarted)
	b.Addr = a.Addr
	mustAnnounce(t, tr, a)
	mustAnnounce(t, tr, b)
	mustAnnounce(t, tr, client(3, 100, EventNone))    // no start seen: not counted
	mustAnnounce(t, tr, client(4, 0, EventStarted))   // a seeder starting: not a download
	mustAnnounce(t, tr, client(5, 0, EventCompleted)) // finished: counted
	mustAnnounce(t, tr, client(6, 100, EventStopped)) // left: not counted
	if s := tr.Snapshot(); len(s) != 1 || s[0].Downloaders != 2 || s[0].Completed != 1 {
		t.Errorf("Snapshot = %+v, want 2 downloaders and 1 completed", s)
	}
}

func TestTrackerExpiry(t *testing.T) {
	tr, clock := newTestTracker()
	tr.Interval = 10 * time.Minute
	mustAnnounce(t, tr, client(1, 0, EventStarted))
	clock.Add(15 * time.Minute)
	mustAnnounce(t, tr, client(2, 0, EventStarted))
	clock.Add(5*time.Minute - time.Second) // peer 1 last seen 20 min - 1 s ago
	r := mustAnnounce(t, tr, client(3, 100, EventStarted))
	if len(r.Peers) != 2 || r.Complete != 2 || r.Interval != 10*time.Minute {
		t.Errorf("before expiry: %+v", r)
	}
	clock.Add(2 * time.Second) // peer 1 now silent for over twice the interval
	r = mustAnnounce(t, tr, client(3, 100, EventNone))
	if got := peerSet(r); len(got) != 1 || !got[client(2, 0, "").Addr] || r.Complete != 1 {
		t.Errorf("after peer 1 expired: peers %v, complete %d", got, r.Complete)
	}
	if s := tr.Scrape([][20]byte{published}); s[0].Complete != 1 || s[0].Incomplete != 1 {
		t.Errorf("Scrape = %+v", s)
	}
	clock.Add(time.Hour)
	if s := tr.Snapshot(); len(s) != 1 || s[0].Seeders != 0 || s[0].Leechers != 0 {
		t.Errorf("Snapshot after everyone expired = %+v", s)
	}
	// A swarm with no peers and no completions is then forgotten.
	if s := tr.Snapshot(); len(s) != 0 {
		t.Errorf("Snapshot of an idle tracker = %+v", s)
	}
}

// TestTrackerConcurrent is for the race detector: announces, scrapes and snapshots at once.
func TestTrackerConcurrent(t *testing.T) {
	tr, _ := newTestTracker()
	var wg sync.WaitGroup
	var total sync.Map
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				a := client(g*10+i%10, int64(i%3), []Event{EventStarted, EventNone, EventCompleted, EventStopped}[i%4])
				if _, err := tr.Announce(a); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					tr.Scrape([][20]byte{published})
					for _, s := range tr.Snapshot() {
						total.Store(fmt.Sprint(g, i), s.Announces)
					}
				}
			}
		})
	}
	wg.Wait()
	sum := int64(0)
	for _, s := range tr.Snapshot() {
		sum += s.Announces
	}
	total.Range(func(_, v any) bool { sum += v.(int64); return true })
	if sum != 8*200 {
		t.Errorf("announces counted %d, want %d", sum, 8*200)
	}
}

func TestAnnounceBody(t *testing.T) {
	tr, _ := newTestTracker()
	remote := net.ParseIP("198.51.100.7")
	q := func(ih [20]byte) string {
		return "info_hash=" + escapeAll(string(ih[:])) + "&peer_id=" + escapeAll(string(testPeerID[:])) +
			"&port=6881&uploaded=16384&downloaded=0&left=0&event=started"
	}
	tests := []struct {
		name, query, failure string
	}{
		{"OK", q(published), ""},
		{"ErrNotPublished", q(unpublished), "not published"},
		{"ErrPort", strings.Replace(q(published), "port=6881", "port=0", 1), "port"},
	}
	for _, tt := range tests {
		var r httpTracker.HttpResponse
		b := tr.AnnounceBody(tt.query, remote, false)
		checkBencode(t, b)
		if err := bencode.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.failure == "" && r.FailureReason != "" || !strings.Contains(r.FailureReason, tt.failure) {
			t.Errorf("%s: failure reason %q, want %q", tt.name, r.FailureReason, tt.failure)
		}
	}
	for query, want := range map[string]string{
		"info_hash=" + escapeAll(string(published[:])): "d8:completei1e10:downloadedi0e10:incompletei0eee",
		"info_hash=abc": "failure reason",
	} {
		if b := string(tr.ScrapeBody(query)); !strings.Contains(b, want) {
			t.Errorf("ScrapeBody(%q) = %q, want it to contain %q", query, b, want)
		}
	}
}

func TestTrackerLeavesNodesOutOfDownloads(t *testing.T) {
	tr, _ := newTestTracker()
	node := func(n int, left int64, event Event) Announce {
		a := client(n, left, event)
		copy(a.PeerID[:], NodePeerIDPrefix)
		return a
	}
	// A node fetching a reassigned torrent, then finishing, and a fan doing the same.
	mustAnnounce(t, tr, node(1, 100, EventStarted))
	mustAnnounce(t, tr, client(2, 100, EventStarted))
	if s := tr.Snapshot(); len(s) != 1 || s[0].Leechers != 2 || s[0].Downloaders != 1 {
		t.Errorf("Snapshot = %+v, want 2 leechers and 1 downloader", s)
	}
	mustAnnounce(t, tr, node(1, 0, EventCompleted))
	mustAnnounce(t, tr, client(2, 0, EventCompleted))
	s := tr.Snapshot()
	if len(s) != 1 || s[0].Seeders != 2 || s[0].Completed != 1 || s[0].Downloaders != 1 {
		t.Errorf("Snapshot = %+v, want 2 seeders, 1 completed, 1 downloader", s)
	}
	if sc := tr.Scrape([][20]byte{published}); sc[0].Downloaded != 1 {
		t.Errorf("scrape downloaded = %d, want 1", sc[0].Downloaded)
	}
}

// Fans whose client never sends event=completed still count, once each: one that finished from
// the web seed before its first announce, and one that announced as a leecher and stopped with
// nothing left. A seeder starting with nothing downloaded in its session is not a download.
func TestTrackerCountsFinishedWithoutCompletedEvent(t *testing.T) {
	tr, _ := newTestTracker()
	with := func(a Announce, downloaded int64) Announce { a.Downloaded = downloaded; return a }
	mustAnnounce(t, tr, with(client(1, 0, EventStarted), 100)) // finished from the web seed first
	mustAnnounce(t, tr, with(client(1, 0, EventNone), 100))    // its next announce
	mustAnnounce(t, tr, with(client(1, 0, EventStopped), 100))
	mustAnnounce(t, tr, with(client(2, 100, EventStarted), 0))
	mustAnnounce(t, tr, with(client(2, 0, EventStopped), 100)) // stopped at once, no completed
	mustAnnounce(t, tr, with(client(3, 100, EventStarted), 0))
	mustAnnounce(t, tr, with(client(3, 0, EventCompleted), 100))
	mustAnnounce(t, tr, with(client(3, 0, EventNone), 100))
	mustAnnounce(t, tr, with(client(4, 0, EventStarted), 0)) // a seeder restarting
	s := tr.Snapshot()
	if len(s) != 1 || s[0].Completed != 3 || s[0].Downloaders != 3 || s[0].Seeders != 2 {
		t.Errorf("Snapshot = %+v, want 3 completed, 3 downloaders, 2 seeders", s)
	}
}

// A client restarting on the same address with a new peer id (as a seedbox node does) replaces
// its entry: one seeder, not two until the old entry expires. A download it finishes again in its
// new session the same day does not count again (one address, one download a day).
func TestTrackerPeerIsItsAddress(t *testing.T) {
	tr, _ := newTestTracker()
	first := client(1, 0, EventStarted)
	mustAnnounce(t, tr, first)
	restarted := client(2, 0, EventStarted)
	restarted.Addr = first.Addr
	r := mustAnnounce(t, tr, restarted)
	if r.Complete != 1 || r.Incomplete != 0 || len(r.Peers) != 0 {
		t.Errorf("after a restart on the same address: %d seeders, %d leechers, peers %v; want 1, 0, none", r.Complete, r.Incomplete, r.Peers)
	}
	fan := client(3, 100, EventStarted)
	r = mustAnnounce(t, tr, fan)
	if len(r.Peers) != 1 || r.Peers[0].ID != restarted.PeerID {
		t.Errorf("a fan is given %v, want the restarted client only", r.Peers)
	}
	done := client(3, 0, EventCompleted)
	mustAnnounce(t, tr, done)
	again := client(4, 100, EventStarted) // the fan's client restarted and fetches it again
	again.Addr = fan.Addr
	mustAnnounce(t, tr, again)
	again.Event, again.Left = EventCompleted, 0
	mustAnnounce(t, tr, again)
	if s := tr.Snapshot(); len(s) != 1 || s[0].Seeders != 2 || s[0].Completed != 1 {
		t.Errorf("Snapshot = %+v, want 2 seeders and 1 completed", s)
	}
}

// A seedbox node marked down leaves the swarm at once: fans are not sent its address and the
// counts leave it out. Marked up again, it counts once it announces.
func TestTrackerForgetsDownNodes(t *testing.T) {
	tr, _ := newTestTracker()
	node := client(1, 0, EventStarted)
	copy(node.PeerID[:], NodePeerIDPrefix)
	mustAnnounce(t, tr, node)
	mustAnnounce(t, tr, client(2, 0, EventStarted))
	tr.SetDownPeers([][20]byte{node.PeerID})
	r := mustAnnounce(t, tr, client(3, 100, EventStarted))
	if r.Complete != 1 || len(r.Peers) != 1 || r.Peers[0].Addr == node.Addr {
		t.Errorf("with the node down: %d seeders, peers %v; want 1 seeder, not the node", r.Complete, r.Peers)
	}
	tr.SetDownPeers(nil)
	node.Event = EventNone
	mustAnnounce(t, tr, node)
	if sc := tr.Scrape([][20]byte{published}); sc[0].Complete != 2 {
		t.Errorf("the node back: %d seeders, want 2", sc[0].Complete)
	}
}

// One address announcing event=completed from 500 ports with 500 peer ids is one download and
// one downloader that day, in the snapshot and in scrapes; the next day it may count again.
func TestTrackerCountsAnAddressOnceADay(t *testing.T) {
	tr, clock := newTestTracker()
	tr.AnnouncesPerMinute = -1
	for i := range 500 {
		a := client(i, 0, EventCompleted)
		a.Addr = netip.AddrPortFrom(netip.MustParseAddr("198.51.100.77"), uint16(10000+i))
		mustAnnounce(t, tr, a)
	}
	// An IPv6 host may take any address of its /64.
	for i := range 50 {
		a := client(1000+i, 0, EventCompleted)
		a.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, byte(i + 1)}), 6881)
		mustAnnounce(t, tr, a)
	}
	if sc := tr.Scrape([][20]byte{published}); sc[0].Downloaded != 2 {
		t.Errorf("scrape downloaded = %d, want 2", sc[0].Downloaded)
	}
	snap := tr.Snapshot()
	if len(snap) != 1 || snap[0].Completed != 2 || snap[0].Downloaders != 2 || len(snap[0].CompletedAddrs) != 2 {
		t.Fatalf("snapshot = %+v, want 2 completions and 2 downloaders", snap)
	}
	// Later the same day, from yet another port: not again.
	clock.Add(3 * time.Hour)
	again := client(600, 0, EventCompleted)
	again.Addr = netip.AddrPortFrom(netip.MustParseAddr("198.51.100.77"), 9999)
	mustAnnounce(t, tr, again)
	if snap := tr.Snapshot(); snap[0].Completed != 0 || len(snap[0].CompletedAddrs) != 0 {
		t.Errorf("same day again: %+v, want no completion", snap[0])
	}
	clock.Add(24 * time.Hour)
	again.Addr = netip.AddrPortFrom(again.Addr.Addr(), 9998)
	mustAnnounce(t, tr, again)
	if snap := tr.Snapshot(); snap[0].Completed != 1 {
		t.Errorf("the next day: %+v, want one completion", snap[0])
	}
}

// Announces are limited per address: the limit's worth at once, then a bencoded failure
// reason, while other addresses go on; a minute later the address may announce again.
func TestTrackerLimitsAnnouncesPerAddress(t *testing.T) {
	tr, clock := newTestTracker()
	tr.AnnouncesPerMinute = 10
	flood := func(i int) Announce {
		a := client(i, 100, EventStarted)
		a.Addr = netip.AddrPortFrom(netip.MustParseAddr("198.51.100.88"), uint16(20000+i))
		return a
	}
	for i := range 10 {
		mustAnnounce(t, tr, flood(i))
	}
	if _, err := tr.Announce(flood(10)); !errors.Is(err, ErrRateLimited) || !strings.Contains(FailureReason(err), "too many announces") {
		t.Fatalf("11th announce in a minute: %v, want ErrRateLimited", err)
	}
	q := "info_hash=" + escapeAll(string(published[:])) + "&peer_id=" + escapeAll(string(testPeerID[:])) +
		"&port=6881&uploaded=0&downloaded=0&left=5&event=started"
	var r httpTracker.HttpResponse
	if err := bencode.Unmarshal(tr.AnnounceBody(q, net.ParseIP("198.51.100.88"), false), &r); err != nil || !strings.Contains(r.FailureReason, "too many announces") {
		t.Fatalf("refused announce body: %+v, %v", r, err)
	}
	mustAnnounce(t, tr, client(1, 100, EventStarted)) // another address
	clock.Add(6 * time.Second)                        // one more announce's worth
	mustAnnounce(t, tr, flood(11))
	if _, err := tr.Announce(flood(12)); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("after one refill: %v, want ErrRateLimited", err)
	}
	clock.Add(time.Minute)
	mustAnnounce(t, tr, flood(13))
	if snap := tr.Snapshot(); snap[0].Announces != 13 { // 10 + another address + 2
		t.Errorf("announces counted %d, want 13 (refused ones left out)", snap[0].Announces)
	}

	tr, _ = newTestTracker()
	tr.AnnouncesPerMinute = -1
	for i := range 1000 {
		mustAnnounce(t, tr, flood(i))
	}
}

// A client started from a magnet has no metadata, so it announces left=0 with nothing
// downloaded or uploaded (aria2c does): it is a leecher that needs peers, seeders included, and
// is not counted as a seeder until it shows it holds the data.
func TestTrackerMagnetClientWithoutMetadataIsALeecher(t *testing.T) {
	tr, _ := newTestTracker()
	mustAnnounce(t, tr, client(1, 0, EventStarted)) // a seeder that has uploaded
	magnet := client(2, 0, EventStarted)
	magnet.Uploaded = 0
	r := mustAnnounce(t, tr, magnet)
	if got := peerSet(r); len(got) != 1 || !got[client(1, 0, "").Addr] {
		t.Errorf("magnet client got peers %v, want the seeder", got)
	}
	if r.Complete != 1 || r.Incomplete != 1 {
		t.Errorf("counts %d/%d with the magnet client, want 1 seeder and 1 leecher", r.Complete, r.Incomplete)
	}
	// With the metadata it announces what it lacks, then finishes: one download, now a seeder.
	magnet.Event, magnet.Left = EventNone, 1000
	mustAnnounce(t, tr, magnet)
	magnet.Event, magnet.Left, magnet.Downloaded = EventCompleted, 0, 1000
	if r := mustAnnounce(t, tr, magnet); r.Complete != 2 || r.Incomplete != 0 {
		t.Errorf("after it finished: counts %d/%d, want 2/0", r.Complete, r.Incomplete)
	}
	if s := tr.Snapshot(); len(s) != 1 || s[0].Completed != 1 {
		t.Errorf("Snapshot = %+v, want 1 completion", s)
	}
	// Once a seeder in this session, it stays one with nothing more transferred.
	magnet.Event, magnet.Downloaded = EventNone, 0
	if r := mustAnnounce(t, tr, magnet); r.Complete != 2 {
		t.Errorf("a seeder re-announcing: %d seeders, want 2", r.Complete)
	}
	// Seedbox nodes are seeders from their first announce.
	node := client(3, 0, EventStarted)
	node.Uploaded = 0
	copy(node.PeerID[:], NodePeerIDPrefix)
	if r := mustAnnounce(t, tr, node); r.Complete != 3 {
		t.Errorf("a node's first announce: %d seeders, want 3", r.Complete)
	}
	// A fan restarting a client on complete files nobody downloads from is a leecher for one
	// interval: its second announce with nothing left makes it a seeder.
	idle := client(4, 0, EventStarted)
	idle.Uploaded = 0
	if r := mustAnnounce(t, tr, idle); r.Complete != 3 || r.Incomplete != 1 || r.Interval != unprovenInterval {
		t.Errorf("an idle client's first announce: counts %d/%d, interval %s, want 3/1 asked back in %s", r.Complete, r.Incomplete, r.Interval, unprovenInterval)
	}
	idle.Event = EventNone
	if r := mustAnnounce(t, tr, idle); r.Complete != 4 || r.Incomplete != 0 || r.Interval != DefaultInterval {
		t.Errorf("an idle client's second announce: counts %d/%d, interval %s, want 4/0 and the usual interval", r.Complete, r.Incomplete, r.Interval)
	}
	// A restart (a new peer id at the address) starts over.
	idle.PeerID[19]++
	idle.Event = EventStarted
	if r := mustAnnounce(t, tr, idle); r.Complete != 3 || r.Incomplete != 1 {
		t.Errorf("after a restart: counts %d/%d, want 3/1", r.Complete, r.Incomplete)
	}
}
