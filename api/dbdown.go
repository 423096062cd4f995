package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// While PostgreSQL cannot be reached, every page and webhook would fail the same way. They
// answer 503 with Retry-After instead of 500, so that clients and Stripe come back; fan pages
// serve the copy they last read; and the log says once that the database is down and once that
// it is back, rather than an error line per request.

// retryAfter is what a 503 for a database that is down asks clients to wait, in seconds.
const retryAfter = 5

// probeEvery is how often, while the database is down, a request starts a ping to learn it is up.
const probeEvery = time.Second

// isDatabaseDown reports whether err says PostgreSQL could not be reached or went away, as
// opposed to a query that failed on a database that answers.
func isDatabaseDown(err error) bool {
	if err == nil {
		return false
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case len(pg.Code) == 5 && pg.Code[:2] == "08": // connection exception
			return true
		case pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03", pg.Code == "53300":
			// admin shutdown, crash shutdown, cannot connect now, too many connections
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		pgconn.Timeout(err) && !errors.Is(err, context.Canceled)
}

// dbHealth remembers whether the database is down, to log it once each way.
type dbHealth struct {
	log  *slog.Logger
	ping func(context.Context) error

	mu      sync.Mutex
	down    bool
	since   time.Time
	probing bool
	probed  time.Time
}

// markDown notes that a request found the database down, logging it if it was up.
func (h *dbHealth) markDown(ctx context.Context, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return
	}
	h.down, h.since, h.probed = true, time.Now(), time.Now()
	h.log.ErrorContext(ctx, "database is down: pages and webhooks answer 503 until it is back", slog.Any("error", err))
}

// isDown reports whether the database was last found down.
func (h *dbHealth) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// probe, while the database is down, pings it at most every probeEvery (in the background, so
// the request does not wait) and logs once when it answers again.
func (h *dbHealth) probe() {
	h.mu.Lock()
	if !h.down || h.probing || time.Since(h.probed) < probeEvery {
		h.mu.Unlock()
		return
	}
	h.probing, h.probed = true, time.Now()
	h.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := h.ping(ctx)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.probing = false
		if err == nil && h.down {
			h.down = false
			h.log.Info("database is back up", slog.Duration("down_for", time.Since(h.since).Round(time.Millisecond)))
		}
	}()
}

// watchDatabase lets each request while the database is down start a probe.
func (s *Server) watchDatabase(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.dbHealth.probe()
		next.ServeHTTP(w, r)
	})
}

// unavailable answers a request that needs the database while it is down: 503, Retry-After, a
// page in plain words (JSON for the API).
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.dbHealth.markDown(r.Context(), err)
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	const msg = "Fanseed cannot reach its database for a moment. Please try again in a few seconds."
	if isAPIRequest(r) {
		apiErrorBody(w, http.StatusServiceUnavailable, "unavailable", msg, "")
		return
	}
	s.renderError(w, r, http.StatusServiceUnavailable, "Back in a moment", msg)
}

// isAPIRequest reports whether the request is for a JSON endpoint rather than a page.
func isAPIRequest(r *http.Request) bool {
	return len(r.URL.Path) >= 5 && r.URL.Path[:5] == "/api/"
}
