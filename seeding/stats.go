package seeding

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SwarmDay is one day of the tracker's counters over a set of torrents.
type SwarmDay struct {
	Day       time.Time `db:"day"`
	Completed int64     `db:"completed"`  // finished downloads (event=completed)
	PeakPeers int64     `db:"peak_peers"` // the most seeders plus leechers seen in one bucket
	Announces int64     `db:"announces"`
	// Downloaders first seen that day: each address counts once per torrent for good.
	Downloaders int64 `db:"downloaders"`
}

// SwarmDaily sums the tracker's five-minute buckets per day in [from, to).
func SwarmDaily(ctx context.Context, db DBTX, torrentIDs []int64, from, to time.Time) ([]SwarmDay, error) {
	rows, _ := db.Query(ctx, `
		SELECT day, sum(completed) AS completed, max(peers) AS peak_peers, sum(announces) AS announces,
		       sum(downloaders) AS downloaders
		FROM (SELECT date_trunc('day', bucket AT TIME ZONE 'UTC') AS day, bucket,
		             sum(completed) AS completed, sum(seeders + leechers) AS peers, sum(announces) AS announces,
		             sum(downloaders) AS downloaders
		      FROM swarm_stats WHERE torrent_id = ANY($1) AND bucket >= $2 AND bucket < $3
		      GROUP BY bucket) b
		GROUP BY day ORDER BY day`, torrentIDs, from, to)
	days, err := pgx.CollectRows(rows, pgx.RowToStructByName[SwarmDay])
	if err != nil {
		return nil, fmt.Errorf("swarm by day: %w", err)
	}
	return days, nil
}

// TorrentTraffic is a torrent's downloads and what the fleet has uploaded of it.
type TorrentTraffic struct {
	TorrentID   int64 `db:"torrent_id"`
	Completed   int64 `db:"completed"`
	BytesServed int64 `db:"bytes_served"` // by the seedbox fleet to fans, in all (not to other nodes)
}

// Traffic returns each torrent's counters, by torrent id.
func Traffic(ctx context.Context, db DBTX, torrentIDs []int64, from, to time.Time) (map[int64]TorrentTraffic, error) {
	rows, _ := db.Query(ctx, `
		SELECT t.id AS torrent_id,
		       coalesce((SELECT sum(s.completed) FROM swarm_stats s WHERE s.torrent_id = t.id AND s.bucket >= $2 AND s.bucket < $3), 0) AS completed,
		       coalesce((SELECT sum(greatest(s.bytes - s.to_nodes, 0)) FROM torrent_served s WHERE s.torrent_id = t.id), 0)::bigint AS bytes_served
		FROM torrents t WHERE t.id = ANY($1)`, torrentIDs, from, to)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[TorrentTraffic])
	if err != nil {
		return nil, fmt.Errorf("torrent traffic: %w", err)
	}
	out := make(map[int64]TorrentTraffic, len(list))
	for _, t := range list {
		out[t.TorrentID] = t
	}
	return out, nil
}
