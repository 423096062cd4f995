package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// handleHealthz answers while the process is up.
func handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	}
}

// handleFavicon sends browsers that ask for /favicon.ico, as some do whatever the page says,
// to the icon the layout links.
func handleFavicon() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	}
}

// handleReadyz answers 200 only when the database answers and the schema is current.
// A database that is down is logged once, by health, not on every probe.
func handleReadyz(ready func(context.Context) error, log *slog.Logger, health *dbHealth) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(ctx); err != nil {
			if isDatabaseDown(err) {
				health.markDown(r.Context(), err)
			} else {
				log.WarnContext(r.Context(), "not ready", slog.Any("error", err))
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n"))
			return
		}
		w.Write([]byte("ready\n"))
	}
}
