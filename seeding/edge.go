package seeding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Edge is a seedbox node's HTTP edge for live streams: it serves viewers a stream's init segment
// and media segments, fetching each once from the control plane (Origin) and keeping the most
// recent in memory, so the origin sends each segment about once per node, not once per viewer.
// Segments never change, so a cached one is always right; playlists are not served here.
type Edge struct {
	Origin   string       // the control plane's base URL
	Client   *http.Client // nil: a client with a 10 s timeout
	MaxBytes int64        // the cache's size; 0 means 256 MiB

	mu      sync.Mutex
	cache   map[string]*edgeEntry
	order   []string // oldest first
	bytes   int64
	fetches int64
}

type edgeEntry struct {
	done chan struct{}
	data []byte
	err  error
}

var edgePath = regexp.MustCompile(`^/live/[0-9]{1,18}/(init\.mp4|[0-9]{1,9}\.m4s)$`)

// Fetches says how many requests the edge made to the origin.
func (e *Edge) Fetches() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fetches
}

func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "GET or HEAD only", http.StatusMethodNotAllowed)
		return
	}
	if !edgePath.MatchString(r.URL.Path) {
		http.Error(w, "this edge serves live segments only: /live/<stream id>/<segment>", http.StatusNotFound)
		return
	}
	data, hit, err := e.get(r.Context(), r.URL.Path)
	var status *edgeStatus
	switch {
	case errors.As(err, &status):
		http.Error(w, "the origin answered "+strconv.Itoa(status.code), status.code)
		return
	case err != nil:
		http.Error(w, "the origin could not be reached", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Cache-Control", "public, max-age=86400, immutable")
	if hit {
		w.Header().Set("X-Cache", "hit")
	} else {
		w.Header().Set("X-Cache", "miss")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

type edgeStatus struct{ code int }

func (s *edgeStatus) Error() string { return fmt.Sprintf("origin status %d", s.code) }

// get returns a segment from the cache or, once for all who ask at the same time, the origin.
func (e *Edge) get(ctx context.Context, path string) ([]byte, bool, error) {
	e.mu.Lock()
	if e.cache == nil {
		e.cache = map[string]*edgeEntry{}
	}
	if en, ok := e.cache[path]; ok {
		e.mu.Unlock()
		select {
		case <-en.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		return en.data, true, en.err
	}
	en := &edgeEntry{done: make(chan struct{})}
	e.cache[path] = en
	e.fetches++
	e.mu.Unlock()

	en.data, en.err = e.fetch(path)
	close(en.done)
	e.mu.Lock()
	defer e.mu.Unlock()
	if en.err != nil {
		delete(e.cache, path) // asked again next time
		return nil, false, en.err
	}
	e.order = append(e.order, path)
	e.bytes += int64(len(en.data))
	max := e.MaxBytes
	if max <= 0 {
		max = 256 << 20
	}
	for e.bytes > max && len(e.order) > 1 {
		old := e.order[0]
		e.order = e.order[1:]
		if o := e.cache[old]; o != nil {
			e.bytes -= int64(len(o.data))
			delete(e.cache, old)
		}
	}
	return en.data, false, nil
}

func (e *Edge) fetch(path string) ([]byte, error) {
	client := e.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Get(e.Origin + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &edgeStatus{code: resp.StatusCode}
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}
