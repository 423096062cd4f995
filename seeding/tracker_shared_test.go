package seeding

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// Two serve processes behind a load balancer answer from the same swarm: a client's first
// announce to one is answered with the peers that announced to the other; peers that stop or
// expire on one leave the other's answers after a Share; a scrape counts every process's peers
// and the completions all of them recorded.
func TestTrackersShareSwarms(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	f.node("a", 1<<30)
	f.node("b", 1<<30)
	rec := f.torrent(1000)
	var ih [20]byte
	copy(ih[:], rec.InfoHash)
	clock := &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	newTracker := func() *Tracker {
		tr := &Tracker{Allowed: func(h [20]byte) bool { return h == ih }, now: clock.Now, Interval: 10 * time.Minute}
		tr.ShareThrough(f.db)
		return tr
	}
	a, b := newTracker(), newTracker()
	peer := func(n int, left int64, event Event) Announce {
		c := client(n, left, event)
		c.InfoHash = ih
		return c
	}
	share := func(trs ...*Tracker) {
		t.Helper()
		for _, tr := range trs {
			if err := tr.Share(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	addrs := func(r AnnounceResponse) map[netip.AddrPort]bool {
		m := map[netip.AddrPort]bool{}
		for _, p := range r.Peers {
			m[p.Addr] = true
		}
		return m
	}

	mustAnnounce(t, a, peer(1, 0, EventStarted))   // a seeder on A
	mustAnnounce(t, a, peer(2, 500, EventStarted)) // a leecher on A
	share(a)
	// A scrape of a swarm B has never seen reads A's peers at once.
	if s := b.Scrape([][20]byte{ih}); len(s) != 1 || s[0].Complete != 1 || s[0].Incomplete != 1 {
		t.Fatalf("B's first scrape %+v, want A's seeder and leecher", s)
	}
	// B has never seen the swarm: the first announce to it reads A's peers at once.
	r := mustAnnounce(t, b, peer(3, 500, EventStarted))
	if got := addrs(r); len(got) != 2 || !got[peer(1, 0, "").Addr] || !got[peer(2, 0, "").Addr] || r.Complete != 1 || r.Incomplete != 2 {
		t.Fatalf("first announce to B: peers %v, %d seeders, %d leechers; want A's two peers, 1 and 2", got, r.Complete, r.Incomplete)
	}
	// A's seeder gets B's leecher once B has shared.
	share(b, a)
	if got := addrs(mustAnnounce(t, a, peer(1, 0, EventNone))); len(got) != 2 || !got[peer(3, 0, "").Addr] || !got[peer(2, 0, "").Addr] {
		t.Fatalf("A's seeder got %v, want leechers 2 (on A) and 3 (on B)", got)
	}
	// The leecher on A stops; B stops listing it once both have shared.
	mustAnnounce(t, a, peer(2, 500, EventStopped))
	share(a, b)
	r = mustAnnounce(t, b, peer(3, 500, EventNone))
	if got := addrs(r); len(got) != 1 || !got[peer(1, 0, "").Addr] || r.Complete != 1 || r.Incomplete != 1 {
		t.Fatalf("after 2 stopped: B answers %v, %d/%d; want only the seeder, 1 seeder and 1 leecher", got, r.Complete, r.Incomplete)
	}
	// A peer that moves from A to B is one peer, not two.
	clock.Add(time.Minute)
	mustAnnounce(t, b, peer(1, 0, EventNone))
	share(b, a)
	if s := b.Scrape([][20]byte{ih}); len(s) != 1 || s[0].Complete != 1 || s[0].Incomplete != 1 {
		t.Fatalf("B's scrape %+v, want 1 seeder and 1 leecher", s)
	}
	if s := a.Scrape([][20]byte{ih}); len(s) != 1 || s[0].Complete != 1 || s[0].Incomplete != 1 {
		t.Fatalf("A's scrape %+v, want 1 seeder and 1 leecher", s)
	}
	// The seeder restarts with a new peer id and announces to A: still one seeder on both.
	restarted := peer(7, 0, EventStarted)
	restarted.Addr = peer(1, 0, "").Addr
	mustAnnounce(t, a, restarted)
	share(a, b)
	for name, tr := range map[string]*Tracker{"A": a, "B": b} {
		if s := tr.Scrape([][20]byte{ih}); len(s) != 1 || s[0].Complete != 1 || s[0].Incomplete != 1 {
			t.Fatalf("%s's scrape after the seeder restarted %+v, want 1 seeder and 1 leecher", name, s)
		}
	}
	// A seedbox node that announced to A is marked down: B leaves it out at once, even though A,
	// not told yet, still shares it; then A forgets it too.
	node := peer(8, 0, EventStarted)
	copy(node.PeerID[:], NodePeerIDPrefix)
	mustAnnounce(t, a, node)
	share(a, b)
	if s := b.Scrape([][20]byte{ih}); s[0].Complete != 2 {
		t.Fatalf("B's scrape with the node %+v, want 2 seeders", s)
	}
	b.SetDownPeers([][20]byte{node.PeerID})
	share(a, b)
	if s := b.Scrape([][20]byte{ih}); s[0].Complete != 1 {
		t.Fatalf("B's scrape with the node down %+v, want 1 seeder", s)
	}
	a.SetDownPeers([][20]byte{node.PeerID})
	share(a, b)
	if s := a.Scrape([][20]byte{ih}); s[0].Complete != 1 {
		t.Fatalf("A's scrape with the node down %+v, want 1 seeder", s)
	}
	// Completions recorded by A's snapshot show in B's scrape.
	mustAnnounce(t, a, peer(4, 0, EventCompleted))
	if err := RecordStats(ctx, f.db, clock.Now(), a.Snapshot()); err != nil {
		t.Fatal(err)
	}
	share(a, b)
	if s := b.Scrape([][20]byte{ih}); s[0].Downloaded != 1 || s[0].Complete != 2 {
		t.Fatalf("B's scrape %+v, want 1 download recorded by A and 2 seeders", s)
	}
	// Peers that stop announcing expire everywhere: A's seeder 4 and B's peers after two intervals.
	clock.Add(21 * time.Minute)
	mustAnnounce(t, a, peer(5, 500, EventStarted))
	share(a, b)
	if got := addrs(mustAnnounce(t, b, peer(6, 500, EventStarted))); len(got) != 1 || !got[peer(5, 0, "").Addr] {
		t.Fatalf("after expiry B answers %v, want only the new leecher 5", got)
	}
	var rows int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM tracker_peers`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d shared peer rows, want 1 (peer 5; 6 is not shared yet, the rest expired)", rows)
	}
}
