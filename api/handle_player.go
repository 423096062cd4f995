package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/seeding"
	"github.com/fanseed/fanseed/templates"
)

// The player's files, built from web/ into templates/static/player/ (not committed).
const (
	playerBundle = "static/player/player.js"
	// liveBundle is the live player: hls.js with p2p-media-loader, built beside the episode player.
	liveBundle   = "static/player/live.js"
	playerWorker = "/static/player/sw.min.js"
	// playerScope is the service worker's scope: the fan pages, where the player's streams live.
	playerScope = "/s/"
)

// How often one address may report playback: a burst of playbackBurst, then one every
// playbackEvery (a page reports every 30 s, so this leaves room for a few tabs at once).
const (
	playbackBurst = 10
	playbackEvery = 3 * time.Second
)

// playerScript finds the built player bundle and returns its URL, with a version so that a new
// build is fetched at once, or "" when it was not built: pages then play the web seed in a
// plain element, as they do without JavaScript.
func playerScript() string {
	if _, err := fs.Stat(templates.FS, "static/player/sw.min.js"); err != nil {
		return ""
	}
	return bundleScript(playerBundle)
}

// bundleScript is the URL of a built bundle under templates, with a version from its bytes so
// that a new build is fetched at once, or "" when it was not built.
func bundleScript(name string) string {
	b, err := fs.ReadFile(templates.FS, name)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "/" + name + "?v=" + hex.EncodeToString(sum[:6])
}

// player is what the episode player partial needs.
type player struct {
	Kind       string // "video" or "audio"
	WebSeed    string // the file's URL: the element's src without the player, its last resort with it
	TorrentURL string // the .torrent, fetched by the player from this site
	InfoHash   string // in hex, as webtorrent's stream URLs have it
	ReportURL  string // where the player reports playback
	Script     string // the player bundle; "" when not built
	Worker     string // webtorrent's service worker
	Scope      string // the worker's scope
	PeerGrace  int64  // ms the swarm gets to fill a low buffer before the web seed joins; 0: the player's default
}

func (s *Server) player(slug string, e fanEpisode) *player {
	if e.Playable == "" {
		return nil
	}
	base := "/s/" + slug + "/e/" + strconv.FormatInt(e.ID, 10)
	return &player{Kind: e.Playable, WebSeed: e.WebSeed, TorrentURL: "/t/" + e.Record.InfoHashHex() + ".torrent", InfoHash: e.Record.InfoHashHex(),
		ReportURL: base + "/playback", Script: s.playerScript, Worker: playerWorker, Scope: playerScope,
		PeerGrace: s.cfg.PlayerPeerGrace.Milliseconds()}
}

// findFanEpisode finds a published episode of the show in the URL.
func (s *Server) findFanEpisode(r *http.Request) (*fanShow, fanEpisode, error) {
	f, err := s.loadFanShow(r.Context(), chi.URLParam(r, "slug"))
	if err != nil {
		return nil, fanEpisode{}, err
	}
	id, _ := strconv.ParseInt(chi.URLParam(r, "episodeID"), 10, 64)
	for _, e := range f.Episodes {
		if e.ID == id {
			return f, e, nil
		}
	}
	return nil, fanEpisode{}, fmt.Errorf("episode %d of show %q: %w", id, f.Show.Slug, errNoEpisode)
}

var errNoEpisode = errors.New("no such published episode")

type episodeEmbedPage struct {
	layout
	*fanShow
	BaseURL string
	Episode fanEpisode
	Player  *player
}

// handleEpisodeEmbed is an episode's player alone, for other sites to frame: those named in
// EMBED_ORIGINS (and this site) may.
func (s *Server) handleEpisodeEmbed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, e, err := s.findFanEpisode(r)
		if errors.Is(err, errNoEpisode) || (err == nil && e.Playable == "") {
			s.renderError(w, r, http.StatusNotFound, "Not found", "There is no playable episode at this address.")
			return
		}
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		w.Header().Set("Content-Security-Policy", s.playerEmbedCSP)
		w.Header().Del("X-Frame-Options")
		s.render(w, r, http.StatusOK, "episode_embed", &episodeEmbedPage{layout: layout{Title: e.Title + " · " + f.Show.Title},
			fanShow: f, BaseURL: s.publisher.BaseURL, Episode: e, Player: s.player(f.Show.Slug, e)})
	}
}

// handlePlayback takes a player's report of where its bytes came from (see
// seeding.ParsePlaybackReport) and adds it to the episode's day. Answers are JSON; a bad field
// is a 400 naming it, too many reports from one address a 429.
func (s *Server) handlePlayback() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		answer := func(status int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": msg})
		}
		_, e, err := s.findFanEpisode(r)
		if errors.Is(err, errNoEpisode) || (err == nil && e.Playable == "") {
			answer(http.StatusNotFound, "no playable episode at this address")
			return
		}
		if err != nil {
			s.log.Error("playback report", slog.Any("error", err))
			answer(statusOf(err), "the report could not be recorded; try again later")
			return
		}
		if !s.playbackLimit.allow(clientAddr(r)) {
			w.Header().Set("Retry-After", strconv.Itoa(int(playbackEvery.Seconds())))
			answer(http.StatusTooManyRequests, "too many playback reports from this address; wait a few seconds")
			return
		}
		rep, err := seeding.ParsePlaybackReport(r.Body, e.Record.Length)
		if errors.Is(err, seeding.ErrInvalid) {
			answer(http.StatusBadRequest, seeding.FailureReason(err))
			return
		}
		if err != nil {
			answer(http.StatusBadRequest, "the report could not be read")
			return
		}
		if err := seeding.RecordPlayback(r.Context(), s.db, e.Record.ID, time.Now(), rep); err != nil {
			s.log.Error("playback report", slog.Any("error", err))
			answer(statusOf(err), "the report could not be recorded; try again later")
			return
		}
		s.metrics.playbackBytes.WithLabelValues("peers").Add(float64(rep.PeerBytes))
		s.metrics.playbackBytes.WithLabelValues("web_seed").Add(float64(rep.WebSeedBytes))
		s.metrics.playbackBytes.WithLabelValues("uploaded").Add(float64(rep.UploadedBytes))
		w.WriteHeader(http.StatusNoContent)
	}
}

// servedTo tells who asks the web seed: browsers say what a request is for (Fetch Metadata),
// the player's fetches being CORS requests; BitTorrent clients say nothing of the kind.
func servedTo(r *http.Request) seeding.ServedTo {
	switch mode := r.Header.Get("Sec-Fetch-Mode"); {
	case mode == "cors":
		return seeding.ToPlayer
	case mode != "":
		return seeding.ToBrowser
	}
	return seeding.ToBitTorrent
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// webSeedCORS lets pages of any site fetch the web seed's ranges (the file is public), which
// webtorrent does when the web seed joins an embedded player.
func webSeedCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Accept-Ranges, Content-Length, Content-Range, ETag")
}

// handleWebSeedPreflight answers CORS preflights of the web seed: GET and HEAD with a Range.
func handleWebSeedPreflight() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		webSeedCORS(h)
		h.Set("Access-Control-Allow-Methods", "GET, HEAD")
		h.Set("Access-Control-Allow-Headers", "Range")
		h.Set("Access-Control-Max-Age", "86400")
		h.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	}
}
