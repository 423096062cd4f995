package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

// Early access over private torrents: an entitled backer fetches, from their pledge's link, a
// .torrent of their own (private=1, the tracker URL carrying their passkey, a web seed URL
// signed for them and expiring, their name in its comment); the private tracker and the
// signed web seed answer only passkeys entitled to the torrent.

// EarlyWebSeedFor is how long the web seed URL in an issued private torrent works; fetching the
// .torrent again gives a fresh one. Peers found through the tracker go on without it.
const EarlyWebSeedFor = 48 * time.Hour

func (s *Server) earlyOn() bool { return s.cfg.EarlyTracker != nil && len(s.cfg.EarlyAccessKey) > 0 }

// earlySignature signs a passkey's web seed access to a private torrent until expires.
func (s *Server) earlySignature(passkey, infohash string, expires int64) string {
	m := hmac.New(sha256.New, s.cfg.EarlyAccessKey)
	m.Write([]byte(passkey + "\x00" + infohash + "\x00" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// handleEarlyTorrent issues a backer's private .torrent of an early-access episode.
func (s *Server) handleEarlyTorrent() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		episodeID, err := strconv.ParseInt(strings.TrimSuffix(chi.URLParam(r, "episode"), ".torrent"), 10, 64)
		if err != nil || !s.earlyOn() {
			s.fail(w, r, billing.ErrNotFound)
			return
		}
		a, err := billing.EarlyAccessByPledge(r.Context(), s.db, chi.URLParam(r, "token"), episodeID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		rec, err := seeding.TorrentForEpisode(r.Context(), s.db, episodeID)
		if err == nil && rec.Status != seeding.StatusPublished {
			err = seeding.ErrNotFound
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ih, err := seeding.PrivateInfoHash(rec.Metainfo)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := billing.SetPrivateInfoHash(r.Context(), s.db, episodeID, ih); err != nil {
			s.fail(w, r, err)
			return
		}
		ihHex := hex.EncodeToString(ih[:])
		expires := time.Now().Add(EarlyWebSeedFor).Unix()
		who := a.BackerEmail
		if a.BackerName != "" {
			who = a.BackerName + " <" + a.BackerEmail + ">"
		}
		tor, err := seeding.PrivateTorrent(rec.Metainfo, seeding.PrivateOptions{
			TrackerURL: s.absoluteURL(r, "/early/"+a.Passkey+"/announce"),
			WebSeedURL: s.absoluteURL(r, "/early/"+a.Passkey+"/"+ihHex+"/"+strconv.FormatInt(expires, 10)+"/"+
				s.earlySignature(a.Passkey, ihHex, expires)+"/"),
			IssuedTo: who + ", pledge " + strconv.FormatInt(a.PledgeID, 10), CreatedAt: time.Now(),
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-bittorrent")
		w.Header().Set("Cache-Control", "private, no-store")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": tor.Name + ".torrent"}))
		w.Write(tor.Bytes)
	}
}

// handleEarlyAnnounce is the private tracker: an announce whose passkey is entitled to the
// torrent it names, else a failure reason.
func (s *Server) handleEarlyAnnounce() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if !s.earlyOn() {
			w.Write(seeding.EncodeFailure("early access is off on this server"))
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		ih := q.Get("info_hash")
		if err != nil || len(ih) != 20 {
			w.Write(seeding.EncodeFailure("missing or malformed info_hash"))
			return
		}
		if _, err := billing.EarlyAccessByPasskey(r.Context(), s.db, chi.URLParam(r, "passkey"), []byte(ih)); err != nil {
			if !errors.Is(err, billing.ErrNotFound) {
				s.log.ErrorContext(r.Context(), "early access announce", "error", err)
			}
			w.Write(seeding.EncodeFailure("this passkey gives no access to this torrent"))
			return
		}
		w.Write(s.cfg.EarlyTracker.AnnounceBody(r.URL.RawQuery, remoteIP(r), clientTrusted(r)))
	}
}

// handleEarlyWebSeed is a private torrent's web seed: the file, for a signed URL not expired
// whose passkey is still entitled to the torrent.
func (s *Server) handleEarlyWebSeed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		passkey, ihHex := chi.URLParam(r, "passkey"), strings.ToLower(chi.URLParam(r, "infohash"))
		expires, err := strconv.ParseInt(chi.URLParam(r, "expires"), 10, 64)
		ih, ok := parseInfoHash(ihHex)
		if err != nil || !ok || !s.earlyOn() ||
			!hmac.Equal([]byte(chi.URLParam(r, "sig")), []byte(s.earlySignature(passkey, ihHex, expires))) {
			http.Error(w, "this address is not signed", http.StatusForbidden)
			return
		}
		if time.Now().Unix() > expires {
			http.Error(w, "this address has expired: fetch the .torrent again from your pledge's page", http.StatusForbidden)
			return
		}
		a, err := billing.EarlyAccessByPasskey(r.Context(), s.db, passkey, ih)
		if errors.Is(err, billing.ErrNotFound) {
			http.Error(w, "no early access", http.StatusForbidden)
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		rec, err := seeding.TorrentForEpisode(r.Context(), s.db, a.EpisodeID)
		if err != nil || chi.URLParam(r, "name") != rec.Name {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		f, err := os.Open(rec.ContentPath)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", rec.ContentType)
		w.Header().Set("Cache-Control", "private, no-store")
		http.ServeContent(w, r, "", rec.CreatedAt, f)
	}
}

// handleEarlyEpisodeAdd marks an episode of the show as the campaign's early access, public on
// its release date: billing records it for the backers, catalog keeps it unlisted until then.
func (s *Server) handleEarlyEpisodeAdd() http.HandlerFunc {
	return s.campaignAction(func(r *http.Request, show catalog.Show, c billing.Campaign) (string, error) {
		episodeID, err := strconv.ParseInt(r.PostFormValue("episode_id"), 10, 64)
		if err != nil {
			return "Episode: choose one of the show's episodes.", billing.ErrInvalid
		}
		at, err := time.ParseInLocation("2006-01-02T15:04", strings.TrimSpace(r.PostFormValue("release_at")), c.Location())
		if err != nil {
			return "Release date: give a date and time.", billing.ErrInvalid
		}
		if err := publishing.SetRelease(r.Context(), s.db, show.ID, episodeID, &at); err != nil {
			return "", err
		}
		return "", billing.AddEarlyEpisode(r.Context(), s.db, c.ID, episodeID, at)
	})
}
