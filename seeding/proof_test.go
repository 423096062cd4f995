package seeding

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// realTorrent adds an episode in processing with the torrent tor of data, as Publisher.Finish
// does, and assigns it.
func (f *fleetFixture) realTorrent(tor Torrent, data []byte, pieceLength int64) Record {
	f.t.Helper()
	ctx := context.Background()
	var rec Record
	err := pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
		var ep int64
		if err := tx.QueryRow(ctx, `INSERT INTO episodes (show_id, title, status) VALUES ($1, 'Proven', 'processing') RETURNING id`,
			f.showID).Scan(&ep); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		var err error
		rec, err = CreateTorrent(ctx, tx, Record{EpisodeID: ep, InfoHash: tor.InfoHash[:], Name: tor.Name, Length: int64(len(data)),
			PieceLength: pieceLength, SHA256: sum[:], ContentType: "video/mp4", ContentPath: "/nowhere", Metainfo: tor.Bytes})
		if err != nil {
			return err
		}
		return f.fleet.Assign(ctx, tx, rec)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

func (f *fleetFixture) nodeAt(name, addr string) int64 {
	f.t.Helper()
	return f.enrol(NodeInfo{Name: name, ListenAddr: addr, PublicAddr: addr, CapacityBytes: 1 << 30})
}

// claim sends a heartbeat reporting the torrent seeding, and nothing else: the proof is the
// Prover's to make.
func (f *fleetFixture) claim(node int64, rec Record) Orders {
	f.t.Helper()
	o, err := f.fleet.Heartbeat(context.Background(), node, f.secret(node), Heartbeat{Session: "s", Torrents: []Report{seedingReport(rec)}})
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

func (f *fleetFixture) nodeView(name string) NodeView {
	f.t.Helper()
	o, err := f.fleet.Overview(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, n := range o.Nodes {
		if n.Name == name {
			return n
		}
	}
	f.t.Fatalf("no node %s on the fleet page", name)
	return NodeView{}
}

// A node that reports seeding while serving wrong bytes (a real anacrolix client that takes a
// file of zeros for the episode) never gets the episode published, is marked suspect with the
// reason, and gets no new replica; a node that serves the data proves it and publishes the
// episode; the suspect node, once it serves the right data, is trusted again after TrustAfter
// proofs in a row, and a failed proof voids the replicas a trusted node had proven.
func TestProofsDecideWhatCounts(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	f.fleet.Replicas = 1
	ctx := context.Background()
	data := randomBytes(51, 300_000)
	tor, mi, _ := proofTorrent(t, data, 16<<10)
	zeros := anacrolixSeeder(t, mi, tor.Name, make([]byte, len(data)), true)
	good := anacrolixSeeder(t, mi, tor.Name, data, false)
	prover := &Prover{Fleet: f.fleet, Interval: 100 * time.Millisecond, Timeout: 10 * time.Second}

	liar := f.nodeAt("liar", zeros)
	rec := f.realTorrent(tor, data, 16<<10)
	if h := f.holders(rec.ID, ""); len(h) != 1 || h[0] != "liar" {
		t.Fatalf("holders %v, want the only node", h)
	}
	f.claim(liar, rec)
	if torrent, _, _ := f.status(rec); torrent != StatusProcessing {
		t.Fatalf("a claim alone made the torrent %s", torrent)
	}
	res, err := prover.ProveDue(ctx)
	if err != nil || res.Failed != 1 || res.Passed != 0 {
		t.Fatalf("ProveDue = %+v, %v; want the liar's proof failed", res, err)
	}
	v := f.nodeView("liar")
	if v.SuspectSince == nil || !strings.Contains(v.SuspectReason, ProofWrongData) || !strings.Contains(v.SuspectReason, rec.InfoHashHex()) {
		t.Fatalf("liar on the fleet page: suspect since %v, reason %q; want suspect for wrong data of %s", v.SuspectSince, v.SuspectReason, rec.InfoHashHex())
	}
	if h, err := f.fleet.Health(ctx); err != nil || h.Suspect != 1 {
		t.Fatalf("Health = %+v, %v; want 1 suspect node", h, err)
	}
	// Claims go on, and so do proofs; none makes the torrent count.
	for range 3 {
		f.claim(liar, rec)
		f.reconcile()
		time.Sleep(150 * time.Millisecond)
		if _, err := prover.ProveDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if torrent, episode, _ := f.status(rec); torrent != StatusProcessing || episode != "processing" {
		t.Fatalf("with only a lying node: torrent %s, episode %s; want both processing", torrent, episode)
	}
	if n, _ := SeedingNodes(ctx, f.db, rec.ID); n != 0 {
		t.Fatalf("SeedingNodes = %d with only a lying node", n)
	}

	// A node that serves the data: the reconcile gives it the torrent (not to the suspect
	// node, which is the emptiest), its proof publishes the episode.
	honest := f.nodeAt("honest", good)
	other := f.torrent(1000)
	f.reconcile()
	if h := f.holders(rec.ID, ""); len(h) != 2 || h[0] != "honest" {
		t.Fatalf("holders %v, want honest beside the liar", h)
	}
	if h := f.holders(other.ID, ""); len(h) != 1 || h[0] != "honest" {
		t.Fatalf("a new torrent went to %v, want honest only (the liar is suspect)", h)
	}
	if w := wantOf(f.claim(honest, rec), rec); w == nil || len(w.Peers) != 0 {
		t.Fatalf("honest's orders for the torrent: %+v; want it without the suspect node as a peer to fetch from", w)
	}
	res, err = prover.ProveDue(ctx)
	if err != nil || res.Passed != 1 || res.Published != 1 {
		t.Fatalf("ProveDue = %+v, %v; want honest's proof passed and the torrent published", res, err)
	}
	if torrent, episode, _ := f.status(rec); torrent != StatusPublished || episode != "published" {
		t.Fatalf("after honest's proof: torrent %s, episode %s", torrent, episode)
	}
	if n, _ := SeedingNodes(ctx, f.db, rec.ID); n != 1 {
		t.Fatalf("SeedingNodes = %d, want honest alone", n)
	}

	// The liar now serves the data (it registers the honest address): TrustAfter proofs in a row
	// and it is trusted, its replica counting.
	if _, err := f.fleet.Register(ctx, NodeInfo{Name: "liar", ListenAddr: good, PublicAddr: good, CapacityBytes: 1 << 30}, f.secret(liar)); err != nil {
		t.Fatal(err)
	}
	passed := func() (n int) {
		if err := f.db.QueryRow(ctx, `SELECT proofs_passed FROM nodes WHERE id = $1`, liar).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); f.nodeView("liar").SuspectSince != nil; time.Sleep(50 * time.Millisecond) {
		if n := passed(); n >= TrustAfter {
			t.Fatalf("the liar is still suspect after %d proofs passed in a row", n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the liar serving the data is still suspect after %d passed proofs", passed())
		}
		f.claim(liar, rec)
		if res, err := prover.ProveDue(ctx); err != nil || res.Failed > 0 {
			t.Fatalf("ProveDue = %+v, %v", res, err)
		}
	}
	if n := passed(); n != TrustAfter {
		t.Errorf("trusted again after %d passed proofs, want %d", n, TrustAfter)
	}
	if n, _ := SeedingNodes(ctx, f.db, rec.ID); n != 2 {
		t.Fatalf("SeedingNodes = %d once the liar is trusted, want 2", n)
	}

	// Honest goes bad behind the same address (as if its host were replaced by the liar's): its
	// next proof fails, and its proven replicas stop counting at once.
	if _, err := f.db.Exec(ctx, `UPDATE nodes SET public_addr = $2 WHERE id = $1`, honest, zeros); err != nil {
		t.Fatal(err)
	}
	if n, _ := SeedingNodes(ctx, f.db, rec.ID); n != 2 {
		t.Fatalf("SeedingNodes = %d before honest's next proof, want 2", n)
	}
	if _, err := f.db.Exec(ctx, `UPDATE assignments SET proof_due = now() WHERE node_id = $1`, honest); err != nil {
		t.Fatal(err)
	}
	f.claim(honest, rec)
	if res, err := prover.ProveDue(ctx); err != nil || res.Failed < 1 {
		t.Fatalf("ProveDue = %+v, %v; want honest's proof failed", res, err)
	}
	if n, _ := SeedingNodes(ctx, f.db, rec.ID); n != 1 {
		t.Fatalf("SeedingNodes = %d after honest failed, want the liar alone", n)
	}
	var proven int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM assignments WHERE node_id = $1 AND proven_at IS NOT NULL`, honest).Scan(&proven); err != nil || proven != 0 {
		t.Fatalf("honest keeps %d proven replicas after failing (err %v), want none", proven, err)
	}
	if v := f.nodeView("honest"); v.SuspectSince == nil {
		t.Fatal("honest is not suspect after failing a proof")
	}
	// A node registering at another address must prove its replicas there: until then they do
	// not count.
	if _, err := f.fleet.Register(ctx, NodeInfo{Name: "liar", ListenAddr: zeros, PublicAddr: zeros, CapacityBytes: 1 << 30}, f.secret(liar)); err != nil {
		t.Fatal(err)
	}
	if n, _ := SeedingNodes(ctx, f.db, rec.ID); n != 0 {
		t.Fatalf("SeedingNodes = %d once the liar moved to another address, want 0 until it is proven there", n)
	}
}

// An episode that times out with only unproven claims says so to its creator.
func TestTimedOutEpisodeTellsOfFailedProofs(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	f.fleet.Replicas, f.fleet.PublishTimeout = 1, time.Minute
	ctx := context.Background()
	data := randomBytes(52, 100_000)
	tor, _, _ := proofTorrent(t, data, 16<<10)
	fake := f.nodeAt("fake", fakeSeeder(t, tor.InfoHash))
	rec := f.realTorrent(tor, data, 16<<10)
	f.claim(fake, rec)
	if res, err := (&Prover{Fleet: f.fleet}).ProveDue(ctx); err != nil || res.Failed != 1 {
		t.Fatalf("ProveDue = %+v, %v; want the fake node's proof failed", res, err)
	}
	if _, err := f.db.Exec(ctx, `UPDATE torrents SET created_at = now() - interval '2 minutes' WHERE id = $1`, rec.ID); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	torrent, episode, reason := f.status(rec)
	if torrent != StatusFailed || episode != "failed" || !strings.Contains(reason, "0 of the 1 seedbox nodes needed") ||
		!strings.Contains(reason, "1 node said it seeds it, but its copy has not passed the control plane's check") {
		t.Fatalf("timed out with a fake node's claim: torrent %s, episode %s, reason %q", torrent, episode, reason)
	}
}

// Two serve processes proving at once take each due replica once: every replica is proven, none
// twice, and the torrent is published once.
func TestProversShareTheWork(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	f.fleet.Replicas = 3
	ctx := context.Background()
	data := randomBytes(53, 200_000)
	tor, mi, _ := proofTorrent(t, data, 16<<10)
	good := anacrolixSeeder(t, mi, tor.Name, data, false)
	var nodes []int64
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, f.nodeAt(name, good))
	}
	rec := f.realTorrent(tor, data, 16<<10)
	for _, n := range nodes {
		f.claim(n, rec)
	}
	results := make([]ProofResult, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = (&Prover{Fleet: &Fleet{DB: f.db, Replicas: 3, Episodes: sqlEpisodes{}}}).ProveDue(ctx)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if passed, published := results[0].Passed+results[1].Passed, results[0].Published+results[1].Published; passed != 3 || published != 1 {
		t.Fatalf("two provers: %+v; want 3 proofs in all and one publication", results)
	}
	if n, _ := SeedingNodes(ctx, f.db, rec.ID); n != 3 {
		t.Fatalf("SeedingNodes = %d, want 3", n)
	}
	if torrent, _, _ := f.status(rec); torrent != StatusPublished {
		t.Fatalf("torrent %s, want published", torrent)
	}
}
