package seeding

import (
	"context"
	"fmt"
	"time"
)

// SeedingNodes counts a torrent's counted replicas (see countedReplica): nodes proven to seed it,
// which fans can fetch it from now, and what publishing waits for until there are R of them.
func SeedingNodes(ctx context.Context, db DBTX, torrentID int64) (int, error) {
	var n int
	err := db.QueryRow(ctx, `
		SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
		WHERE a.torrent_id = $1 AND `+countedReplica, torrentID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count nodes seeding torrent %d: %w", torrentID, err)
	}
	return n, nil
}

// FanCounts returns the seeders and leechers in a torrent's swarm now, as the tracker knows them
// (its own peers and those other serve processes shared), leaving out seedbox nodes: the fans
// alone. Peers past their expiry are not counted.
func (t *Tracker) FanCounts(ih [20]byte) (seeders, leechers int) {
	now := t.clock()
	cutoff := now.Add(-2 * t.interval())
	loaded := t.loadUnsynced([][20]byte{ih}, cutoff)
	t.mu.Lock()
	defer t.mu.Unlock()
	if sh, ok := loaded[ih]; ok {
		if s := t.swarm(ih); !s.synced {
			s.install(sh, t.down)
		}
	}
	s := t.swarms[ih]
	if s == nil {
		return 0, 0
	}
	count := func(id [20]byte, seeder bool, seen time.Time) {
		if IsNodePeerID(id) || seen.Before(cutoff) {
			return
		}
		if seeder {
			seeders++
		} else {
			leechers++
		}
	}
	for _, p := range s.peers {
		count(p.id, p.seeder, p.seen)
	}
	for _, r := range s.remote {
		if s.peers[r.addr] == nil {
			count(r.id, r.seeder, now)
		}
	}
	return seeders, leechers
}

// ReplicaTarget is R, the number of nodes that must seed a torrent before it is published.
func (f *Fleet) ReplicaTarget() int { return f.replicas() }

// FanBytesServed is what the fleet uploaded of a torrent to fans, in all: every node's bytes
// served less those it sent to other nodes.
func FanBytesServed(ctx context.Context, db DBTX, torrentID int64) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT coalesce(sum(greatest(bytes - to_nodes, 0)), 0)::bigint FROM torrent_served WHERE torrent_id = $1`, torrentID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("bytes served to fans of torrent %d: %w", torrentID, err)
	}
	return n, nil
}
