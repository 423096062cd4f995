package seeding

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Good copies are kept. A node marked down keeps its assignments: they stop counting while it is
// down (countedReplica), and the fleet places replacements elsewhere. When it returns, its copies
// are marked for verifying again (reverify) and their proofs voided: the node hashes their data
// again before it reports them seeding, the control plane proves them again, and meanwhile they are not dropped as surplus fetches. Once they count, the
// torrent has more counted replicas than its target; dropSurplus lets the surplus go, but only
// once every published torrent has its REPLICAS counted replicas, and never below a torrent's
// own target.

// keepReturningCopies marks the copies of a node that was down, as it comes back, to be verified
// again before they count. It runs in the transaction that brings the node up.
func keepReturningCopies(ctx context.Context, tx pgx.Tx, nodeID int64) error {
	// Their proofs go too: each counts again once proven anew.
	if _, err := tx.Exec(ctx, `UPDATE assignments SET state = 'assigned', reverify = true, proven_at = NULL, proof_due = NULL,
		updated_at = now() WHERE node_id = $1 AND state <> 'dropping'`, nodeID); err != nil {
		return fmt.Errorf("keep the copies of returning node %d: %w", nodeID, err)
	}
	return nil
}

// dropSurplus drops counted replicas beyond their torrent's target (a returning node's copies
// beside their replacements, or the extra replicas of a torrent whose swarm calmed down), once
// every published torrent has at least REPLICAS counted replicas. Of a torrent's copies it drops
// first one that shares its zone with another copy, then the one on the fullest node (by
// fraction), then the newest: a replacement made while a node was down goes before the original.
// Torrents being moved by the rebalancer are left to it. The caller holds the fleet lock and the
// node locks.
func (f *Fleet) dropSurplus(ctx context.Context, tx pgx.Tx) (int, error) {
	var short bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM torrents t WHERE t.status = 'published' AND `+countedReplicas+` < $1)`,
		f.replicas()).Scan(&short); err != nil {
		return 0, fmt.Errorf("check replicas before dropping surplus: %w", err)
	}
	if short {
		return 0, nil
	}
	type copyOf struct {
		torrentID, nodeID, length, target int64
		created                           time.Time
	}
	rows, _ := tx.Query(ctx, `
		WITH counted AS (
			SELECT a.torrent_id, a.node_id, a.created_at FROM assignments a JOIN nodes n ON n.id = a.node_id
			WHERE n.status = 'up' AND `+countedReplica+`
		), over AS (
			SELECT t.id, t.length, $1::int + t.extra_replicas AS target FROM torrents t
			WHERE t.status IN ('processing', 'published')
			AND NOT EXISTS (SELECT 1 FROM replica_moves m WHERE m.torrent_id = t.id AND m.finished_at IS NULL)
			AND (SELECT count(*) FROM counted c WHERE c.torrent_id = t.id) > $1::int + t.extra_replicas
		)
		SELECT c.torrent_id, c.node_id, o.length, o.target, c.created_at FROM counted c JOIN over o ON o.id = c.torrent_id
		ORDER BY c.torrent_id, c.node_id`, f.replicas())
	var c copyOf
	byTorrent := map[int64][]copyOf{}
	var order []int64
	if _, err := pgx.ForEachRow(rows, []any{&c.torrentID, &c.nodeID, &c.length, &c.target, &c.created}, func() error {
		if byTorrent[c.torrentID] == nil {
			order = append(order, c.torrentID)
		}
		byTorrent[c.torrentID] = append(byTorrent[c.torrentID], c)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("find surplus replicas: %w", err)
	}
	if len(order) == 0 {
		return 0, nil
	}
	s, err := f.loadFleetState(ctx, tx)
	if err != nil {
		return 0, err
	}
	var torrents, nodes []int64
	for _, id := range order {
		copies := byTorrent[id]
		for int64(len(copies)) > copies[0].target {
			zones := map[string]int{}
			for _, c := range copies {
				zones[s.nodes[c.nodeID].zone]++
			}
			drop := slices.MaxFunc(copies, func(a, b copyOf) int {
				na, nb := s.nodes[a.nodeID], s.nodes[b.nodeID]
				return cmp.Or(
					cmp.Compare(min(zones[na.zone], 2), min(zones[nb.zone], 2)),
					cmp.Compare(na.fill(0), nb.fill(0)),
					a.created.Compare(b.created),
					cmp.Compare(a.nodeID, b.nodeID),
				)
			})
			copies = slices.DeleteFunc(copies, func(c copyOf) bool { return c.nodeID == drop.nodeID })
			s.remove(id, drop.length, drop.nodeID)
			torrents, nodes = append(torrents, id), append(nodes, drop.nodeID)
		}
	}
	tag, err := tx.Exec(ctx, `
		UPDATE assignments a SET state = 'dropping', updated_at = now()
		FROM unnest($1::bigint[], $2::bigint[]) AS d(torrent_id, node_id)
		WHERE a.torrent_id = d.torrent_id AND a.node_id = d.node_id`, torrents, nodes)
	if err != nil {
		return 0, fmt.Errorf("drop surplus replicas: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
