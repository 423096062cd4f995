package seeding

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// fleetFixture is a database with one show, and helpers to add episodes with torrents and nodes.
type fleetFixture struct {
	t      *testing.T
	db     *pgxpool.Pool
	fleet  *Fleet
	showID int64
	n      atomic.Int64

	mu      sync.Mutex
	secrets map[int64]string // each node's secret, from its enrolment
}

func newFleetFixture(t *testing.T) *fleetFixture {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	var owner, show int64
	if err := db.QueryRow(ctx, `INSERT INTO accounts (email, name, password_hash, role) VALUES ('c@example.com', 'C', 'x', 'creator') RETURNING id`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `INSERT INTO shows (owner_id, slug, title, currency) VALUES ($1, 'night', 'Night', 'USD') RETURNING id`, owner).Scan(&show); err != nil {
		t.Fatal(err)
	}
	return &fleetFixture{t: t, db: db, showID: show, fleet: &Fleet{DB: db, Replicas: 2, Published: &Published{DB: db}, Episodes: sqlEpisodes{}}}
}

// sqlEpisodes moves episodes as the catalog does when the fleet tells it of its torrents, so
// that these tests see episodes follow their torrents without importing the catalog.
type sqlEpisodes struct{}

func (sqlEpisodes) TorrentsPublished(ctx context.Context, tx pgx.Tx, ids []int64) error {
	_, err := tx.Exec(ctx, `UPDATE episodes SET status = 'published', failure_reason = '', published_at = coalesce(published_at, now())
		WHERE id = ANY($1) AND status = 'processing'`, ids)
	return err
}

func (sqlEpisodes) TorrentFailed(ctx context.Context, tx pgx.Tx, id int64, reason string) error {
	_, err := tx.Exec(ctx, `UPDATE episodes SET status = 'failed', failure_reason = $2 WHERE id = $1 AND status = 'processing'`, id, reason)
	return err
}

// torrent adds an episode in processing with a torrent of the given length, as Publisher.Finish
// does, and assigns it in the same transaction.
func (f *fleetFixture) torrent(length int64) Record {
	f.t.Helper()
	rec, err := f.newTorrent(length)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

func (f *fleetFixture) newTorrent(length int64) (Record, error) {
	ctx := context.Background()
	n := f.n.Add(1)
	var rec Record
	err := pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
		var ep int64
		if err := tx.QueryRow(ctx, `INSERT INTO episodes (show_id, title, status) VALUES ($1, $2, 'processing') RETURNING id`,
			f.showID, fmt.Sprintf("Episode %d", n)).Scan(&ep); err != nil {
			return err
		}
		ih := sha1.Sum([]byte(fmt.Sprint("torrent", n, f.t.Name())))
		var err error
		rec, err = CreateTorrent(ctx, tx, Record{EpisodeID: ep, InfoHash: ih[:], Name: fmt.Sprintf("ep%d.mp4", n), Length: length,
			PieceLength: 16384, SHA256: make([]byte, 32), ContentType: "video/mp4", ContentPath: "/nowhere", Metainfo: []byte("d4:infod}e")})
		if err != nil {
			return err
		}
		return f.fleet.Assign(ctx, tx, rec)
	})
	return rec, err
}

func (f *fleetFixture) node(name string, capacity int64) int64 {
	f.t.Helper()
	return f.enrol(NodeInfo{Name: name, ListenAddr: "127.0.0.1:6881", PublicAddr: "127.0.0.1:" + fmt.Sprint(7000+len(name)), CapacityBytes: capacity})
}

// enrol registers a node with the fleet token and keeps the secret it was given.
func (f *fleetFixture) enrol(info NodeInfo) int64 {
	f.t.Helper()
	e, err := f.fleet.Register(context.Background(), info, "")
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secrets == nil {
		f.secrets = map[int64]string{}
	}
	f.secrets[e.ID] = e.Secret
	return e.ID
}

// secret is the secret a node of the fixture was given when it enrolled.
func (f *fleetFixture) secret(node int64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.secrets[node]
}

// holders lists the nodes holding a torrent (not dropping), by name, in name order.
func (f *fleetFixture) holders(torrentID int64, state string) []string {
	f.t.Helper()
	rows, _ := f.db.Query(context.Background(), `SELECT n.name FROM assignments a JOIN nodes n ON n.id = a.node_id
		WHERE a.torrent_id = $1 AND (a.state = $2 OR ($2 = '' AND a.state <> 'dropping')) ORDER BY n.name`, torrentID, state)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatal(err)
	}
	return names
}

// heartbeat sends a node's heartbeat; then each replica it reports seeding passes its proof, as
// one of a node that holds the data would. These tests are about placement, publishing and
// draining, with nodes that hold nothing; proofs over the network, and what a failed one does,
// are tested in peerwire_test.go and proof_test.go. The orders are the heartbeat's.
func (f *fleetFixture) heartbeat(node int64, reports ...Report) Orders {
	f.t.Helper()
	o, err := f.fleet.Heartbeat(context.Background(), node, f.secret(node), Heartbeat{DiskUsed: 1, Torrents: reports})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range reports {
		if r.State == StateSeeding {
			f.passProof(node, r.InfoHash)
		}
	}
	return o
}

// passProof records a passed proof of a node's replica of the torrent with the given infohash
// (hex), as the Prover does after fetching and checking its pieces.
func (f *fleetFixture) passProof(node int64, infoHash string) {
	f.t.Helper()
	ctx := context.Background()
	ih, _ := hex.DecodeString(infoHash)
	d := dueProof{nodeID: node, infoHash: ih}
	if err := f.db.QueryRow(ctx, `SELECT id FROM torrents WHERE infohash = $1`, ih).Scan(&d.torrentID); err != nil {
		f.t.Fatal(err)
	}
	if _, err := (&Prover{Fleet: f.fleet}).record(ctx, d, nil); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleetFixture) reconcile() ReconcileResult {
	f.t.Helper()
	res, err := f.fleet.Reconcile(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *fleetFixture) status(rec Record) (torrent, episode, reason string) {
	f.t.Helper()
	err := f.db.QueryRow(context.Background(), `SELECT t.status, e.status, e.failure_reason FROM torrents t JOIN episodes e ON e.id = t.episode_id
		WHERE t.id = $1`, rec.ID).Scan(&torrent, &episode, &reason)
	if err != nil {
		f.t.Fatal(err)
	}
	return torrent, episode, reason
}

// silence makes a node's last heartbeat older than the down threshold.
func (f *fleetFixture) silence(node int64) {
	f.t.Helper()
	if _, err := f.db.Exec(context.Background(), `UPDATE nodes SET last_heartbeat = now() - interval '31 seconds' WHERE id = $1`, node); err != nil {
		f.t.Fatal(err)
	}
}

func seedingReport(rec Record) Report {
	return Report{InfoHash: hex.EncodeToString(rec.InfoHash), State: StateSeeding, Uploaded: 100, Peers: 3, Seeders: 1, Leechers: 2}
}

func fetchingReport(rec Record) Report {
	return Report{InfoHash: hex.EncodeToString(rec.InfoHash), State: StateFetching}
}

func wantOf(o Orders, rec Record) *Want {
	for i := range o.Torrents {
		if o.Torrents[i].InfoHash == hex.EncodeToString(rec.InfoHash) {
			return &o.Torrents[i]
		}
	}
	return nil
}

func TestAssignReplicas(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	f.node("big", 10<<20)
	f.node("medium", 5<<20)
	f.node("tiny", 1<<20)

	a := f.torrent(4 << 20)
	if got := f.holders(a.ID, ""); strings.Join(got, ",") != "big,medium" {
		t.Fatalf("4 MiB torrent on %v, want the two nodes with room: big, medium", got)
	}
	// big has 6 MiB free, medium 1 MiB, tiny 1 MiB: only big has room for 3 MiB.
	b := f.torrent(3 << 20)
	if got := f.holders(b.ID, ""); strings.Join(got, ",") != "big" {
		t.Fatalf("3 MiB torrent on %v, want only big (capacity respected)", got)
	}
	// Reconciling never puts a second replica on the same node, nor on a full one.
	if res := f.reconcile(); res.Assigned != 0 {
		t.Errorf("reconcile assigned %d replicas with no room anywhere", res.Assigned)
	}
	f.node("new", 10<<20)
	if res := f.reconcile(); res.Assigned != 1 {
		t.Errorf("reconcile assigned %d replicas once a node with room joined, want 1", res.Assigned)
	}
	if got := f.holders(b.ID, ""); strings.Join(got, ",") != "big,new" {
		t.Fatalf("3 MiB torrent on %v after a node joined, want big,new", got)
	}
}

func TestPublishOnlyWhenRNodesSeed(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	n1, n2 := f.node("n1", 1<<30), f.node("n2", 1<<30)
	rec := f.torrent(1 << 20)
	var ih [20]byte
	copy(ih[:], rec.InfoHash)

	o := f.heartbeat(n1, fetchingReport(rec))
	w := wantOf(o, rec)
	if w == nil || w.Published || len(w.Peers) != 1 || w.Peers[0] != "127.0.0.1:7002" {
		t.Fatalf("orders to n1 = %+v, want the torrent unpublished with n2 as its peer", o)
	}
	if w.Metainfo != nil {
		t.Errorf("metainfo sent again for a torrent the node reports")
	}
	if w := wantOf(f.heartbeat(n2), rec); w == nil || string(w.Metainfo) != "d4:infod}e" {
		t.Fatalf("n2, which does not hold it yet, was not sent the metainfo: %+v", w)
	}
	f.heartbeat(n1, seedingReport(rec))
	if ts, es, _ := f.status(rec); ts != StatusProcessing || es != "processing" {
		t.Fatalf("one of two nodes seeding: torrent %s, episode %s; want both processing", ts, es)
	}
	if f.fleet.Published.Allowed(ih) {
		t.Fatal("the tracker serves a torrent only one node seeds")
	}
	f.heartbeat(n2, seedingReport(rec))
	if ts, es, _ := f.status(rec); ts != StatusPublished || es != "published" {
		t.Fatalf("two nodes seeding: torrent %s, episode %s; want both published", ts, es)
	}
	if !f.fleet.Published.Allowed(ih) {
		t.Fatal("the tracker refuses a published torrent")
	}
	if w := wantOf(f.heartbeat(n1, seedingReport(rec)), rec); w == nil || !w.Published {
		t.Fatalf("nodes are not told to announce the published torrent: %+v", w)
	}
	var uploaded, peers int64
	f.db.QueryRow(context.Background(), `SELECT sum(uploaded), sum(peers) FROM assignments WHERE torrent_id = $1`, rec.ID).Scan(&uploaded, &peers)
	if uploaded != 200 || peers != 6 {
		t.Errorf("stored counters: uploaded %d, peers %d; want 200, 6", uploaded, peers)
	}
}

func TestFailoverReassignsWithinOneReconcile(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	n1, n2 := f.node("n1", 1<<30), f.node("n2", 1<<30)
	rec := f.torrent(1 << 20)
	f.heartbeat(n1, seedingReport(rec))
	f.heartbeat(n2, seedingReport(rec))
	n3 := f.node("n3", 1<<30)

	f.silence(n1)
	res := f.reconcile()
	if res.Down != 1 || res.Assigned != 1 {
		t.Fatalf("reconcile = %+v, want one node down and one replica assigned", res)
	}
	// n1 keeps its copy while down (it does not count), and n3 gets one in its place.
	if got := f.holders(rec.ID, ""); strings.Join(got, ",") != "n1,n2,n3" {
		t.Fatalf("holders after n1 went down: %v, want n1 (kept),n2,n3", got)
	}
	if w := wantOf(f.heartbeat(n3), rec); w == nil || !w.Published || len(w.Peers) != 1 {
		t.Fatalf("n3's orders = %+v, want the published torrent with n2 as peer", w)
	}
	// Only up nodes count: the published torrent is under-replicated until n3 seeds.
	ov, err := f.fleet.Overview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ov.UnderReplicated) != 1 || ov.UnderReplicated[0].Seeding != 1 {
		t.Fatalf("under-replicated = %+v, want the torrent with 1 seeding", ov.UnderReplicated)
	}
	f.heartbeat(n3, seedingReport(rec))
	if ov, _ := f.fleet.Overview(context.Background()); len(ov.UnderReplicated) != 0 || len(ov.Nodes) != 3 {
		t.Fatalf("overview = %+v, want 3 nodes and nothing under-replicated", ov)
	}
}

func TestDeletedTorrentIsDroppedByNodes(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	n1, n2 := f.node("n1", 1<<30), f.node("n2", 1<<30)
	rec := f.torrent(1 << 20)
	f.heartbeat(n1, seedingReport(rec))
	f.heartbeat(n2, seedingReport(rec))
	if err := DeleteTorrent(context.Background(), f.db, rec.ID); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if got := f.holders(rec.ID, StateDropping); len(got) != 2 {
		t.Fatalf("dropping on %v, want both nodes", got)
	}
	// A node still holding it is told to hold nothing; the row goes once it stops reporting it.
	if o := f.heartbeat(n1, seedingReport(rec)); len(o.Torrents) != 0 {
		t.Fatalf("orders for a deleted torrent: %+v", o)
	}
	if got := f.holders(rec.ID, StateDropping); len(got) != 2 {
		t.Fatalf("dropping on %v before the nodes confirmed, want both", got)
	}
	f.heartbeat(n1)
	if got := f.holders(rec.ID, StateDropping); strings.Join(got, ",") != "n2" {
		t.Fatalf("dropping on %v after n1 confirmed, want n2", got)
	}
	if res := f.reconcile(); res.Assigned != 0 {
		t.Errorf("a deleted torrent got %d new replicas", res.Assigned)
	}
}

func TestDrainMovesTorrentsBeforeRemoving(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	n1, n2 := f.node("n1", 1<<30), f.node("n2", 1<<30)
	rec := f.torrent(1 << 20)
	f.heartbeat(n1, seedingReport(rec))
	f.heartbeat(n2, seedingReport(rec))
	n3 := f.node("n3", 1<<30)
	if err := f.fleet.Drain(context.Background(), n1); err != nil {
		t.Fatal(err)
	}
	if err := f.fleet.Drain(context.Background(), n1); !errors.Is(err, ErrNotFound) {
		t.Errorf("draining twice: %v, want ErrNotFound", err)
	}
	f.reconcile()
	if got := f.holders(rec.ID, ""); strings.Join(got, ",") != "n1,n2,n3" {
		t.Fatalf("holders while draining: %v, want n1 to keep it until n3 seeds", got)
	}
	f.heartbeat(n3, seedingReport(rec))
	f.reconcile()
	if got := f.holders(rec.ID, StateDropping); strings.Join(got, ",") != "n1" {
		t.Fatalf("dropping on %v once n3 seeds, want n1", got)
	}
	if o := f.heartbeat(n1); o.Status != NodeDraining || len(o.Torrents) != 0 {
		t.Fatalf("draining node's orders = %+v", o)
	}
	f.reconcile()
	var status string
	f.db.QueryRow(context.Background(), `SELECT status FROM nodes WHERE id = $1`, n1).Scan(&status)
	if status != NodeRemoved {
		t.Fatalf("drained node is %s, want removed", status)
	}
	if ts, _, _ := f.status(rec); ts != StatusPublished {
		t.Errorf("torrent %s after the drain, want published", ts)
	}
}

func TestFailAfterPublishTimeoutWithReason(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	f.fleet.PublishTimeout = time.Minute
	n1 := f.node("n1", 1<<30)
	rec := f.torrent(1 << 20)
	f.heartbeat(n1, Report{InfoHash: hex.EncodeToString(rec.InfoHash), State: StateFetching, Error: "3 pieces failed verification"})
	f.reconcile()
	if ts, _, _ := f.status(rec); ts != StatusProcessing {
		t.Fatalf("torrent %s before the timeout", ts)
	}
	f.db.Exec(context.Background(), `UPDATE torrents SET created_at = now() - interval '2 minutes' WHERE id = $1`, rec.ID)
	if res := f.reconcile(); res.Failed != 1 {
		t.Fatalf("reconcile = %+v, want one failure", res)
	}
	ts, es, reason := f.status(rec)
	if ts != StatusFailed || es != "failed" || !strings.Contains(reason, "only 1 of the 2 seedbox nodes") || !strings.Contains(reason, "3 pieces failed verification") {
		t.Fatalf("after the timeout: torrent %s, episode %s, reason %q", ts, es, reason)
	}
	f.reconcile()
	if got := f.holders(rec.ID, StateDropping); len(got) != 1 {
		t.Errorf("a failed torrent is not dropped: %v", got)
	}
}

// Several control-plane processes reconcile at once: one does the work, the others skip, and
// no node ever gets two replicas of a torrent or more than its capacity.
func TestConcurrentReconcileAndAssign(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	for i := range 4 {
		f.node(fmt.Sprintf("n%d", i), 3<<20)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := f.newTorrent(1 << 20); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := f.fleet.Reconcile(context.Background()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	f.reconcile()
	var over, short int
	f.db.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT a.node_id FROM assignments a JOIN torrents t ON t.id = a.torrent_id
		JOIN nodes n ON n.id = a.node_id GROUP BY a.node_id, n.capacity_bytes HAVING sum(t.length) > n.capacity_bytes) x`).Scan(&over)
	f.db.QueryRow(context.Background(), `SELECT count(*) FROM torrents t WHERE (SELECT count(*) FROM assignments a WHERE a.torrent_id = t.id) <> 2`).Scan(&short)
	if over != 0 || short != 2 {
		t.Fatalf("%d nodes over capacity, %d torrents without 2 replicas; want 0 and 2 (12 MiB of room for 16 MiB of replicas)", over, short)
	}
}

func TestRegisterValidates(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	for _, n := range []NodeInfo{
		{Name: "bad name", ListenAddr: "127.0.0.1:1", PublicAddr: "127.0.0.1:1", CapacityBytes: 1},
		{Name: "ok", ListenAddr: "nope", PublicAddr: "127.0.0.1:1", CapacityBytes: 1},
		{Name: "ok", ListenAddr: "127.0.0.1:1", PublicAddr: "127.0.0.1:0", CapacityBytes: 1},
		{Name: "ok", ListenAddr: "127.0.0.1:1", PublicAddr: "127.0.0.1:1", CapacityBytes: 0},
	} {
		if _, err := f.fleet.Register(context.Background(), n, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Register(%+v) = %v, want ErrInvalid", n, err)
		}
	}
	id := f.node("again", 1<<20)
	if _, err := f.fleet.Heartbeat(context.Background(), 999999, f.secret(999999), Heartbeat{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("heartbeat of an unknown node: %v, want ErrNotFound", err)
	}
	if _, err := f.fleet.Heartbeat(context.Background(), id, f.secret(id), Heartbeat{Torrents: []Report{{InfoHash: "xyz", State: StateSeeding}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("heartbeat with a bad infohash: %v, want ErrInvalid", err)
	}
	if _, err := f.fleet.Heartbeat(context.Background(), id, f.secret(id), Heartbeat{PeerID: "abc"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "peer_id") {
		t.Errorf("heartbeat with a bad peer id: %v, want ErrInvalid naming peer_id", err)
	}
}
