package seeding

import (
	"net/netip"
	"sync"
	"time"
)

// DefaultAnnouncesPerMinute is how many announces one address may make per minute when
// Tracker.AnnouncesPerMinute is zero. A client announces every interval (30 minutes) and at its
// events, so this leaves room for a whole household or a seedbox holding many torrents.
const DefaultAnnouncesPerMinute = 120

// maxLimitedAddrs bounds the addresses the announce limiter remembers at once.
const maxLimitedAddrs = 1 << 18

// errRateLimited is the failure reason for an address announcing faster than the limit allows.
var errRateLimited = &reasonError{kind: ErrRateLimited, reason: "too many announces from your address; announce again in a minute"}

// household is the address the tracker counts and limits a client by: an IPv4 address, or the
// /64 of an IPv6 one, since one IPv6 host may take any address in its network.
func household(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// limiter is a token bucket per address: each address may make perMinute calls a minute, and
// as many at once after a quiet minute.
type limiter struct {
	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	swept   time.Time // when a full map was last swept
}

type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes one token from addr's bucket; perMinute <= 0 allows everything.
func (l *limiter) allow(addr netip.Addr, perMinute int, now time.Time) bool {
	if perMinute <= 0 {
		return true
	}
	capacity := float64(perMinute)
	refill := func(b *bucket) {
		b.tokens = min(capacity, b.tokens+now.Sub(b.last).Minutes()*capacity)
		b.last = now
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[netip.Addr]*bucket{}
	}
	b := l.buckets[addr]
	if b == nil {
		if len(l.buckets) >= maxLimitedAddrs && now.Sub(l.swept) > time.Second {
			l.forgetFull(now, capacity)
			l.swept = now
		}
		if len(l.buckets) >= maxLimitedAddrs {
			return true // more addresses at once than it can remember: none is limited
		}
		b = &bucket{tokens: capacity, last: now}
		l.buckets[addr] = b
	}
	refill(b)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// forgetFull drops the buckets that have refilled: they would allow as much as a new one.
func (l *limiter) forgetFull(now time.Time, capacity float64) {
	for a, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Minutes()*capacity >= capacity {
			delete(l.buckets, a)
		}
	}
}

// prune is forgetFull for the tracker's periodic snapshot.
func (l *limiter) prune(perMinute int, now time.Time) {
	if perMinute <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetFull(now, float64(perMinute))
}
