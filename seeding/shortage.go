package seeding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Shortage is what the fleet could not place at its last reconcile for want of room: live
// torrents short of their replicas with no up node that has room for another.
type Shortage struct {
	Torrents  []int64   // the torrents affected, by id
	Replicas  int64     // the replicas missing
	Bytes     int64     // the bytes those replicas would hold
	Since     time.Time // when the shortage started; zero when there is none
	CheckedAt time.Time // the reconcile that found it
}

// Short reports whether there is a shortage.
func (s Shortage) Short() bool { return s.Replicas > 0 }

// recordShortage counts, at the end of a reconcile (the caller holds the fleet lock, and placing
// has added every replica it could), the replicas still missing, and stores them. It returns
// them with when the previous shortage began (zero when there was none), so the caller can tell
// a shortage starting or ending.
func (f *Fleet) recordShortage(ctx context.Context, tx pgx.Tx) (s Shortage, began time.Time, err error) {
	var prev, since *time.Time
	err = tx.QueryRow(ctx, `
		WITH short AS (
			SELECT t.id, t.length, $1 - (SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
				WHERE a.torrent_id = t.id AND a.state <> 'dropping' AND n.status = 'up' AND `+trustedNode+`) AS missing
			FROM torrents t WHERE t.status IN ('processing', 'published')
		), cur AS (
			SELECT coalesce(array_agg(id ORDER BY id), '{}') AS torrents, coalesce(sum(missing), 0)::bigint AS replicas,
				coalesce(sum(missing * length), 0)::bigint AS bytes
			FROM short WHERE missing > 0
		), prev AS (SELECT since FROM fleet_shortage)
		UPDATE fleet_shortage f SET torrents = cur.torrents, replicas = cur.replicas, bytes = cur.bytes, checked_at = now(),
			since = CASE WHEN cur.replicas = 0 THEN NULL ELSE coalesce(f.since, now()) END
		FROM cur, prev
		RETURNING f.torrents, f.replicas, f.bytes, f.since, f.checked_at, prev.since`,
		f.replicas()).Scan(&s.Torrents, &s.Replicas, &s.Bytes, &since, &s.CheckedAt, &prev)
	if err != nil {
		return Shortage{}, time.Time{}, fmt.Errorf("record capacity shortage: %w", err)
	}
	if since != nil {
		s.Since = *since
	}
	if prev != nil {
		began = *prev
	}
	return s, began, nil
}

// logShortage writes one line when a shortage starts and one when it ends, not one a reconcile.
func (f *Fleet) logShortage(s Shortage, began time.Time) {
	if f.Log == nil {
		return
	}
	switch {
	case s.Short() && began.IsZero():
		f.Log.Warn("fleet capacity shortage started: torrents need replicas that no up node has room for",
			slog.Int("torrents", len(s.Torrents)), slog.Int64("replicas_missing", s.Replicas), slog.Int64("bytes_missing", s.Bytes))
	case !s.Short() && !began.IsZero():
		f.Log.Info("fleet capacity shortage ended: every live torrent has its replicas placed",
			slog.Duration("lasted", s.CheckedAt.Sub(began).Round(time.Second)))
	}
}

// readShortage is the shortage the last reconcile stored.
func readShortage(ctx context.Context, db DBTX) (Shortage, error) {
	var s Shortage
	var since *time.Time
	err := db.QueryRow(ctx, `SELECT torrents, replicas, bytes, since, checked_at FROM fleet_shortage`).
		Scan(&s.Torrents, &s.Replicas, &s.Bytes, &since, &s.CheckedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Shortage{}, nil
	}
	if err != nil {
		return Shortage{}, fmt.Errorf("read capacity shortage: %w", err)
	}
	if since != nil {
		s.Since = *since
	}
	return s, nil
}
