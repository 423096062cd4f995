package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/live"
	"github.com/fanseed/fanseed/money"
	"github.com/fanseed/fanseed/seeding"
)

type livePage struct {
	layout
	Show       catalog.Show
	Key        *live.Key    // the working key, nil for none
	Created    *live.NewKey // a key just made: its secrets, shown this once
	ServerURL  string       // what goes into OBS's Server field
	OverlayURL string       // with Created: the overlay's address for OBS's browser source
	Settings   live.Settings
	Goal       string // the settings' goal, formatted
	Error      string
	Now        *live.Stream
	Viewers    int
	Streams    []live.Stream
	Enabled    bool // the RTMP ingest runs
}

func (s *Server) livePageData(r *http.Request, show catalog.Show) (*livePage, error) {
	ctx := r.Context()
	p := &livePage{layout: layout{Title: "Live: " + show.Title}, Show: show, ServerURL: s.cfg.LiveRTMPURL, Enabled: s.cfg.Live != nil}
	if k, err := live.ActiveKey(ctx, s.db, show.ID); err == nil {
		p.Key = &k
	} else if !errors.Is(err, live.ErrNotFound) {
		return nil, err
	}
	var err error
	if p.Settings, err = live.FindSettings(ctx, s.db, show.ID); err != nil {
		return nil, err
	}
	if cur, err := money.LookupCurrency(show.Currency); err == nil && p.Settings.GoalAmount > 0 {
		p.Goal = cur.Format(p.Settings.GoalAmount)
	}
	if st, err := live.LiveStream(ctx, s.db, show.ID); err == nil {
		p.Now = &st
		if p.Viewers, err = live.ViewersNow(ctx, s.db, st.ID); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, live.ErrNotFound) {
		return nil, err
	}
	if p.Streams, err = live.ListStreams(ctx, s.db, show.ID, 50); err != nil {
		return nil, err
	}
	return p, nil
}

// handleLive is the creator's live page: the server URL and key for OBS, the overlay, the
// settings, the stream on now with its statistics, and the past streams.
func (s *Server) handleLive() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := s.livePageData(r, show)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		switch {
		case r.URL.Query().Get("revoked") != "":
			p.Flash = "Stream key revoked. OBS can no longer connect with it."
		case r.URL.Query().Get("saved") != "":
			p.Flash = "Live settings saved."
		}
		s.render(w, r, http.StatusOK, "live", p)
	}
}

// handleLiveKeyCreate makes (or rotates) the show's stream key and shows it once.
func (s *Server) handleLiveKeyCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		k, err := live.CreateKey(r.Context(), s.db, show.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := s.livePageData(r, show)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Created, p.OverlayURL = &k, s.publisher.BaseURL+"/overlay/"+k.OverlayToken
		w.Header().Set("Cache-Control", "no-store")
		s.render(w, r, http.StatusOK, "live", p)
	}
}

// handleLiveKeyRevoke stops the show's stream key from working.
func (s *Server) handleLiveKeyRevoke() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := live.RevokeKey(r.Context(), s.db, show.ID); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/live?revoked=1", show.ID), http.StatusSeeOther)
	}
}

// handleLiveSettings saves the recording switch, the overlay's moderation and the goal.
func (s *Server) handleLiveSettings() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		in := live.SettingsInput{Record: r.PostFormValue("record") != "", HideMessages: r.PostFormValue("hide_messages") != "",
			MessageLimit: r.PostFormValue("message_limit"), Blocklist: r.PostFormValue("blocklist")}
		var fieldErr error
		if goal := strings.TrimSpace(r.PostFormValue("goal")); goal != "" {
			cur, err := money.LookupCurrency(show.Currency)
			if err == nil {
				in.GoalAmount, err = cur.Parse(goal)
			}
			if err != nil {
				fieldErr = fmt.Errorf("%w: goal: %q is not an amount of %s such as 100 or 99.50", live.ErrInvalid, goal, show.Currency)
			}
		}
		if fieldErr == nil {
			_, fieldErr = live.SaveSettings(r.Context(), s.db, show.ID, in)
		}
		if fieldErr != nil && !errors.Is(fieldErr, live.ErrInvalid) {
			s.fail(w, r, fieldErr)
			return
		}
		if fieldErr != nil {
			p, err := s.livePageData(r, show)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			p.Error = strings.TrimPrefix(fieldErr.Error(), live.ErrInvalid.Error()+": ")
			s.render(w, r, http.StatusBadRequest, "live", p)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/live?saved=1", show.ID), http.StatusSeeOther)
	}
}

// liveStats is the JSON the creator's live page refreshes itself from.
type liveStats struct {
	Live           bool    `json:"live"`
	StreamID       int64   `json:"stream_id,omitempty"`
	Viewers        int     `json:"viewers"`
	PeakViewers    int     `json:"peak_viewers"`
	MinutesWatched int64   `json:"minutes_watched"`
	PeerShare      float64 `json:"peer_share"` // of segment bytes, 0 to 1
	PeerBytes      int64   `json:"peer_bytes"`
	HTTPBytes      int64   `json:"http_bytes"`
	Segments       int     `json:"segments"`
}

// handleLiveStats answers the live statistics of the show's stream on now (or its last one).
func (s *Server) handleLiveStats() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		streams, err := live.ListStreams(r.Context(), s.db, show.ID, 1)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var out liveStats
		if len(streams) > 0 {
			st := streams[0]
			out = liveStats{Live: st.Live(), StreamID: st.ID, PeakViewers: st.PeakViewers, MinutesWatched: st.MinutesWatched(),
				PeerShare: st.PeerShare(), PeerBytes: st.PeerBytes, HTTPBytes: st.HTTPBytes, Segments: st.Segments}
			if st.Live() {
				if out.Viewers, err = live.ViewersNow(r.Context(), s.db, st.ID); err != nil {
					s.fail(w, r, err)
					return
				}
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, out)
	}
}

type fanLivePage struct {
	layout
	Show     catalog.Show
	Stream   *live.Stream
	BaseURL  string
	Tracker  string // the WebSocket tracker
	Playlist string
	Hashes   string
	Report   string
	Edges    string // the seedbox nodes serving live segments, space-separated; the page falls back to serve
	Player   string // the live player bundle's URL; "" when not built
}

// handleFanLive is the show's live page: the player (hls.js with p2p-media-loader over the
// WebSocket tracker), the donate button, and without JavaScript a link to the playlist.
func (s *Server) handleFanLive() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := catalog.FindShowBySlug(r.Context(), s.db, chi.URLParam(r, "slug"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &fanLivePage{layout: layout{Title: show.Title + " live"}, Show: show, BaseURL: s.publisher.BaseURL,
			Tracker: s.publisher.WebTrackerURL(), Player: s.liveScript}
		st, err := live.LiveStream(r.Context(), s.db, show.ID)
		switch {
		case errors.Is(err, live.ErrNotFound):
		case err != nil:
			s.fail(w, r, err)
			return
		default:
			p.Stream = &st
			base := fmt.Sprintf("%s/live/%d/", s.publisher.BaseURL, st.ID)
			p.Playlist, p.Hashes, p.Report = base+"index.m3u8", base+"hashes.json", base+"report"
			edges, err := seeding.LiveEdges(r.Context(), s.db)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			p.Edges = strings.Join(edges, " ")
		}
		w.Header().Set("Cache-Control", "no-store")
		// The player fetches segments from the nodes' edges too.
		var edgeOrigins []string
		for _, e := range strings.Fields(p.Edges) {
			if u, err := url.Parse(e); err == nil && u.Host != "" {
				edgeOrigins = append(edgeOrigins, u.Scheme+"://"+u.Host)
			}
		}
		csp := s.liveCSP
		if len(edgeOrigins) > 0 {
			csp = strings.Replace(csp, "connect-src ", "connect-src "+strings.Join(edgeOrigins, " ")+" ", 1)
		}
		w.Header().Set("Content-Security-Policy", csp)
		s.render(w, r, http.StatusOK, "fan_live", p)
	}
}

// handleLiveFile serves a stream's HLS files: the playlist and the SHA-256 list (never
// cached), the init segment and the segments (immutable: a node edge caches each once).
func (s *Server) handleLiveFile() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		id, err := strconv.ParseInt(chi.URLParam(r, "streamID"), 10, 64)
		if err != nil || s.cfg.Live == nil {
			plainError(w, http.StatusNotFound, "no such stream")
			return
		}
		name := chi.URLParam(r, "file")
		path, err := s.cfg.Live.File(id, name)
		if err != nil {
			plainError(w, http.StatusNotFound, "no such file of the stream")
			return
		}
		f, err := os.Open(path)
		if err != nil {
			plainError(w, http.StatusNotFound, "no such file of the stream (yet, or any more)")
			return
		}
		defer f.Close()
		switch filepath.Ext(name) {
		case ".m3u8":
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			w.Header().Set("Cache-Control", "no-cache")
		case ".json":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-cache")
		default:
			w.Header().Set("Content-Type", "video/mp4")
			w.Header().Set("Cache-Control", "public, max-age=86400, immutable")
		}
		st, err := f.Stat()
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		http.ServeContent(w, r, "", st.ModTime(), f)
	}
}

// handleLiveReport takes a viewer's report: seconds played and segment bytes by source.
func (s *Server) handleLiveReport() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "streamID"), 10, 64)
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such stream"})
			return
		}
		var rep live.Report
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&rep); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the report is not JSON with viewer, peer_bytes, http_bytes and seconds"})
			return
		}
		if err := live.RecordReport(r.Context(), s.db, id, rep); err != nil {
			if errors.Is(err, live.ErrInvalid) {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": strings.TrimPrefix(err.Error(), live.ErrInvalid.Error()+": ")})
				return
			}
			s.log.Error("live report", slog.Any("error", err))
			writeJSON(w, statusOf(err), map[string]string{"error": "the report could not be recorded; try again later"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

type overlayPage struct {
	layout
	Events string
}

// handleOverlay is the page OBS's browser source shows over the stream: donations as they come
// and the goal bar. Its address is the key's secret.
func (s *Server) handleOverlay() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := chi.URLParam(r, "token")
		if _, err := live.FindOverlayKey(r.Context(), s.db, token); err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		s.render(w, r, http.StatusOK, "overlay", &overlayPage{layout: layout{Title: "Overlay"}, Events: "/overlay/" + token + "/events"})
	}
}

// handleOverlayEvents streams the overlay's donations and goal as Server-Sent Events.
func (s *Server) handleOverlayEvents() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := live.FindOverlayKey(r.Context(), s.db, chi.URLParam(r, "token"))
		if err != nil {
			plainError(w, statusOf(err), "no overlay at this address")
			return
		}
		show, err := catalog.FindShow(r.Context(), s.db, key.ShowID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		flusher, ok := w.(http.Flusher)
		if !ok {
			s.serverError(w, r, errors.New("overlay events: the response cannot be flushed"))
			return
		}
		after, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
		// A new overlay shows what comes from now on; one reconnecting, what came after its last.
		o := &live.Overlay{DB: s.db, Key: key, Currency: show.Currency, AfterID: after, FromNow: after == 0}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		// The body rate limit does not apply to this long response; keep the connection alive.
		rc := http.NewResponseController(w)
		send := func(event string, id int64, v any) error {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if id > 0 {
				fmt.Fprintf(w, "id: %d\n", id)
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
				return err
			}
			flusher.Flush()
			return nil
		}
		// The stream ends when the process shuts down; the overlay's EventSource reconnects.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		if s.cfg.Stopping != nil {
			defer context.AfterFunc(s.cfg.Stopping, cancel)()
		}
		err = o.Follow(ctx, func(d live.OverlayDonation) error { return send("donation", d.ID, d) },
			func(g live.Goal) error { return send("goal", 0, g) })
		if err != nil && ctx.Err() == nil {
			s.log.Warn("overlay events", slog.Any("error", err))
		}
	}
}

// RecordingText says what became of a stream's recording, for the list of streams.
func (p *livePage) RecordingText(s live.Stream) string {
	switch s.Recording {
	case "recording":
		return "recording"
	case "off":
		return "not recorded"
	case "publishing":
		return "being published"
	case "failed":
		return "failed: " + s.RecordingError
	}
	return s.Recording
}
