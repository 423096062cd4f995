package seeding

import (
	"context"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"
)

// Bytes served add up what each node's counter grew by: a node restart (a new session) or a
// torrent added again (a counter that went down) starts from zero without losing what was
// counted, and what a node served stays counted after the torrent leaves it.
func TestBytesServedSurviveRestarts(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	a, b := f.node("a", 1<<30), f.node("b", 1<<30)
	rec := f.torrent(1000)
	report := func(node int64, session string, uploaded int64) {
		t.Helper()
		if _, err := f.fleet.Heartbeat(ctx, node, f.secret(node), Heartbeat{Session: session, Torrents: []Report{
			{InfoHash: hex.EncodeToString(rec.InfoHash), State: StateSeeding, Uploaded: uploaded}}}); err != nil {
			t.Fatal(err)
		}
	}
	served := func() int64 {
		t.Helper()
		tr, err := Traffic(ctx, f.db, []int64{rec.ID}, time.Unix(0, 0), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tr[rec.ID].BytesServed
	}
	steps := []struct {
		node     int64
		session  string
		uploaded int64
		want     int64
	}{
		{a, "a1", 100, 100},
		{a, "a1", 250, 250},
		{a, "a1", 250, 250}, // nothing new
		{b, "b1", 50, 300},
		{a, "a2", 30, 330}, // a restarted
		{a, "a2", 10, 340}, // the torrent was added again on a
		{a, "a2", 15, 345},
		{b, "b1", 60, 355},
	}
	for i, s := range steps {
		report(s.node, s.session, s.uploaded)
		if got := served(); got != s.want {
			t.Fatalf("step %d: %d bytes served, want %d", i, got, s.want)
		}
	}
	if _, err := f.db.Exec(ctx, `DELETE FROM assignments WHERE torrent_id = $1`, rec.ID); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != 355 {
		t.Fatalf("after the torrent left the nodes: %d bytes served, want 355", got)
	}
	if _, err := f.fleet.Heartbeat(ctx, a, f.secret(a), Heartbeat{Session: string(make([]byte, 65))}); err == nil {
		t.Fatal("a 65-character session was accepted")
	}
}

// A downloader is counted once per torrent for good, in the bucket it was first seen in, however
// many periods it announces in; unknown torrents are left out.
func TestRecordStatsCountsDownloadersOnce(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	f.node("a", 1<<30)
	f.node("b", 1<<30)
	rec, other := f.torrent(1000), f.torrent(1000)
	var ih, oh, unknown [20]byte
	copy(ih[:], rec.InfoHash)
	copy(oh[:], other.InfoHash)
	unknown[0] = 0xff
	addr := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(RecordStats(ctx, f.db, t0, []SwarmStats{
		{InfoHash: ih, Leechers: 2, Downloaders: 2, DownloaderAddrs: []netip.Addr{addr("192.0.2.1"), addr("2001:db8::1")}},
		{InfoHash: oh, Leechers: 1, Downloaders: 1, DownloaderAddrs: []netip.Addr{addr("192.0.2.1")}},
		{InfoHash: unknown, Leechers: 1, Downloaders: 1, DownloaderAddrs: []netip.Addr{addr("192.0.2.9")}},
	}))
	must(RecordStats(ctx, f.db, t0.Add(10*time.Minute), []SwarmStats{
		{InfoHash: ih, Leechers: 2, Downloaders: 2, DownloaderAddrs: []netip.Addr{addr("2001:db8::1"), addr("192.0.2.2")}},
	}))
	must(RecordStats(ctx, f.db, t0.Add(11*time.Minute), []SwarmStats{ // the same bucket again
		{InfoHash: ih, Completed: 1, CompletedAddrs: []netip.Addr{addr("192.0.2.1")}, Downloaders: 1, DownloaderAddrs: []netip.Addr{addr("192.0.2.1")}},
	}))
	var total, others int64
	must(f.db.QueryRow(ctx, `SELECT (SELECT downloaders FROM torrents WHERE id = $1), (SELECT downloaders FROM torrents WHERE id = $2)`,
		rec.ID, other.ID).Scan(&total, &others))
	if total != 3 || others != 1 {
		t.Fatalf("downloaders %d and %d, want 3 and 1", total, others)
	}
	rows, err := f.db.Query(ctx, `SELECT downloaders, completed FROM swarm_stats WHERE torrent_id = $1 ORDER BY bucket`, rec.ID)
	must(err)
	var got [][2]int64
	for rows.Next() {
		var d, c int64
		must(rows.Scan(&d, &c))
		got = append(got, [2]int64{d, c})
	}
	must(rows.Err())
	if len(got) != 2 || got[0] != [2]int64{2, 0} || got[1] != [2]int64{1, 1} {
		t.Fatalf("buckets (downloaders, completed) = %v, want [2 0] then [1 1]", got)
	}
	var stored int
	must(f.db.QueryRow(ctx, `SELECT count(*) FROM torrent_downloaders WHERE peer = $1 OR peer = $2`,
		[]byte(addr("192.0.2.1").AsSlice()), []byte("192.0.2.1")).Scan(&stored))
	if stored != 0 {
		t.Fatal("an address is stored as it is")
	}
}

// A heartbeat adds to torrent_served, which takes a key-share lock on each torrent it names, in
// the order the node reported them. Recording stats at the same time must not deadlock with it.
func TestRecordStatsBesideAHeartbeat(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	node := f.node("a", 1<<30)
	first, second := f.torrent(1000), f.torrent(1000)
	var h1, h2 [20]byte
	copy(h1[:], first.InfoHash)
	copy(h2[:], second.InfoHash)
	heartbeat, err := f.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer heartbeat.Rollback(ctx)
	served := func(torrent int64) error {
		_, err := heartbeat.Exec(ctx, `INSERT INTO torrent_served (torrent_id, node_id, bytes) VALUES ($1, $2, 1)`, torrent, node)
		return err
	}
	if err := served(second.ID); err != nil {
		t.Fatal(err)
	}
	recorded := make(chan error, 1)
	go func() {
		recorded <- RecordStats(ctx, f.db, time.Now(), []SwarmStats{
			{InfoHash: h1, Completed: 1, CompletedAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
			{InfoHash: h2, Completed: 1, CompletedAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		})
	}()
	// Give RecordStats the time to take what it can, then let the heartbeat go on to the other torrent.
	select {
	case err := <-recorded:
		recorded <- err
	case <-time.After(300 * time.Millisecond):
	}
	if err := served(first.ID); err != nil {
		t.Fatalf("heartbeat beside RecordStats: %v", err)
	}
	if err := heartbeat.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-recorded; err != nil {
		t.Fatalf("RecordStats beside a heartbeat: %v", err)
	}
	var completed int64
	f.db.QueryRow(ctx, `SELECT sum(completed) FROM torrents WHERE id IN ($1, $2)`, first.ID, second.ID).Scan(&completed)
	if completed != 2 {
		t.Errorf("completed = %d, want 2", completed)
	}
}

// Completions are counted once per address, torrent and day, whichever process and period
// reports them; the next day counts again, and days before yesterday are forgotten.
func TestRecordStatsCountsCompletionsOnceADay(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	rec := f.torrent(1000)
	var ih [20]byte
	copy(ih[:], rec.InfoHash)
	one, two := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	record := func(at time.Time, addrs ...netip.Addr) {
		t.Helper()
		if err := RecordStats(ctx, f.db, at, []SwarmStats{{InfoHash: ih, Completed: int64(len(addrs)), CompletedAddrs: addrs}}); err != nil {
			t.Fatal(err)
		}
	}
	completed := func() (n int64) {
		t.Helper()
		if err := f.db.QueryRow(ctx, `SELECT completed FROM torrents WHERE id = $1`, rec.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	record(t0, one)
	record(t0.Add(time.Minute), one, two) // another process, or the next period
	record(t0.Add(13*time.Hour), one)     // 23:00 the same day
	if got := completed(); got != 2 {
		t.Fatalf("completed = %d the first day, want 2", got)
	}
	record(t0.Add(24*time.Hour), one)
	if got := completed(); got != 3 {
		t.Fatalf("completed = %d after the next day, want 3", got)
	}
	var sum int64
	f.db.QueryRow(ctx, `SELECT sum(completed) FROM swarm_stats WHERE torrent_id = $1`, rec.ID).Scan(&sum)
	if sum != 3 {
		t.Errorf("buckets hold %d completions, want 3", sum)
	}
	record(t0.Add(72*time.Hour), two)
	var kept int
	f.db.QueryRow(ctx, `SELECT count(*) FROM torrent_completions WHERE torrent_id = $1 AND day < $2::date`, rec.ID, t0.Add(48*time.Hour)).Scan(&kept)
	if kept != 0 {
		t.Errorf("%d completion keys older than yesterday kept", kept)
	}
}
