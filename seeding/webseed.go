package seeding

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultWebSeedClientRate is the bytes per second the web seed sends one fans' address for one
// torrent while the fleet seeds that torrent well (WebSeedGate). It is chosen against what the
// web seed is for once the fleet is healthy: a last resort. A fan fetching from the nodes at a
// modest 20 Mbit/s (2.5 MB/s) then takes under 10% of the file from the origin, while a client
// that reaches no node at all (a firewall, a client without peer connections) still gets a
// 300 MiB episode in about 20 minutes rather than never.
const DefaultWebSeedClientRate = 256 << 10

// webSeedBurst is the most the web seed sends a bounded client at once: two of the 16 KiB
// blocks BitTorrent clients ask for, so the bound holds over any second.
const webSeedBurst = 32 << 10

// seedHealthTTL is how long the gate trusts its count of a torrent's counted replicas.
const seedHealthTTL = 10 * time.Second

// WebSeedGate decides how fast the origin web seed may answer a fan's BitTorrent client: without
// a bound while the fleet cannot serve the torrent (fewer counted replicas than the fleet's R,
// see countedReplica), and at Rate bytes per second per address and torrent while it can, so that
// clients take their bytes from the nodes. The player and plain browser playback are not its
// business (the player adds the web seed only when the swarm falls behind), nor are the nodes.
type WebSeedGate struct {
	Fleet *Fleet
	Rate  int64 // bytes per second; 0 means DefaultWebSeedClientRate, negative means no bound

	mu       sync.Mutex
	health   map[int64]seedHealth
	limiters map[clientTorrent]*idleLimiter
	swept    time.Time
}

type seedHealth struct {
	well bool
	at   time.Time
}

type clientTorrent struct {
	from    netip.Addr
	torrent int64
}

type idleLimiter struct {
	*rate.Limiter
	used time.Time
}

func (g *WebSeedGate) rate() int64 {
	if g.Rate == 0 {
		return DefaultWebSeedClientRate
	}
	return g.Rate
}

// Limiter returns the rate a fan's client at from is answered at for torrentID, shared by all its
// connections for that torrent, or nil when the web seed answers it at full speed.
func (g *WebSeedGate) Limiter(ctx context.Context, torrentID int64, from netip.Addr) (*rate.Limiter, error) {
	if g == nil || g.Fleet == nil || g.rate() < 0 {
		return nil, nil
	}
	well, err := g.wellSeeded(ctx, torrentID)
	if err != nil || !well {
		return nil, err
	}
	now := time.Now()
	key := clientTorrent{household(from), torrentID}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.limiters == nil {
		g.limiters = map[clientTorrent]*idleLimiter{}
	}
	if now.Sub(g.swept) > time.Minute {
		// A limiter idle for a minute has refilled its burst: forgetting it changes nothing.
		for k, l := range g.limiters {
			if now.Sub(l.used) > time.Minute {
				delete(g.limiters, k)
			}
		}
		g.swept = now
	}
	l := g.limiters[key]
	if l == nil {
		l = &idleLimiter{Limiter: rate.NewLimiter(rate.Limit(g.rate()), webSeedBurst)}
		g.limiters[key] = l
	}
	l.used = now
	return l.Limiter, nil
}

// wellSeeded reports whether torrentID has at least R counted replicas, from a count at most
// seedHealthTTL old.
func (g *WebSeedGate) wellSeeded(ctx context.Context, torrentID int64) (bool, error) {
	now := time.Now()
	g.mu.Lock()
	h, ok := g.health[torrentID]
	g.mu.Unlock()
	if ok && now.Sub(h.at) < seedHealthTTL {
		return h.well, nil
	}
	n, err := SeedingNodes(ctx, g.Fleet.DB, torrentID)
	if err != nil {
		return false, err
	}
	h = seedHealth{well: n >= g.Fleet.replicas(), at: now}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.health == nil || len(g.health) > 1<<16 {
		g.health = map[int64]seedHealth{}
	}
	g.health[torrentID] = h
	return h.well, nil
}
