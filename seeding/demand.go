package seeding

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Demand-following replicas. A published torrent's swarm, as the tracker last recorded it in
// swarm_stats (the most recent five-minute bucket of the last ten minutes: the most seeders and
// leechers seen in it, seedbox nodes among the seeders), has leechers per seed = leechers /
// max(seeders, 1). At Hot or more, the torrent gains one replica, up to Max in all, once it
// has the ones it has; at Cold or less (or with no recent swarm) it gives one back, down to
// REPLICAS. One step per torrent per Every, so that each step's new seeder shows in the swarm
// before the next. Surplus replicas of a calmed torrent go as any surplus does (dropSurplus).

// Defaults of Demand.
const (
	DefaultDemandHot   = 10.0
	DefaultDemandCold  = 2.0
	DefaultDemandEvery = 2 * time.Minute
	// demandWindow is how recent the swarm numbers must be to count as the torrent's demand.
	demandWindow = 10 * time.Minute
)

// Demand are the settings of demand-following replicas.
type Demand struct {
	Max   int           // REPLICAS_MAX: the most replicas a busy torrent gets; at most R turns demand off
	Hot   float64       // REPLICAS_HOT: leechers per seed at or above which a torrent gains a replica; DefaultDemandHot when zero
	Cold  float64       // REPLICAS_COLD: leechers per seed at or below which it gives one back; DefaultDemandCold when zero
	Every time.Duration // the least time between two steps of one torrent; DefaultDemandEvery when zero
}

func (d Demand) hot() float64 {
	if d.Hot > 0 {
		return d.Hot
	}
	return DefaultDemandHot
}

func (d Demand) cold() float64 {
	if d.Cold > 0 {
		return d.Cold
	}
	return DefaultDemandCold
}

func (d Demand) every() time.Duration { return orDefault(d.Every, DefaultDemandEvery) }

// followDemand moves each published torrent's extra replicas one step toward its swarm's demand.
// The caller holds the fleet lock.
func (f *Fleet) followDemand(ctx context.Context, tx pgx.Tx) error {
	d := f.Demand
	rows, _ := tx.Query(ctx, `
		WITH swarm AS (
			SELECT t.id, t.extra_replicas AS extra, coalesce(s.seeders, 0) AS seeders, coalesce(s.leechers, 0) AS leechers,
				`+countedReplicas+` AS counted
			FROM torrents t
			LEFT JOIN LATERAL (SELECT seeders, leechers FROM swarm_stats
				WHERE torrent_id = t.id AND bucket > now() - $4::bigint * interval '1 millisecond'
				ORDER BY bucket DESC LIMIT 1) s ON true
			WHERE t.status = 'published' AND (t.extra_replicas > 0 OR $2::int > $1::int)
			AND (t.demand_changed_at IS NULL OR t.demand_changed_at < now() - $5::bigint * interval '1 millisecond')
		), step AS (
			SELECT id, extra, seeders, leechers, CASE
				WHEN $1::int + extra > $2::int THEN greatest($2::int - $1::int, 0)
				WHEN leechers >= $3::float8 * greatest(seeders, 1) AND $1::int + extra < $2::int AND counted >= $1::int + extra
					THEN extra + 1
				WHEN leechers <= $6::float8 * greatest(seeders, 1) AND extra > 0 THEN extra - 1
				ELSE extra END AS next
			FROM swarm
		)
		UPDATE torrents t SET extra_replicas = step.next, demand_changed_at = now()
		FROM step WHERE t.id = step.id AND step.next <> step.extra
		RETURNING t.id, step.extra, step.next, step.seeders, step.leechers`,
		f.replicas(), d.Max, d.hot(), demandWindow.Milliseconds(), d.every().Milliseconds(), d.cold())
	var id, from, to, seeders, leechers int64
	_, err := pgx.ForEachRow(rows, []any{&id, &from, &to, &seeders, &leechers}, func() error {
		if f.Log != nil {
			f.Log.Info("torrent replicas follow demand", slog.Int64("torrent_id", id),
				slog.Int64("replicas", int64(f.replicas())+to), slog.Int64("was", int64(f.replicas())+from),
				slog.Int64("seeders", seeders), slog.Int64("leechers", leechers))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("follow demand: %w", err)
	}
	return nil
}
