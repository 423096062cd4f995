package seeding

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// nodeIn enrols a node in a zone.
func (f *fleetFixture) nodeIn(name, zone string, capacity int64) int64 {
	f.t.Helper()
	return f.enrol(NodeInfo{Name: name, ListenAddr: "127.0.0.1:6881",
		PublicAddr: "127.0.0.1:" + fmt.Sprint(7000+len(name)), CapacityBytes: capacity, Zone: zone})
}

// pairCounts is how many torrents each pair of nodes both hold (not dropping), by "a+b" names.
func (f *fleetFixture) pairCounts() map[string]int {
	f.t.Helper()
	rows, _ := f.db.Query(context.Background(), `
		SELECT na.name || '+' || nb.name, count(*) FROM assignments a JOIN assignments b ON b.torrent_id = a.torrent_id AND b.node_id > a.node_id
		JOIN nodes na ON na.id = a.node_id JOIN nodes nb ON nb.id = b.node_id
		WHERE a.state <> 'dropping' AND b.state <> 'dropping' GROUP BY 1`)
	out := map[string]int{}
	var pair string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&pair, &n}, func() error { out[pair] = n; return nil }); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// held is how many replicas (not dropping) each node holds, by name.
func (f *fleetFixture) held() map[string]int {
	f.t.Helper()
	rows, _ := f.db.Query(context.Background(), `SELECT n.name, count(a.torrent_id) FROM nodes n
		LEFT JOIN assignments a ON a.node_id = n.id AND a.state <> 'dropping' GROUP BY n.name`)
	out := map[string]int{}
	var name string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil }); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// With 6 equal nodes and 60 torrents of 2 replicas, an even spread gives each of the 15 pairs
// of nodes 60·2·1/(6·5) = 4 torrents in common: killing any two nodes loses that many torrents'
// every replica. The placement rule keeps every pair within twice that, for torrents of one size
// and of mixed sizes, and each node within two replicas of an even share.
func TestPlacementSpreadsReplicas(t *testing.T) {
	t.Parallel()
	for _, sizes := range []string{"equal", "mixed"} {
		t.Run(sizes, func(t *testing.T) {
			t.Parallel()
			f := newFleetFixture(t)
			for i := 1; i <= 6; i++ {
				f.node(fmt.Sprintf("n%d", i), 1<<30)
			}
			var total int64
			for i := range 60 {
				length := int64(1 << 20)
				if sizes == "mixed" {
					length = int64(1<<20) * int64(1+(i*7)%5)
				}
				total += 2 * length
				f.torrent(length)
			}
			const even = 60 * 2 * 1 / (6 * 5)
			pairs := f.pairCounts()
			worst := 0
			for pair, n := range pairs {
				if n > 2*even {
					t.Errorf("nodes %s share %d torrents, more than twice the even share of %d", pair, n, even)
				}
				worst = max(worst, n)
			}
			if len(pairs) != 15 {
				t.Errorf("%d of the 15 pairs of nodes share a torrent, want all: %v", len(pairs), pairs)
			}
			t.Logf("%s sizes: most torrents two nodes share %d (even share %d); pairs %v", sizes, worst, even, pairs)
			if sizes == "equal" {
				for name, n := range f.held() {
					if n < 20-2 || n > 20+2 {
						t.Errorf("node %s holds %d replicas, want 20±2 (120 over 6 nodes)", name, n)
					}
				}
				return
			}
			var most, least int64 = 0, total
			rows, _ := f.db.Query(context.Background(), `SELECT sum(t.length)::bigint FROM assignments a JOIN torrents t ON t.id = a.torrent_id GROUP BY a.node_id`)
			bytes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bytes {
				most, least = max(most, b), min(least, b)
			}
			if len(bytes) != 6 || most-least > 2*5<<20 {
				t.Errorf("bytes per node from %d to %d over %d nodes, want all 6 within two of the largest torrent (10 MiB)", least, most, len(bytes))
			}
		})
	}
}

// Two nodes of one zone never hold both replicas of a torrent while another zone has room, when
// placing new torrents nor when replacing the replicas of a node that went down; once a zone has
// no room left, replicas go where there is room.
func TestPlacementHonoursZones(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	zoneOf := map[string]string{}
	var ids []int64
	for i := 1; i <= 6; i++ {
		name, zone := fmt.Sprintf("n%d", i), fmt.Sprintf("zone-%c", 'a'+(i-1)/2)
		zoneOf[name] = zone
		ids = append(ids, f.nodeIn(name, zone, 1<<30))
	}
	var recs []Record
	for range 60 {
		recs = append(recs, f.torrent(1<<20))
	}
	check := func(when string) {
		t.Helper()
		for _, rec := range recs {
			rows, _ := f.db.Query(context.Background(), `SELECT n.name FROM assignments a JOIN nodes n ON n.id = a.node_id
				WHERE a.torrent_id = $1 AND a.state <> 'dropping' AND n.status = 'up'`, rec.ID)
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 2 {
				t.Fatalf("%s: torrent %d on up nodes %v, want 2", when, rec.ID, names)
			}
			if zoneOf[names[0]] == zoneOf[names[1]] {
				t.Errorf("%s: torrent %d has both replicas in %s (%v)", when, rec.ID, zoneOf[names[0]], names)
			}
		}
	}
	check("placed")
	for _, id := range ids {
		f.heartbeat(id)
	}
	f.silence(ids[0]) // n1, of zone-a: its torrents get a replica outside the zone of their other one
	f.reconcile()
	check("after n1 went down")

	// A zone of one node with little room: once it is full, its torrents' replicas share zones.
	g := newFleetFixture(t)
	g.nodeIn("small", "zone-x", 2<<20)
	g.nodeIn("big1", "zone-y", 1<<30)
	g.nodeIn("big2", "zone-y", 1<<30)
	for range 4 {
		rec := g.torrent(1 << 20)
		if got := g.holders(rec.ID, ""); len(got) != 2 {
			t.Errorf("torrent on %v, want two nodes even once zone-x is full", got)
		}
	}
	if got := g.held(); got["small"] != 2 || got["big1"]+got["big2"] != 6 {
		t.Errorf("replicas per node %v, want small full (2) and 6 on the zone-y nodes", got)
	}
}

// Small nodes take their share: placement goes by fraction of capacity, not free bytes (which
// would leave the small nodes empty until the others had less than 10 MiB free).
func TestPlacementUsesSmallNodes(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	f.node("big", 100<<20)
	f.node("medium", 50<<20)
	f.node("small1", 10<<20)
	f.node("small2", 10<<20)
	for range 40 {
		f.torrent(1 << 20)
	}
	// 80 replicas: big takes one of each torrent (40, it cannot take both), and the other 40 go
	// by capacity over medium, small1 and small2 (50:10:10), each near 57% full.
	got := f.held()
	for name, share := range map[string]int{"big": 40, "medium": 28, "small1": 6, "small2": 6} {
		if got[name] < share-2 || got[name] > share+2 {
			t.Errorf("%s holds %d replicas, want %d±2 (its share by capacity); all: %v", name, got[name], share, got)
		}
	}
}

// A node marked down keeps its assignments; they stop counting and its torrents get replicas
// elsewhere. When it returns it keeps its copies and verifies them again; once they count, the
// replicas made in its place are the surplus that goes, and nothing is dropped from a torrent
// below its target, nor while another torrent is short.
func TestReturningNodeKeepsVerifiedCopies(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	n1, n2 := f.node("n1", 1<<30), f.node("n2", 1<<30)
	a, b := f.torrent(1<<20), f.torrent(1<<20)
	f.heartbeat(n1, seedingReport(a), seedingReport(b))
	f.heartbeat(n2, seedingReport(a), seedingReport(b))
	n3 := f.node("n3", 1<<30)

	f.silence(n1)
	f.reconcile()
	f.heartbeat(n2, seedingReport(a), seedingReport(b))
	for _, rec := range []Record{a, b} {
		if got := f.holders(rec.ID, ""); strings.Join(got, ",") != "n1,n2,n3" {
			t.Fatalf("holders after n1 went down: %v, want n1 (kept while down), n2, n3 (in its place)", got)
		}
	}
	if ov, _ := f.fleet.Overview(ctx); len(ov.UnderReplicated) != 2 {
		t.Fatalf("under-replicated while n1 is down: %+v, want both torrents (a down node's copy does not count)", ov.UnderReplicated)
	}
	// n3 finishes a; b is still fetching when n1 returns.
	f.heartbeat(n3, seedingReport(a), fetchingReport(b))

	o := f.heartbeat(n1, seedingReport(a), seedingReport(b))
	if o.Status != NodeUp || !o.Verify || wantOf(o, a) == nil || wantOf(o, b) == nil {
		t.Fatalf("returning node's orders = %+v, want it up, holding both, told to verify them", o)
	}
	if got := f.holders(a.ID, StateAssigned); strings.Join(got, ",") != "n1" {
		t.Fatalf("n1's copy of a is %v, want assigned (verifying) until it reports it seeding", got)
	}
	f.reconcile()
	if got := f.holders(b.ID, ""); strings.Join(got, ",") != "n1,n2,n3" {
		t.Fatalf("b held by %v while n1 verifies, want n1,n2,n3: nothing dropped below target", got)
	}
	if o := f.heartbeat(n1, fetchingReport(a), fetchingReport(b)); o.Verify {
		t.Errorf("told to verify again on the next heartbeat")
	}
	f.reconcile()
	if got := f.holders(b.ID, ""); strings.Join(got, ",") != "n1,n2,n3" {
		t.Fatalf("b held by %v while n1 verifies, want n1's kept copy not dropped as a surplus fetch", got)
	}

	// Another torrent short of replicas holds back every surplus drop.
	c := f.torrent(1 << 20)
	f.heartbeat(n1, seedingReport(a), seedingReport(b))
	f.heartbeat(n2, seedingReport(a), seedingReport(b), seedingReport(c))
	if err := pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE torrents SET status = 'published' WHERE id = $1`, c.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	res := f.reconcile()
	if got := f.holders(a.ID, StateSeeding); strings.Join(got, ",") != "n1,n2,n3" || res.Dropped != 0 {
		t.Fatalf("a seeding on %v (dropped %d) while c is short, want all three kept", got, res.Dropped)
	}
	if got := f.holders(b.ID, StateDropping); strings.Join(got, ",") != "n3" {
		t.Errorf("b dropping on %v, want n3's fetch, no longer needed once n1 verified its copy", got)
	}
	for _, id := range []int64{n1, n2, n3} {
		var reports []Report
		for _, rec := range []Record{a, b, c} {
			var held bool
			f.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM assignments WHERE torrent_id = $1 AND node_id = $2 AND state <> 'dropping')`, rec.ID, id).Scan(&held)
			if held {
				reports = append(reports, seedingReport(rec))
			}
		}
		f.heartbeat(id, reports...)
	}
	res = f.reconcile()
	// n2, which holds c too, is the fullest: its copy of a is the surplus, not n1's.
	if got := f.holders(a.ID, StateSeeding); strings.Join(got, ",") != "n1,n3" || res.Dropped != 1 {
		t.Fatalf("a seeding on %v (dropped %d) once every torrent has its replicas, want n1,n3: the returning node's verified copy is kept", got, res.Dropped)
	}
	for _, rec := range []Record{a, b, c} {
		if n, _ := SeedingNodes(ctx, f.db, rec.ID); n != 2 {
			t.Errorf("torrent %d has %d seeding nodes at the end, want 2", rec.ID, n)
		}
	}
}

// A node restarted after being marked down registers again: it keeps its assignments, which it
// verifies as it adds them again.
func TestRestartedDownNodeKeepsAssignments(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	n1, n2 := f.node("n1", 1<<30), f.node("n2", 1<<30)
	rec := f.torrent(1 << 20)
	f.heartbeat(n1, seedingReport(rec))
	f.heartbeat(n2, seedingReport(rec))
	f.silence(n1)
	f.reconcile()
	if _, err := f.fleet.Register(ctx, NodeInfo{Name: "n1", ListenAddr: "127.0.0.1:6881", PublicAddr: "127.0.0.1:7002", CapacityBytes: 1 << 30}, f.secret(n1)); err != nil {
		t.Fatal(err)
	}
	o, err := f.fleet.Heartbeat(ctx, n1, f.secret(n1), Heartbeat{OnDisk: []string{hex.EncodeToString(rec.InfoHash)}})
	if err != nil {
		t.Fatal(err)
	}
	if w := wantOf(o, rec); w == nil || len(w.Metainfo) == 0 {
		t.Fatalf("restarted node's orders = %+v, want its torrent back with the metainfo", o)
	}
	if got := f.holders(rec.ID, StateAssigned); strings.Join(got, ",") != "n1" {
		t.Fatalf("n1's copy is %v, want assigned until verified", got)
	}
	f.heartbeat(n1, seedingReport(rec))
	f.reconcile()
	if got := f.holders(rec.ID, StateSeeding); strings.Join(got, ",") != "n1,n2" {
		t.Errorf("seeding after n1 came back: %v, want n1,n2", got)
	}
}

// A new node receives replicas from the rebalancer, within the bytes per minute, and no torrent
// goes below its target while its replica moves: the new copy is fetched first, the old one
// dropped once the new one seeds.
func TestRebalancerMovesReplicasOntoNewNode(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	f.fleet.RebalanceBytesPerMinute = 3 << 20
	n1, n2 := f.node("n1", 1<<30), f.node("n2", 1<<30)
	var recs []Record
	for range 12 {
		recs = append(recs, f.torrent(1<<20))
	}
	// Every node reports seeding what it is assigned (not dropping), so copies count once fetched.
	beat := func(id int64) {
		rows, _ := f.db.Query(ctx, `SELECT t.infohash FROM assignments a JOIN torrents t ON t.id = a.torrent_id
			WHERE a.node_id = $1 AND a.state <> 'dropping'`, id)
		hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			t.Fatal(err)
		}
		var reports []Report
		for _, ih := range hashes {
			reports = append(reports, Report{InfoHash: hex.EncodeToString(ih), State: StateSeeding})
		}
		f.heartbeat(id, reports...)
	}
	atTarget := func(when string) {
		t.Helper()
		for _, rec := range recs {
			if n, _ := SeedingNodes(ctx, f.db, rec.ID); n < 2 {
				t.Fatalf("%s: torrent %d has %d seeding replicas, below its target of 2", when, rec.ID, n)
			}
		}
	}
	beat(n1)
	beat(n2)
	f.reconcile()
	n3 := f.node("n3", 1<<30)
	beat(n3)

	res, err := f.fleet.Rebalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Started != 3 || res.Bytes != 3<<20 {
		t.Fatalf("first rebalance = %+v, want 3 moves of 1 MiB (the minute's budget)", res)
	}
	if got := f.held()["n3"]; got != 3 {
		t.Fatalf("n3 assigned %d replicas, want 3", got)
	}
	f.reconcile() // the new copies, still fetching, are not surplus to drop
	if got := f.held()["n3"]; got != 3 {
		t.Fatalf("n3 holds %d replicas after a reconcile, want the 3 moving onto it kept", got)
	}
	atTarget("moves started")
	if res, _ := f.fleet.Rebalance(ctx); res.Started != 0 || res.Finished != 0 {
		t.Fatalf("rebalance with the budget spent and nothing fetched = %+v, want nothing", res)
	}
	beat(n3)
	res, err = f.fleet.Rebalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Finished != 3 || res.Started != 0 {
		t.Fatalf("rebalance once n3 seeds = %+v, want 3 moves finished and none started within the minute", res)
	}
	atTarget("moves finished")
	if got := f.held(); got["n1"]+got["n2"] != 21 || got["n3"] != 3 {
		t.Fatalf("replicas per node %v, want 3 moved off n1 and n2 onto n3", got)
	}

	// Minutes later, and so on until even: 24 replicas, 8 a node.
	for range 10 {
		if _, err := f.db.Exec(ctx, `UPDATE replica_moves SET started_at = started_at - interval '2 minutes'`); err != nil {
			t.Fatal(err)
		}
		if _, err := f.fleet.Rebalance(ctx); err != nil {
			t.Fatal(err)
		}
		atTarget("rebalancing")
		beat(n1)
		beat(n2)
		beat(n3)
		if _, err := f.fleet.Rebalance(ctx); err != nil {
			t.Fatal(err)
		}
		beat(n1)
		beat(n2)
		atTarget("rebalancing")
	}
	if got := f.held(); got["n1"] != 8 || got["n2"] != 8 || got["n3"] != 8 {
		t.Fatalf("replicas per node %v once rebalanced, want 8 each", got)
	}
	var moves int
	f.db.QueryRow(ctx, `SELECT count(*) FROM replica_moves WHERE finished_at IS NULL`).Scan(&moves)
	if res, _ := f.fleet.Rebalance(ctx); res.Started != 0 || moves != 0 {
		t.Errorf("an even fleet still moves: %+v, %d unfinished", res, moves)
	}
}

// A torrent whose swarm has many leechers per seed gains replicas up to REPLICAS_MAX, one step
// at a time once the previous one counts, and gives them back when its swarm calms down.
func TestHotTorrentGainsReplicasAndLosesThemWhenCold(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	f.fleet.Demand = Demand{Max: 4, Hot: 5, Cold: 1, Every: time.Nanosecond}
	var ids []int64
	for i := 1; i <= 5; i++ {
		ids = append(ids, f.node(fmt.Sprintf("n%d", i), 1<<30))
	}
	hot, calm := f.torrent(1<<20), f.torrent(1<<20)
	seedAll := func() {
		for _, id := range ids {
			var reports []Report
			for _, rec := range []Record{hot, calm} {
				var held bool
				f.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM assignments WHERE torrent_id = $1 AND node_id = $2 AND state <> 'dropping')`, rec.ID, id).Scan(&held)
				if held {
					reports = append(reports, seedingReport(rec))
				}
			}
			f.heartbeat(id, reports...)
		}
	}
	seedAll()
	if ts, _, _ := f.status(hot); ts != StatusPublished {
		t.Fatalf("torrent %s, want published", ts)
	}
	tr := &Tracker{Allowed: f.fleet.Published.Allowed}
	var ih [20]byte
	copy(ih[:], hot.InfoHash)
	announce := func(i int, left int64, ev Event) {
		var id [20]byte
		copy(id[:], fmt.Sprintf("-TR4000-%012d", i))
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 51413)
		a := Announce{InfoHash: ih, PeerID: id, Addr: addr, Left: left, Event: ev}
		if left == 0 {
			a.Uploaded = 1 << 20 // a seeder that has served some, counted as one at once (see isSeeder)
		}
		if _, err := tr.Announce(a); err != nil {
			t.Fatal(err)
		}
	}
	record := func(at time.Time) {
		if err := RecordStats(ctx, f.db, at, tr.Snapshot()); err != nil {
			t.Fatal(err)
		}
	}
	// 2 seeders (the nodes) and 40 leechers: 20 leechers per seed.
	announce(1000, 0, EventStarted)
	announce(1001, 0, EventStarted)
	for i := range 40 {
		announce(i, 1<<20, EventStarted)
	}
	record(time.Now())
	placed := func(rec Record) int { return len(f.holders(rec.ID, "")) }
	f.reconcile()
	if placed(hot) != 3 || placed(calm) != 2 {
		t.Fatalf("after the swarm got busy: hot on %d nodes, calm on %d; want 3 and 2", placed(hot), placed(calm))
	}
	f.reconcile()
	if placed(hot) != 3 {
		t.Fatalf("hot on %d nodes before its third replica counts, want 3 (one step at a time)", placed(hot))
	}
	seedAll()
	f.reconcile()
	seedAll()
	f.reconcile()
	if placed(hot) != 4 {
		t.Fatalf("hot on %d nodes, want REPLICAS_MAX (4)", placed(hot))
	}
	seedAll()
	f.reconcile()
	if placed(hot) != 4 {
		t.Fatalf("hot on %d nodes, want no more than REPLICAS_MAX (4)", placed(hot))
	}

	// The leechers finish and leave; a later bucket shows the swarm calm.
	for i := range 40 {
		announce(i, 0, EventStopped)
	}
	record(time.Now().Add(bucketSize))
	for range 3 {
		seedAll()
		f.reconcile()
	}
	if got := f.holders(hot.ID, ""); len(got) != 2 {
		t.Fatalf("hot on %v once calm, want back to REPLICAS (2)", got)
	}
	if n, _ := SeedingNodes(ctx, f.db, hot.ID); n != 2 {
		t.Errorf("%d seeding nodes once calm, want 2", n)
	}
	var extra int
	f.db.QueryRow(ctx, `SELECT extra_replicas FROM torrents WHERE id = $1`, hot.ID).Scan(&extra)
	if extra != 0 {
		t.Errorf("extra replicas %d once calm, want 0", extra)
	}
}

func TestRegisterValidatesZone(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	_, err := f.fleet.Register(context.Background(), NodeInfo{Name: "z", ListenAddr: "127.0.0.1:1", PublicAddr: "127.0.0.1:1", CapacityBytes: 1, Zone: "bad zone"}, "")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "zone") {
		t.Errorf("Register with a bad zone: %v, want ErrInvalid naming the zone", err)
	}
}
