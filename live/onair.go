package live

import (
	"context"
	"sync"
	"time"
)

// OnAir answers whether a stream is live, asking the database at most once a second per
// stream: the WebSocket tracker asks on every announce of a live swarm.
type OnAir struct {
	DB DBTX

	mu   sync.Mutex
	seen map[int64]onAirEntry
}

type onAirEntry struct {
	on bool
	at time.Time
}

// On reports whether the stream is live now (false when the database cannot say).
func (o *OnAir) On(id int64) bool {
	o.mu.Lock()
	e, ok := o.seen[id]
	o.mu.Unlock()
	if ok && time.Since(e.at) < time.Second {
		return e.on
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var on bool
	err := o.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM live_streams WHERE id = $1 AND ended_at IS NULL)`, id).Scan(&on)
	if err != nil {
		return ok && e.on
	}
	o.mu.Lock()
	if o.seen == nil || len(o.seen) > 10000 {
		o.seen = map[int64]onAirEntry{}
	}
	o.seen[id] = onAirEntry{on: on, at: time.Now()}
	o.mu.Unlock()
	return on
}
