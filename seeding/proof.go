package seeding

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/periodic"
)

// Defaults of the Prover's settings.
const (
	DefaultProofInterval = time.Hour
	DefaultProofTimeout  = 30 * time.Second
	// ProofPieces is how many pieces, chosen at random, one proof fetches whole and checks.
	ProofPieces = 2
	// TrustAfter is how many proofs in a row a suspect node must pass to be trusted again.
	TrustAfter = 3
	// maxProofRetry bounds the wait before a failed proof, or a suspect node's next one, is tried
	// again.
	maxProofRetry = time.Minute
	// proofsAtOnce is how many proofs one process runs at the same time.
	proofsAtOnce = 4
)

// Prover checks that nodes serve what they say they seed: for each replica a node reports
// seeding, it connects to the node's public address as a BitTorrent peer, fetches ProofPieces
// random pieces whole and checks them against the piece hashes of the torrent. A replica counts
// (countedReplica) only once a proof of it passed. The first proof is due as soon as the node
// reports seeding; then again at random intervals around Interval (from half to one and a half
// times it), so a node cannot tell when the next one comes.
//
// A node that fails a proof (no connection, no handshake for the torrent, a piece missing or not
// sent in time, a piece that does not match its hash) is suspect from then on, with the reason:
// every proof of its replicas is void, none of them counts, and it gets no new torrents. Its
// replicas are proven again every retry (Interval, at most a minute); once it has passed
// TrustAfter proofs in a row it is trusted again and each replica counts once proven anew.
//
// A node silent for half of NODE_DOWN_AFTER is not proven (a node that crashed is for the
// fleet's down detection, not a liar). Several control-plane processes may run provers on one
// database: a replica due is taken for the time of one proof (a lease on proof_due) by one of
// them.
type Prover struct {
	Fleet    *Fleet        // its DB, R and Episodes: a proof that completes R replicas publishes the torrent
	Interval time.Duration // mean time between proofs of one replica; DefaultProofInterval when zero
	Timeout  time.Duration // how long a node has to send the pieces of one proof; DefaultProofTimeout when zero
	Log      *slog.Logger

	peerID [20]byte
	once   sync.Once
}

func (p *Prover) interval() time.Duration { return orDefault(p.Interval, DefaultProofInterval) }

func (p *Prover) timeout() time.Duration { return orDefault(p.Timeout, DefaultProofTimeout) }

func (p *Prover) retry() time.Duration { return min(p.interval(), maxProofRetry) }

func (p *Prover) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// jitter is d times a random factor from 0.5 to 1.5.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(mrand.Int64N(int64(d)+1))
}

// ProofResult counts what one ProveDue did, for logs and tests.
type ProofResult struct {
	Passed, Failed int
	Published      int // torrents published because proofs completed their replicas
}

// dueProof is a replica taken for proving.
type dueProof struct {
	torrentID, nodeID int64
	node, addr        string
	infoHash          []byte
	metainfo          []byte
}

// ProveDue proves the replicas whose proof is due (at most a batch), a few at a time, and
// records each result.
func (p *Prover) ProveDue(ctx context.Context) (ProofResult, error) {
	p.once.Do(func() {
		copy(p.peerID[:], NodePeerIDPrefix) // the nodes count what they send it as fleet traffic, not fans'
		rand.Read(p.peerID[len(NodePeerIDPrefix):])
	})
	lease := 2*p.timeout() + 10*time.Second
	rows, _ := p.Fleet.DB.Query(ctx, `
		WITH due AS (
			SELECT a.torrent_id, a.node_id FROM assignments a
			JOIN nodes n ON n.id = a.node_id JOIN torrents t ON t.id = a.torrent_id
			WHERE a.state = 'seeding' AND (a.proof_due IS NULL OR a.proof_due <= now())
			  AND n.status IN ('up', 'draining') AND t.status IN ('processing', 'published')
			  AND n.last_heartbeat > now() - $3::bigint * interval '1 millisecond'
			ORDER BY n.suspect_at IS NOT NULL, a.proof_due NULLS FIRST LIMIT $1 -- a silent suspect node does not hold up the others' proofs
			FOR NO KEY UPDATE OF a SKIP LOCKED
		)
		UPDATE assignments a SET proof_due = now() + $2::bigint * interval '1 millisecond'
		FROM due, nodes n, torrents t
		WHERE a.torrent_id = due.torrent_id AND a.node_id = due.node_id AND n.id = a.node_id AND t.id = a.torrent_id
		RETURNING a.torrent_id, a.node_id, n.name, n.public_addr, t.infohash, t.metainfo`,
		proofsAtOnce*4, lease.Milliseconds(), (p.Fleet.downAfter() / 2).Milliseconds())
	var d dueProof
	var due []dueProof
	if _, err := pgx.ForEachRow(rows, []any{&d.torrentID, &d.nodeID, &d.node, &d.addr, &d.infoHash, &d.metainfo}, func() error {
		due = append(due, d)
		return nil
	}); err != nil {
		return ProofResult{}, fmt.Errorf("take replicas due for a proof: %w", err)
	}
	var res ProofResult
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, proofsAtOnce)
	var wg sync.WaitGroup
	for _, d := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			proofErr := p.prove(ctx, d)
			if ctx.Err() != nil {
				return // shutting down: the lease runs out and another proof comes
			}
			if pe := (*ProofError)(nil); proofErr != nil && !errors.As(proofErr, &pe) {
				// Not the node's doing (a torrent this prover cannot read): tried again after the lease.
				p.log().Warn("cannot prove a replica", slog.String("node", d.node), slog.Int64("torrent_id", d.torrentID), slog.Any("error", proofErr))
				return
			}
			published, err := p.record(ctx, d, proofErr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmpErr(firstErr, err)
				return
			}
			res.Published += published
			if proofErr != nil {
				res.Failed++
			} else {
				res.Passed++
			}
		}()
	}
	wg.Wait()
	return res, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// prove runs one proof: nil if the node sent every piece asked for and each matched its hash.
func (p *Prover) prove(ctx context.Context, d dueProof) error {
	var mi metainfo.MetaInfo
	if err := bencode.Unmarshal(d.metainfo, &mi); err != nil {
		return fmt.Errorf("the torrent's metainfo: %w", err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return fmt.Errorf("the torrent's info: %w", err)
	}
	if !info.HasV1() || info.NumPieces() == 0 {
		return errors.New("the torrent has no v1 pieces to check")
	}
	var ih [20]byte
	copy(ih[:], d.infoHash)
	pieces := mrand.Perm(info.NumPieces())[:min(ProofPieces, info.NumPieces())]
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	return FetchPieces(ctx, d.addr, ih, p.peerID, &info, pieces)
}

// record stores a proof's result, publishes what it completed and returns how many torrents
// that published. The node's row is locked before its assignments, as heartbeats and reconciles
// lock them, and the torrent's between them. A result for a replica no longer seeding (dropped meanwhile, or the node went down)
// is dropped: a node that let a torrent go when told to did nothing wrong.
func (p *Prover) record(ctx context.Context, d dueProof, proofErr error) (published int, err error) {
	log := p.log().With(slog.String("node", d.node), slog.Int64("torrent_id", d.torrentID), slog.String("addr", d.addr))
	err = pgx.BeginFunc(ctx, p.Fleet.DB, func(tx pgx.Tx) error {
		var suspect bool
		var passed int
		if err := tx.QueryRow(ctx, `SELECT suspect_at IS NOT NULL, proofs_passed FROM nodes WHERE id = $1 FOR NO KEY UPDATE`,
			d.nodeID).Scan(&suspect, &passed); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return fmt.Errorf("lock node %d: %w", d.nodeID, err)
		}
		// The torrent's row too, so that proofs of its replicas recorded at the same time see each
		// other: the last of them to complete R publishes it.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM torrents WHERE id = $1 FOR NO KEY UPDATE`, d.torrentID); err != nil {
			return fmt.Errorf("lock torrent %d: %w", d.torrentID, err)
		}
		var live bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM assignments WHERE torrent_id = $1 AND node_id = $2 AND state = 'seeding' FOR NO KEY UPDATE)`,
			d.torrentID, d.nodeID).Scan(&live); err != nil {
			return fmt.Errorf("lock assignment: %w", err)
		}
		if !live {
			return nil
		}
		if proofErr == nil {
			passed++
			trusted := !suspect || passed >= TrustAfter
			if _, err := tx.Exec(ctx, `UPDATE nodes SET proofs_passed = least($2, 1000000),
					suspect_at = CASE WHEN $3 THEN NULL ELSE suspect_at END,
					suspect_reason = CASE WHEN $3 THEN '' ELSE suspect_reason END
				WHERE id = $1`, d.nodeID, passed, trusted); err != nil {
				return fmt.Errorf("record a passed proof: %w", err)
			}
			next := p.retry()
			if trusted {
				next = p.interval()
			}
			if _, err := tx.Exec(ctx, `UPDATE assignments SET proven_at = now(), proof_due = now() + $3::bigint * interval '1 millisecond'
				WHERE torrent_id = $1 AND node_id = $2`, d.torrentID, d.nodeID, jitter(next).Milliseconds()); err != nil {
				return fmt.Errorf("record a passed proof: %w", err)
			}
			if suspect && trusted {
				log.Info("seedbox node trusted again", slog.Int("proofs_passed", passed))
			} else {
				log.Debug("seedbox node proved a replica")
			}
			published, err = p.Fleet.publishReady(ctx, tx)
			return err
		}
		reason := fmt.Sprintf("torrent %x: %v", d.infoHash, proofErr)
		if len(reason) > 500 {
			reason = reason[:500]
		}
		if _, err := tx.Exec(ctx, `UPDATE nodes SET proofs_passed = 0, suspect_at = coalesce(suspect_at, now()), suspect_reason = $2
			WHERE id = $1`, d.nodeID, reason); err != nil {
			return fmt.Errorf("record a failed proof: %w", err)
		}
		// Every proof of the node is void: its replicas are proven again, soon.
		if _, err := tx.Exec(ctx, `UPDATE assignments SET proven_at = NULL,
				proof_due = CASE WHEN torrent_id = $2 THEN now() + $3::bigint * interval '1 millisecond'
					ELSE least(coalesce(proof_due, now()), now() + $4::bigint * interval '1 millisecond') END
			WHERE node_id = $1`, d.nodeID, d.torrentID, jitter(p.retry()).Milliseconds(), jitter(p.retry()).Milliseconds()); err != nil {
			return fmt.Errorf("record a failed proof: %w", err)
		}
		if !suspect {
			log.Warn("seedbox node failed a proof: it is suspect and its replicas do not count", slog.String("reason", reason))
		} else {
			log.Debug("suspect seedbox node failed a proof again", slog.String("reason", reason))
		}
		return nil
	})
	if err == nil && published > 0 && p.Fleet.Published != nil {
		p.Fleet.Published.Invalidate() // this process's tracker takes the torrent at once
	}
	return published, err
}

// Run proves due replicas every interval until ctx ends.
func (p *Prover) Run(ctx context.Context, every time.Duration) {
	periodic.Loop{Name: "prove replicas", Every: every, Log: p.Log}.Run(ctx, func(ctx context.Context) error {
		res, err := p.ProveDue(ctx)
		if err == nil && res.Published > 0 {
			p.log().Info("proofs published torrents", slog.Int("published", res.Published))
		}
		return err
	})
}

// orDefault is d when it is set (above zero), def otherwise: a duration left out of a
// configuration takes its default.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
