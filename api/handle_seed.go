package api

import (
	"context"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/fanseed/fanseed/seeding"
)

// parseInfoHash reads 40 hex digits.
func parseInfoHash(s string) ([]byte, bool) {
	b, err := hex.DecodeString(strings.ToLower(s))
	return b, err == nil && len(b) == 20
}

// handleWebSeed is the origin web seed (BEP 19): the file by HTTP with range requests, for
// BitTorrent clients, seedbox nodes fetching a new torrent, the player when the swarm falls
// behind, and plain <video>/<audio> playback. It counts the bytes it sends, by who asked. A fan's
// BitTorrent client is answered at a bounded rate while the fleet seeds the torrent well
// (WebSeedGate); seedbox nodes, which send the node token, never are.
func (s *Server) handleWebSeed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ih, ok := parseInfoHash(chi.URLParam(r, "infohash"))
		if !ok {
			http.Error(w, "no such torrent", http.StatusNotFound)
			return
		}
		t, err := seeding.FindTorrent(r.Context(), s.db, ih)
		if errors.Is(err, seeding.ErrNotFound) || (err == nil && (t.Status == seeding.StatusFailed || chi.URLParam(r, "name") != t.Name)) {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		who := servedTo(r)
		if who == seeding.ToBitTorrent && s.nodeTokenOK(r) {
			who = seeding.ToFleet
		}
		// Before its release an early-access episode is the fleet's and its backers' (over the
		// signed early web seed) only.
		if who != seeding.ToFleet && t.PublicFrom != nil && time.Now().Before(*t.PublicFrom) {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		f, err := os.Open(t.ContentPath)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", t.ContentType)
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("ETag", `"`+t.InfoHashHex()+`"`)
		w.Header().Set("Cache-Control", "public, max-age=86400, immutable")
		webSeedCORS(w.Header())
		cw := &countingWriter{ResponseWriter: w}
		var out http.ResponseWriter = cw
		if who == seeding.ToBitTorrent {
			l, err := s.cfg.WebSeedGate.Limiter(r.Context(), t.ID, clientNetAddr(r))
			if err != nil {
				s.serverError(w, r, err)
				return
			}
			if l != nil {
				out = &limitedWriter{ResponseWriter: cw, ctx: r.Context(), limiter: l}
			}
		}
		http.ServeContent(out, r, "", t.CreatedAt, f)
		s.metrics.webSeedBytes.WithLabelValues(who.String()).Add(float64(cw.n))
		if s.cfg.WebSeedTally != nil {
			s.cfg.WebSeedTally.Add(t.ID, who, cw.n)
		}
	}
}

// limitedWriter sends the body no faster than its limiter allows (see seeding.WebSeedGate).
type limitedWriter struct {
	http.ResponseWriter
	ctx     context.Context
	limiter *rate.Limiter
}

func (l *limitedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), l.limiter.Burst())
		if err := l.limiter.WaitN(l.ctx, n); err != nil {
			return written, err
		}
		m, err := l.ResponseWriter.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// handleTorrentFile serves a published torrent's .torrent file.
func (s *Server) handleTorrentFile() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "file")
		ih, ok := parseInfoHash(strings.TrimSuffix(name, ".torrent"))
		if !ok || !strings.HasSuffix(name, ".torrent") {
			http.Error(w, "no such torrent", http.StatusNotFound)
			return
		}
		t, err := seeding.FindTorrent(r.Context(), s.db, ih)
		if errors.Is(err, seeding.ErrNotFound) || (err == nil && !t.PublicAt(time.Now())) {
			http.Error(w, "no such torrent", http.StatusNotFound)
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-bittorrent")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": t.Name + ".torrent"}))
		w.Write(t.Metainfo)
	}
}

// handleAnnounce is the tracker's announce (BEP 3, compact peers BEP 23). Refusals are bencoded
// failure reasons with status 200, as clients expect. A WebSocket upgrade on the same path is
// the WebSocket tracker (handleWebTracker).
func (s *Server) handleAnnounce() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if isWebSocket(r) {
			s.handleWebTracker(w, r)
			return
		}
		body := s.tracker.AnnounceBody(r.URL.RawQuery, remoteIP(r), clientTrusted(r))
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}
}

// handleScrape is the tracker's scrape (BEP 48).
func (s *Server) handleScrape() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body := s.tracker.ScrapeBody(r.URL.RawQuery)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}
}
