// Command fleet measures how the seedbox fleet recovers from losing nodes: 10 nodes hold 500
// torrents of 2 replicas each; 2 nodes are killed; it prints the time until every torrent has
// its target of counted replicas again, the bytes moved, and the spread (max/mean bytes per
// node), beside the ideal in the same run: the bytes the dead nodes held (what had to move),
// spread evenly over the survivors, and the time those take at the nodes' rate.
//
// The control plane is the real one (seeding.Fleet: registration, heartbeats, reconcile with the
// placement rule, the rebalancer) on a fresh PostgreSQL database; the nodes are in-process and
// their transfers simulated: each fetches at -rate bytes per second, and reports what it holds
// in heartbeats as a seedbox node does.
//
//	go run ./bench/fleet
//	go run ./bench/fleet -nodes 10 -torrents 500 -kill 2 -rate 1073741824
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
	"github.com/fanseed/fanseed/migrations"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

type config struct {
	nodes, torrents, kill, replicas int
	minSize, maxSize                int64
	rate                            int64 // simulated bytes per second each node fetches
	heartbeat, reconcile, downAfter time.Duration
	timeout                         time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	var c config
	fs.IntVar(&c.nodes, "nodes", 10, "seedbox nodes")
	fs.IntVar(&c.torrents, "torrents", 500, "torrents")
	fs.IntVar(&c.kill, "kill", 2, "nodes killed")
	fs.IntVar(&c.replicas, "replicas", 2, "REPLICAS")
	fs.Int64Var(&c.minSize, "min-size", 100<<20, "smallest torrent, bytes")
	fs.Int64Var(&c.maxSize, "max-size", 900<<20, "largest torrent, bytes")
	fs.Int64Var(&c.rate, "rate", 1<<30, "simulated bytes per second each node fetches")
	fs.DurationVar(&c.heartbeat, "heartbeat", 250*time.Millisecond, "node heartbeat interval")
	fs.DurationVar(&c.reconcile, "reconcile", 500*time.Millisecond, "RECONCILE_EVERY")
	fs.DurationVar(&c.downAfter, "down-after", 2*time.Second, "NODE_DOWN_AFTER")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.nodes < 2 || c.kill < 1 || c.nodes-c.kill < c.replicas || c.torrents < 1 || c.minSize <= 0 || c.maxSize < c.minSize || c.rate <= 0 {
		return errors.New("need -nodes - -kill >= -replicas, -kill >= 1, and positive -torrents, sizes and -rate")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	dbURL, drop, err := benchkit.CreateDatabase(ctx, "bench_fleet")
	if err != nil {
		return err
	}
	defer drop()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool, nil); err != nil {
		return err
	}
	b := &bench{c: c, pool: pool, lengths: map[string]int64{}}
	b.setup.Store(true)
	return b.run(ctx, out)
}

type bench struct {
	c       config
	setup   atomic.Bool // the nodes start with their first torrents' data: no transfer is simulated
	pool    *pgxpool.Pool
	fleet   *seeding.Fleet
	lengths map[string]int64 // infohash hex: length; written before the nodes start
	nodes   []*simNode
}

// simNode is a seedbox node whose transfers are simulated: it fetches its torrents one after the
// other at the bench's rate and heartbeats what it holds.
type simNode struct {
	name     string
	id       int64
	secret   string
	session  string
	alive    atomic.Bool
	fetched  atomic.Int64 // bytes fetched in all
	verified atomic.Int64 // bytes of kept copies hashed again

	mu   sync.Mutex
	held map[string]*simTorrent
	hold []string // infohashes in the order they were given
}

type simTorrent struct {
	length, done int64
	kept         bool // being verified again after the node returned: done counts bytes hashed
}

func (b *bench) run(ctx context.Context, out io.Writer) error {
	c := b.c
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.fleet = &seeding.Fleet{DB: b.pool, Replicas: c.replicas, DownAfter: c.downAfter, PublishTimeout: time.Hour,
		Episodes: publishing.Episodes{}, Log: logger, Demand: seeding.Demand{Max: c.replicas}}
	capacity := int64(float64(c.torrents) * float64(c.minSize+c.maxSize) / 2 * float64(c.replicas) / float64(c.nodes-c.kill) * 1.5)
	for i := range c.nodes {
		n := &simNode{name: fmt.Sprintf("node-%02d", i+1), session: rand.Text(), held: map[string]*simTorrent{}}
		e, err := b.fleet.Register(ctx, seeding.NodeInfo{Name: n.name, ListenAddr: fmt.Sprintf("127.0.0.1:%d", 7000+i),
			PublicAddr: fmt.Sprintf("127.0.0.1:%d", 7000+i), CapacityBytes: capacity}, "")
		if err != nil {
			return err
		}
		n.id, n.secret = e.ID, e.Secret
		n.alive.Store(true)
		b.nodes = append(b.nodes, n)
	}
	fmt.Fprintf(out, "fleet: %d nodes of %.0f GB, %d torrents of %d to %d MB, REPLICAS=%d; real control plane (seeding.Fleet) and PostgreSQL, in-process nodes with simulated transfers at %.0f MB/s each\n",
		c.nodes, float64(capacity)/1e9, c.torrents, c.minSize>>20, c.maxSize>>20, c.replicas, float64(c.rate)/1e6)
	fmt.Fprintf(out, "heartbeat %s, RECONCILE_EVERY %s, NODE_DOWN_AFTER %s; replicas recorded as proven once reported seeding (the simulated nodes hold no data)\n", c.heartbeat, c.reconcile, c.downAfter)

	var total int64
	rng := mrand.New(mrand.NewPCG(1, 2))
	if err := b.createTorrents(ctx, rng, &total); err != nil {
		return err
	}
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	var wg sync.WaitGroup
	for _, n := range b.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); b.nodeLoop(loopCtx, n) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); b.fleet.Run(loopCtx, c.reconcile) }()
	go func() { defer wg.Done(); b.fleet.RunRebalance(loopCtx, c.reconcile) }()
	defer wg.Wait()
	defer stopLoops()

	start := time.Now()
	if err := b.waitAtTarget(ctx, true); err != nil {
		return err
	}
	b.setup.Store(false)
	before, err := b.spread(ctx)
	if err != nil {
		return err
	}
	var worstPair int
	if err := b.pool.QueryRow(ctx, `SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM assignments a
		JOIN assignments b ON b.torrent_id = a.torrent_id AND b.node_id > a.node_id GROUP BY a.node_id, b.node_id) x`).Scan(&worstPair); err != nil {
		return err
	}
	pairs := float64(c.nodes*(c.nodes-1)) / 2
	evenBoth := float64(c.torrents) * float64(c.replicas*(c.replicas-1)) / 2 / pairs
	fmt.Fprintf(out, "setup (nodes start with their data): %d torrents published in %s; spread max/mean %.3f; most torrents two nodes share %d (even spread: %.1f)\n",
		c.torrents, time.Since(start).Round(10*time.Millisecond), before.ratio, worstPair, evenBoth)

	// Kill the nodes holding the most bytes: they stop heartbeating, as after kill -9.
	victims := slices.Clone(b.nodes)
	slices.SortFunc(victims, func(x, y *simNode) int { return int(before.bytes[y.id]>>20 - before.bytes[x.id]>>20) })
	victims = victims[:c.kill]
	var lost, held int64
	var lostBoth int
	ids := make([]int64, 0, len(victims))
	for _, v := range victims {
		ids = append(ids, v.id)
		held += before.bytes[v.id]
	}
	// What had to move: for each torrent, a copy for each replica it has below REPLICAS without
	// the dead nodes.
	if err := b.pool.QueryRow(ctx, `
		WITH left_ AS (SELECT t.id, t.length, (SELECT count(*) FROM assignments a
			WHERE a.torrent_id = t.id AND a.state = 'seeding' AND NOT a.node_id = ANY($1)) AS n FROM torrents t)
		SELECT coalesce(sum(length * greatest($2 - n, 0)), 0)::bigint, count(*) FILTER (WHERE n = 0) FROM left_`,
		ids, c.replicas).Scan(&lost, &lostBoth); err != nil {
		return err
	}
	fetchedBefore := b.fetched()
	killed := time.Now()
	for _, v := range victims {
		v.alive.Store(false)
	}
	if err := b.waitAtTarget(ctx, false); err != nil {
		return err
	}
	recovered := time.Since(killed)
	moved := b.fetched() - fetchedBefore
	atTarget, err := b.spread(ctx)
	if err != nil {
		return err
	}
	// The rebalancer may still be moving; let the fleet settle before measuring the spread.
	if err := b.waitSettled(ctx); err != nil {
		return err
	}
	settled := time.Since(killed)
	movedSettled := b.fetched() - fetchedBefore
	after, err := b.spread(ctx)
	if err != nil {
		return err
	}
	survivors := c.nodes - c.kill
	idealTime := c.downAfter + time.Duration(float64(lost)/float64(survivors)/float64(c.rate)*float64(time.Second))
	fmt.Fprintf(out, "killed the %d fullest nodes, holding %.1f GB (%.1f GB of replicas to make again); %d torrents had every replica on them (an even spread of pairs: %.1f)\n",
		c.kill, float64(held)/1e9, float64(lost)/1e9, lostBoth, evenBoth)
	fmt.Fprintf(out, "%-32s %14s %14s %16s\n", "", "time", "bytes moved", "spread max/mean")
	fmt.Fprintf(out, "%-32s %14s %11.1f GB %16.3f\n", "fanseed: every torrent at target", recovered.Round(10*time.Millisecond), float64(moved)/1e9, atTarget.ratio)
	fmt.Fprintf(out, "%-32s %14s %11.1f GB %16.3f\n", "fanseed: settled (rebalanced)", settled.Round(10*time.Millisecond), float64(movedSettled)/1e9, after.ratio)
	fmt.Fprintf(out, "%-32s %14s %11.1f GB %16.3f\n", "ideal", idealTime.Round(10*time.Millisecond), float64(lost)/1e9, 1.0)
	fmt.Fprintf(out, "(ideal: the replicas lost, each fetched once, evenly over the %d survivors at %.0f MB/s each, after NODE_DOWN_AFTER; ideal spread of %d equal nodes is 1)\n",
		survivors, float64(c.rate)/1e6, survivors)

	// The dead nodes come back with their data: they keep it and verify it again (simulated at the
	// same rate, not counted as moved), and the surplus goes.
	fetchedBefore = b.fetched()
	back := time.Now()
	for _, v := range victims {
		v.alive.Store(true)
	}
	if err := b.waitAtTarget(ctx, true); err != nil {
		return err
	}
	for {
		var up int64
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM nodes WHERE status = 'up'`).Scan(&up); err != nil {
			return err
		}
		if up == int64(c.nodes) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.waitSettled(ctx); err != nil {
		return err
	}
	returned := time.Since(back)
	final, err := b.spread(ctx)
	if err != nil {
		return err
	}
	var verified int64
	for _, v := range victims {
		verified += v.verified.Load()
	}
	fmt.Fprintf(out, "%-32s %14s %11.1f GB %16.3f   (%.1f GB verified again in place)\n", "fanseed: the dead nodes return", returned.Round(10*time.Millisecond),
		float64(b.fetched()-fetchedBefore)/1e9, final.ratio, float64(verified)/1e9)
	fmt.Fprintf(out, "%-32s %14s %11.1f GB %16.3f   (their copies are kept: nothing has to move)\n", "ideal", "-", 0.0, 1.0)
	return nil
}

func (b *bench) createTorrents(ctx context.Context, rng *mrand.Rand, total *int64) error {
	var show int64
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		var owner int64
		if err := tx.QueryRow(ctx, `INSERT INTO accounts (email, name, password_hash, role) VALUES ('bench@example.com', 'Bench', 'x', 'creator') RETURNING id`).Scan(&owner); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO shows (owner_id, slug, title, currency) VALUES ($1, 'bench', 'Bench', 'USD') RETURNING id`, owner).Scan(&show)
	})
	if err != nil {
		return fmt.Errorf("create show: %w", err)
	}
	for i := range b.c.torrents {
		length := b.c.minSize + rng.Int64N(b.c.maxSize-b.c.minSize+1)
		ih := make([]byte, 20)
		rand.Read(ih)
		b.lengths[hex.EncodeToString(ih)] = length
		*total += length
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			var ep int64
			if err := tx.QueryRow(ctx, `INSERT INTO episodes (show_id, title, status) VALUES ($1, $2, 'processing') RETURNING id`,
				show, fmt.Sprintf("Episode %d", i+1)).Scan(&ep); err != nil {
				return err
			}
			rec, err := seeding.CreateTorrent(ctx, tx, seeding.Record{EpisodeID: ep, InfoHash: ih, Name: fmt.Sprintf("ep%d.mp4", i+1),
				Length: length, PieceLength: 1 << 20, SHA256: make([]byte, 32), ContentType: "video/mp4", ContentPath: "/bench",
				Metainfo: []byte("d4:infod}e")})
			if err != nil {
				return err
			}
			return b.fleet.Assign(ctx, tx, rec)
		})
		if err != nil {
			return fmt.Errorf("create torrent %d: %w", i+1, err)
		}
	}
	return nil
}

// nodeLoop heartbeats while the node is alive: it advances its fetches by the time passed,
// reports what it holds, and takes its orders.
func (b *bench) nodeLoop(ctx context.Context, n *simNode) {
	tick := time.NewTicker(b.c.heartbeat)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if !n.alive.Load() {
				continue
			}
			n.advance(int64(now.Sub(last).Seconds() * float64(b.c.rate)))
			last = now
			o, err := b.fleet.Heartbeat(ctx, n.id, n.secret, n.heartbeat())
			if err != nil {
				if ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "heartbeat:", err)
				}
				continue
			}
			// The simulated nodes hold no data, so no proof of theirs could pass: their replicas
			// are recorded as proven once reported seeding, as a passed proof would record them.
			// Proofs are tested against real peers (seeding's peer-wire and prover tests).
			if _, err := b.fleet.DB.Exec(ctx, `UPDATE assignments SET proven_at = now(), proof_due = now() + interval '1 hour'
				WHERE node_id = $1 AND state = 'seeding' AND proven_at IS NULL`, n.id); err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "record proofs:", err)
			}
			n.apply(o, b.lengths, b.setup.Load())
		}
	}
}

// advance fetches budget bytes, the first torrent first, as a node fetching in order does.
func (n *simNode) advance(budget int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ih := range n.hold {
		t := n.held[ih]
		if budget <= 0 {
			return
		}
		if got := min(t.length-t.done, budget); got > 0 {
			t.done += got
			budget -= got
			if t.kept {
				n.verified.Add(got)
			} else {
				n.fetched.Add(got)
			}
		}
	}
}

func (n *simNode) heartbeat() seeding.Heartbeat {
	n.mu.Lock()
	defer n.mu.Unlock()
	hb := seeding.Heartbeat{Session: n.session}
	for _, ih := range n.hold {
		t := n.held[ih]
		state := seeding.StateFetching
		if t.done == t.length {
			state = seeding.StateSeeding
		}
		hb.DiskUsed += t.done
		hb.Torrents = append(hb.Torrents, seeding.Report{InfoHash: ih, State: state})
	}
	return hb
}

// apply holds exactly what the orders list; a new torrent starts from nothing, unless have.
func (n *simNode) apply(o seeding.Orders, lengths map[string]int64, have bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if o.Verify {
		for _, t := range n.held {
			t.done, t.kept = 0, true
		}
	}
	want := map[string]bool{}
	for _, w := range o.Torrents {
		want[w.InfoHash] = true
		if n.held[w.InfoHash] == nil {
			t := &simTorrent{length: lengths[w.InfoHash]}
			if have {
				t.done = t.length
			}
			n.held[w.InfoHash] = t
			n.hold = append(n.hold, w.InfoHash)
		}
	}
	n.hold = slices.DeleteFunc(n.hold, func(ih string) bool {
		if !want[ih] {
			delete(n.held, ih)
			return true
		}
		return false
	})
}

func (b *bench) fetched() int64 {
	var total int64
	for _, n := range b.nodes {
		total += n.fetched.Load()
	}
	return total
}

// waitAtTarget waits until every torrent is published and none is short of REPLICAS counted
// replicas (the fleet's own count, as the metric and the admin page have it); after a kill, also
// until the dead nodes are marked down, so that their copies no longer count.
func (b *bench) waitAtTarget(ctx context.Context, setup bool) error {
	for {
		h, err := b.fleet.Health(ctx)
		if err != nil {
			return err
		}
		var unpublished int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM torrents WHERE status <> 'published'`).Scan(&unpublished); err != nil {
			return err
		}
		if unpublished == 0 && h.UnderReplicated == 0 && (setup || h.Nodes[seeding.NodeDown] == int64(b.c.kill)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for every torrent at target (%d unpublished, %d under-replicated): %w", unpublished, h.UnderReplicated, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitSettled waits until no replica is being fetched or dropped and no move is under way.
func (b *bench) waitSettled(ctx context.Context) error {
	quiet := 0
	for quiet < 3 {
		var busy int
		if err := b.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
			WHERE n.status = 'up' AND a.state <> 'seeding') + (SELECT count(*) FROM replica_moves WHERE finished_at IS NULL)`).Scan(&busy); err != nil {
			return err
		}
		if busy == 0 {
			quiet++
		} else {
			quiet = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the fleet to settle: %w", ctx.Err())
		case <-time.After(b.c.reconcile):
		}
	}
	return nil
}

type spread struct {
	bytes map[int64]int64 // per up node, bytes of the torrents it seeds
	ratio float64         // max/mean over up nodes
}

func (b *bench) spread(ctx context.Context) (spread, error) {
	s := spread{bytes: map[int64]int64{}}
	rows, _ := b.pool.Query(ctx, `SELECT n.id, coalesce(sum(t.length) FILTER (WHERE a.state = 'seeding'), 0)::bigint
		FROM nodes n LEFT JOIN assignments a ON a.node_id = n.id LEFT JOIN torrents t ON t.id = a.torrent_id
		WHERE n.status = 'up' GROUP BY n.id`)
	var id, bytes int64
	var sum, most float64
	if _, err := pgx.ForEachRow(rows, []any{&id, &bytes}, func() error {
		s.bytes[id] = bytes
		sum += float64(bytes)
		most = math.Max(most, float64(bytes))
		return nil
	}); err != nil {
		return s, err
	}
	if len(s.bytes) > 0 && sum > 0 {
		s.ratio = most / (sum / float64(len(s.bytes)))
	}
	return s, nil
}
