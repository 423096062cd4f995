package seeding

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// Placement: where a new replica of a torrent goes. The rule, applied one replica at a time:
//
//  1. Candidates are the up nodes (heartbeating) that do not hold the torrent and have room for it.
//  2. Zones: if some candidates are in a zone (NODE_ZONE) where no other live replica of the
//     torrent is, only those remain. A node without a zone is a zone of its own. So no two
//     replicas share a zone while a zone without one has a node with room.
//  3. Load by fraction: a node's fill is (bytes it holds + the torrent) / its capacity. The
//     candidates whose fill would be within one copy of the torrent (its length over the mean
//     capacity) of the lowest remain: small nodes take their share as big ones do.
//  4. Spread of failures: among those, the node sharing the fewest torrents with the torrent's
//     other holders wins; then the lowest fill; then a rendezvous hash of (torrent, node), so that
//     ties fall differently for each torrent rather than always to the same node.
//
// With N equal nodes and T equal torrents of R replicas, step 4 keeps the torrents any two nodes
// share near the even share T·R·(R-1) / (N·(N-1)); the tests hold it to at most twice that.

// placeNode is a node as placement sees it.
type placeNode struct {
	id        int64
	zone      string // its zone, or a zone of its own when it has none
	capacity  int64
	used      int64 // bytes of the torrents it holds (not dropping)
	status    string
	candidate bool // up and heartbeating: it may take new replicas
}

func (n *placeNode) fill(extra int64) float64 {
	return float64(n.used+extra) / float64(n.capacity)
}

// fleetState is what placing and rebalancing decide from, read under the node locks.
type fleetState struct {
	nodes   map[int64]*placeNode
	holders map[int64][]int64 // torrent id: the nodes holding it (not dropping)
	pairs   map[[2]int64]int  // two node ids, lower first: the torrents both hold
}

func pairKey(a, b int64) [2]int64 {
	if a > b {
		a, b = b, a
	}
	return [2]int64{a, b}
}

// loadFleetState reads every node that is not removed and every replica not being dropped. The
// caller holds the node locks.
func (f *Fleet) loadFleetState(ctx context.Context, tx pgx.Tx) (*fleetState, error) {
	s := &fleetState{nodes: map[int64]*placeNode{}, holders: map[int64][]int64{}, pairs: map[[2]int64]int{}}
	rows, _ := tx.Query(ctx, `
		SELECT id, zone, capacity_bytes, status,
			status = 'up' AND `+trustedNode+` AND last_heartbeat > now() - $1::bigint * interval '1 millisecond'
		FROM nodes n WHERE status <> 'removed'`, f.downAfter().Milliseconds())
	var n placeNode
	if _, err := pgx.ForEachRow(rows, []any{&n.id, &n.zone, &n.capacity, &n.status, &n.candidate}, func() error {
		c := n
		if c.zone == "" {
			c.zone = "node:" + strconv.FormatInt(c.id, 10)
		}
		s.nodes[c.id] = &c
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read nodes for placement: %w", err)
	}
	rows, _ = tx.Query(ctx, `
		SELECT a.torrent_id, a.node_id, t.length FROM assignments a JOIN torrents t ON t.id = a.torrent_id
		WHERE a.state <> 'dropping' ORDER BY a.torrent_id, a.node_id`)
	var torrentID, nodeID, length int64
	if _, err := pgx.ForEachRow(rows, []any{&torrentID, &nodeID, &length}, func() error {
		node := s.nodes[nodeID]
		if node == nil {
			return nil
		}
		node.used += length
		for _, h := range s.holders[torrentID] {
			s.pairs[pairKey(h, nodeID)]++
		}
		s.holders[torrentID] = append(s.holders[torrentID], nodeID)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read replicas for placement: %w", err)
	}
	return s, nil
}

// holds reports whether a node holds a torrent (not dropping).
func (s *fleetState) holds(torrentID, nodeID int64) bool {
	return slices.Contains(s.holders[torrentID], nodeID)
}

// liveZones are the zones of the torrent's holders that are not down, but for skip (a copy that
// is moving away).
func (s *fleetState) liveZones(torrentID, skip int64) map[string]bool {
	zones := map[string]bool{}
	for _, h := range s.holders[torrentID] {
		if n := s.nodes[h]; n != nil && h != skip && n.status != NodeDown {
			zones[n.zone] = true
		}
	}
	return zones
}

// shared is how many torrents a node shares with the torrent's holders.
func (s *fleetState) shared(torrentID, nodeID int64) int {
	total := 0
	for _, h := range s.holders[torrentID] {
		total += s.pairs[pairKey(h, nodeID)]
	}
	return total
}

// rendezvous is the tie-break of (torrent, node): a fixed, well-mixed order per torrent.
func rendezvous(torrentID, nodeID int64) uint64 {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(torrentID))
	binary.BigEndian.PutUint64(b[8:], uint64(nodeID))
	h := fnv.New64a()
	h.Write(b[:])
	return h.Sum64()
}

// pick chooses the node for one more replica of a torrent by the placement rule, or returns
// false when no up node has room.
func (s *fleetState) pick(torrentID, length int64) (*placeNode, bool) {
	var cands []*placeNode
	for _, n := range s.nodes {
		if n.candidate && n.capacity-n.used >= length && !s.holds(torrentID, n.id) {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return nil, false
	}
	zones := s.liveZones(torrentID, 0)
	if fresh := slices.DeleteFunc(slices.Clone(cands), func(n *placeNode) bool { return zones[n.zone] }); len(fresh) > 0 {
		cands = fresh
	}
	lowest, capacity := cands[0].fill(length), int64(0)
	for _, n := range cands {
		lowest = min(lowest, n.fill(length))
		capacity += n.capacity
	}
	slack := float64(length) / (float64(capacity) / float64(len(cands)))
	cands = slices.DeleteFunc(cands, func(n *placeNode) bool { return n.fill(length) > lowest+slack })
	best := slices.MinFunc(cands, func(a, b *placeNode) int {
		return cmp.Or(
			cmp.Compare(s.shared(torrentID, a.id), s.shared(torrentID, b.id)),
			cmp.Compare(a.fill(length), b.fill(length)),
			cmp.Compare(rendezvous(torrentID, a.id), rendezvous(torrentID, b.id)),
		)
	})
	return best, true
}

// add records a new replica in the state.
func (s *fleetState) add(torrentID, length int64, n *placeNode) {
	for _, h := range s.holders[torrentID] {
		s.pairs[pairKey(h, n.id)]++
	}
	s.holders[torrentID] = append(s.holders[torrentID], n.id)
	n.used += length
}

// remove takes a replica out of the state.
func (s *fleetState) remove(torrentID, length int64, nodeID int64) {
	hs := slices.DeleteFunc(s.holders[torrentID], func(h int64) bool { return h == nodeID })
	s.holders[torrentID] = hs
	for _, h := range hs {
		s.pairs[pairKey(h, nodeID)]--
	}
	if n := s.nodes[nodeID]; n != nil {
		n.used -= length
	}
}

// placement is a replica chosen for a node.
type placement struct{ torrentID, nodeID int64 }

// place chooses up to n nodes for new replicas of a torrent and records them in the state.
func (s *fleetState) place(torrentID, length int64, n int) []placement {
	var out []placement
	for range n {
		node, ok := s.pick(torrentID, length)
		if !ok {
			break
		}
		s.add(torrentID, length, node)
		out = append(out, placement{torrentID, node.id})
	}
	return out
}

// insertPlacements writes new replicas; a node still dropping the torrent is asked to keep it.
func insertPlacements(ctx context.Context, tx pgx.Tx, ps []placement) (int64, error) {
	if len(ps) == 0 {
		return 0, nil
	}
	torrents, nodes := make([]int64, len(ps)), make([]int64, len(ps))
	for i, p := range ps {
		torrents[i], nodes[i] = p.torrentID, p.nodeID
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO assignments (torrent_id, node_id) SELECT * FROM unnest($1::bigint[], $2::bigint[])
		ON CONFLICT (torrent_id, node_id) DO UPDATE SET state = 'assigned', error = '', reverify = false, updated_at = now()`,
		torrents, nodes)
	if err != nil {
		return 0, fmt.Errorf("assign replicas: %w", err)
	}
	return tag.RowsAffected(), nil
}

// assign adds up to n replicas of a torrent by the placement rule. The caller holds the node
// locks.
func (f *Fleet) assign(ctx context.Context, tx pgx.Tx, torrentID, length int64, n int) (int64, error) {
	s, err := f.loadFleetState(ctx, tx)
	if err != nil {
		return 0, err
	}
	added, err := insertPlacements(ctx, tx, s.place(torrentID, length, n))
	if err != nil {
		return 0, fmt.Errorf("torrent %d: %w", torrentID, err)
	}
	return added, nil
}

// placeShort tops every live torrent up to its target (REPLICAS, plus what demand added) of
// replicas placed on up nodes: first every torrent to REPLICAS, then the extra ones of busy
// torrents. The caller holds the fleet lock and the node locks.
func (f *Fleet) placeShort(ctx context.Context, tx pgx.Tx) (int, error) {
	type short struct{ id, length, placed, target int64 }
	rows, _ := tx.Query(ctx, `
		SELECT t.id, t.length, (SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
			WHERE a.torrent_id = t.id AND a.state <> 'dropping' AND n.status = 'up' AND `+trustedNode+`), $1::int + t.extra_replicas
		FROM torrents t WHERE t.status IN ('processing', 'published') ORDER BY t.id`, f.replicas())
	var sh short
	var under []short
	if _, err := pgx.ForEachRow(rows, []any{&sh.id, &sh.length, &sh.placed, &sh.target}, func() error {
		if sh.placed < sh.target {
			under = append(under, sh)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("find under-replicated torrents: %w", err)
	}
	if len(under) == 0 {
		return 0, nil
	}
	s, err := f.loadFleetState(ctx, tx)
	if err != nil {
		return 0, err
	}
	var ps []placement
	for _, u := range under { // REPLICAS first, for every torrent
		if base := int64(f.replicas()); u.placed < base {
			ps = append(ps, s.place(u.id, u.length, int(base-u.placed))...)
		}
	}
	for _, u := range under { // then what demand adds
		if placed := max(u.placed, int64(f.replicas())); placed < u.target {
			ps = append(ps, s.place(u.id, u.length, int(u.target-placed))...)
		}
	}
	added, err := insertPlacements(ctx, tx, ps)
	return int(added), err
}
