package seeding

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/fanseed/fanseed/periodic"
	"github.com/jackc/pgx/v5"
)

// Rebalancing. Placement spreads new replicas; the rebalancer evens out what placement could not
// foresee: nodes that joined, returned, or were given more room. In the background it moves
// counted replicas from the fullest up nodes (by fill: bytes held / capacity) to the emptiest,
// one move making the fleet strictly more even: a move is made only when the destination, after
// it, is no fuller than the source (so the sum over nodes of used² / capacity drops, and moves
// end). A move never takes its torrent below its target: the new copy is fetched first, and the
// old one dropped only once the new one counts and the others still give the target without it.
// Moves respect zones (the destination's zone holds no other live replica of the torrent), start
// only while every published torrent has REPLICAS counted replicas (repairs go first), and the
// bytes of the moves started in any minute stay within RebalanceBytesPerMinute: a torrent larger
// than that is never moved. A move whose new copy does not count within PUBLISH_TIMEOUT is given up.

// DefaultRebalanceBytesPerMinute is Fleet.RebalanceBytesPerMinute when zero: 1 GiB a minute.
const DefaultRebalanceBytesPerMinute = 1 << 30

func (f *Fleet) rebalanceBytesPerMinute() int64 {
	if f.RebalanceBytesPerMinute == 0 {
		return DefaultRebalanceBytesPerMinute
	}
	return f.RebalanceBytesPerMinute
}

// RebalanceResult counts what one Rebalance did, for logs and tests.
type RebalanceResult struct {
	Skipped  bool  // another process holds the fleet lock
	Started  int   // moves started
	Bytes    int64 // the bytes of the moves started
	Finished int   // moves whose new copy counts, the old one dropped
	GaveUp   int   // moves whose new copy went away or never counted
}

// Rebalance finishes the moves whose new copy counts, gives up those that cannot finish, and
// starts moves toward an even spread within the minute's byte budget. One process at a time
// does it (the fleet lock, as Reconcile); the others skip.
func (f *Fleet) Rebalance(ctx context.Context) (RebalanceResult, error) {
	var res RebalanceResult
	perMinute := f.rebalanceBytesPerMinute()
	if perMinute < 0 {
		return res, nil
	}
	var err error
	res.Skipped, err = f.underFleetLock(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM replica_moves WHERE finished_at IS NOT NULL AND started_at < now() - interval '1 minute'`); err != nil {
			return fmt.Errorf("forget old moves: %w", err)
		}
		// Finished: the new copy counts, and the others give the target without the old one.
		tag, err := tx.Exec(ctx, `
			WITH done AS (
				UPDATE replica_moves m SET finished_at = now()
				FROM torrents t
				WHERE t.id = m.torrent_id AND m.finished_at IS NULL
				AND EXISTS (SELECT 1 FROM assignments a JOIN nodes n ON n.id = a.node_id
					WHERE a.torrent_id = m.torrent_id AND a.node_id = m.to_node AND n.status = 'up' AND `+countedReplica+`)
				AND (SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
					WHERE a.torrent_id = m.torrent_id AND a.node_id <> m.from_node AND n.status = 'up' AND `+countedReplica+`)
					>= $1::int + t.extra_replicas
				RETURNING m.torrent_id, m.from_node
			)
			UPDATE assignments a SET state = 'dropping', updated_at = now()
			FROM done WHERE a.torrent_id = done.torrent_id AND a.node_id = done.from_node AND a.state <> 'dropping'`, f.replicas())
		if err != nil {
			return fmt.Errorf("finish moves: %w", err)
		}
		res.Finished = int(tag.RowsAffected())
		// Given up: the new copy is gone, its node is not up, or it took too long. A copy still
		// fetching becomes an ordinary surplus fetch, dropped once the torrent has its target.
		tag, err = tx.Exec(ctx, `
			UPDATE replica_moves m SET finished_at = now() WHERE m.finished_at IS NULL AND (
				m.started_at < now() - $1::bigint * interval '1 millisecond'
				OR NOT EXISTS (SELECT 1 FROM assignments a JOIN nodes n ON n.id = a.node_id
					WHERE a.torrent_id = m.torrent_id AND a.node_id = m.to_node AND a.state <> 'dropping' AND n.status = 'up'))`,
			f.publishTimeout().Milliseconds())
		if err != nil {
			return fmt.Errorf("give up moves: %w", err)
		}
		res.GaveUp = int(tag.RowsAffected())
		res.Started, res.Bytes, err = f.startMoves(ctx, tx, perMinute)
		return err
	})
	if err != nil {
		return RebalanceResult{}, fmt.Errorf("rebalance fleet: %w", err)
	}
	return res, nil
}

// movable is a counted replica the rebalancer may move.
type movable struct{ torrentID, length int64 }

// startMoves chooses moves within the budget left this minute and records them.
func (f *Fleet) startMoves(ctx context.Context, tx pgx.Tx, perMinute int64) (int, int64, error) {
	var spent int64
	var short bool
	if err := tx.QueryRow(ctx, `
		SELECT coalesce((SELECT sum(bytes) FROM replica_moves WHERE started_at > now() - interval '1 minute'), 0)::bigint,
			EXISTS (SELECT 1 FROM torrents t WHERE t.status = 'published' AND `+countedReplicas+` < $1)`,
		f.replicas()).Scan(&spent, &short); err != nil {
		return 0, 0, fmt.Errorf("rebalance budget: %w", err)
	}
	budget := perMinute - spent
	if short || budget <= 0 {
		return 0, 0, nil
	}
	s, err := f.loadFleetState(ctx, tx)
	if err != nil {
		return 0, 0, err
	}
	// What each up node could give: its counted replicas of torrents at their target and not
	// moving. A copy an unfinished move takes away is no longer the source's.
	rows, _ := tx.Query(ctx, `
		SELECT a.node_id, t.id, t.length FROM assignments a JOIN nodes n ON n.id = a.node_id JOIN torrents t ON t.id = a.torrent_id
		WHERE n.status = 'up' AND t.status IN ('processing', 'published') AND `+countedReplica+`
		AND NOT EXISTS (SELECT 1 FROM replica_moves m WHERE m.torrent_id = t.id)
		AND (SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
			WHERE a.torrent_id = t.id AND n.status = 'up' AND `+countedReplica+`) >= $1::int + t.extra_replicas
		ORDER BY a.node_id, t.length DESC, t.id`, f.replicas())
	give := map[int64][]movable{}
	var nodeID int64
	var m movable
	if _, err := pgx.ForEachRow(rows, []any{&nodeID, &m.torrentID, &m.length}, func() error {
		give[nodeID] = append(give[nodeID], m)
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("find movable replicas: %w", err)
	}
	rows, _ = tx.Query(ctx, `SELECT m.from_node, t.length FROM replica_moves m JOIN torrents t ON t.id = m.torrent_id WHERE m.finished_at IS NULL`)
	if _, err := pgx.ForEachRow(rows, []any{&nodeID, &m.length}, func() error {
		if n := s.nodes[nodeID]; n != nil {
			n.used -= m.length
		}
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("read moves: %w", err)
	}
	var up []*placeNode
	for _, n := range s.nodes {
		if n.status == NodeUp {
			up = append(up, n)
		}
	}
	type move struct{ torrentID, from, to, bytes int64 }
	var moves []move
	var started int64
	for budget > 0 {
		mv, ok := s.bestMove(up, give, budget)
		if !ok {
			break
		}
		src, dst := s.nodes[mv.from], s.nodes[mv.to]
		s.remove(mv.torrentID, mv.length, src.id)
		s.add(mv.torrentID, mv.length, dst)
		give[src.id] = slices.DeleteFunc(give[src.id], func(g movable) bool { return g.torrentID == mv.torrentID })
		moves = append(moves, move{mv.torrentID, src.id, dst.id, mv.length})
		budget -= mv.length
		started += mv.length
	}
	if len(moves) == 0 {
		return 0, 0, nil
	}
	var ps []placement
	torrents, froms, tos, bytes := make([]int64, len(moves)), make([]int64, len(moves)), make([]int64, len(moves)), make([]int64, len(moves))
	for i, mv := range moves {
		torrents[i], froms[i], tos[i], bytes[i] = mv.torrentID, mv.from, mv.to, mv.bytes
		ps = append(ps, placement{mv.torrentID, mv.to})
	}
	if _, err := insertPlacements(ctx, tx, ps); err != nil {
		return 0, 0, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO replica_moves (torrent_id, from_node, to_node, bytes)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])`, torrents, froms, tos, bytes); err != nil {
		return 0, 0, fmt.Errorf("record moves: %w", err)
	}
	return len(moves), started, nil
}

// chosenMove is one replica to move.
type chosenMove struct{ torrentID, from, to, length int64 }

// bestMove finds the move that helps most: from the fullest node that has one to the emptiest
// that can take it, the largest replica within the budget after which the destination is no
// fuller than the source.
func (s *fleetState) bestMove(up []*placeNode, give map[int64][]movable, budget int64) (chosenMove, bool) {
	byFill := func(a, b *placeNode) int { return cmp.Or(cmp.Compare(a.fill(0), b.fill(0)), cmp.Compare(a.id, b.id)) }
	slices.SortFunc(up, byFill)
	for i := len(up) - 1; i > 0; i-- {
		src := up[i]
		for _, dst := range up[:i] {
			if !dst.candidate || dst.fill(0) >= src.fill(0) {
				continue
			}
			for _, g := range give[src.id] { // largest first
				if g.length > budget || dst.capacity-dst.used < g.length || s.holds(g.torrentID, dst.id) {
					continue
				}
				if dst.fill(g.length) > float64(src.used-g.length)/float64(src.capacity) {
					continue
				}
				if s.liveZones(g.torrentID, src.id)[dst.zone] {
					continue
				}
				return chosenMove{g.torrentID, src.id, dst.id, g.length}, true
			}
		}
	}
	return chosenMove{}, false
}

// RunRebalance rebalances every interval until ctx ends. Its runs fall halfway between those of
// Run with the same interval, so that neither always finds the other holding the fleet lock.
func (f *Fleet) RunRebalance(ctx context.Context, every time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(every / 2):
	}
	periodic.Loop{Name: "rebalance fleet", Every: every, Log: f.Log}.Run(ctx, func(ctx context.Context) error {
		res, err := f.Rebalance(ctx)
		if err == nil && res.Started+res.Finished+res.GaveUp > 0 {
			f.Log.Info("fleet rebalanced", slog.Int("moves_started", res.Started), slog.Int64("bytes", res.Bytes),
				slog.Int("moves_finished", res.Finished), slog.Int("moves_given_up", res.GaveUp))
		}
		return err
	})
}
