package seeding

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// PlaybackReport is what an episode player says of the time since its last report: where its
// bytes came from, what it uploaded to other viewers and how playback went.
type PlaybackReport struct {
	PeerBytes      int64 `json:"peer_bytes"`      // from other peers: the fleet and other viewers
	WebSeedBytes   int64 `json:"web_seed_bytes"`  // from the origin web seed
	UploadedBytes  int64 `json:"uploaded_bytes"`  // to other viewers
	FirstFrameMs   int64 `json:"first_frame_ms"`  // from pressing play to the first frame; -1 when the report has none
	Stalls         int64 `json:"stalls"`          // times playback waited for data once started
	SecondsWatched int64 `json:"seconds_watched"` // of playback
}

// Limits of one report. Bytes are bounded by the file: a player downloads it about once
// (twice allows for pieces fetched again), and uploads it to a few viewers between reports.
const (
	maxReportBytes     = 4 << 10
	maxFirstFrameMs    = 10 * 60 * 1000
	maxStalls          = 10_000
	maxSecondsWatched  = 24 * 60 * 60
	downloadPerLength  = 2
	uploadsPerLength   = 64
	minPlaybackAllowed = 64 << 20 // a tiny file still allows this many bytes per report
)

// ParsePlaybackReport reads a player's JSON report for a file of fileLength bytes. Unknown
// fields, missing counts and impossible values are an ErrInvalid naming the field.
func ParsePlaybackReport(r io.Reader, fileLength int64) (PlaybackReport, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxReportBytes+1))
	if err != nil {
		return PlaybackReport{}, fmt.Errorf("read playback report: %w", err)
	}
	if len(body) > maxReportBytes {
		return PlaybackReport{}, invalidf("report is longer than %d bytes", maxReportBytes)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return PlaybackReport{}, invalidf("report must be a JSON object")
	}
	rep := PlaybackReport{FirstFrameMs: -1}
	download := max(fileLength*downloadPerLength, minPlaybackAllowed)
	upload := max(fileLength*uploadsPerLength, minPlaybackAllowed)
	fields := []struct {
		name     string
		dst      *int64
		max      int64
		optional bool
	}{
		{"peer_bytes", &rep.PeerBytes, download, false},
		{"web_seed_bytes", &rep.WebSeedBytes, download, false},
		{"uploaded_bytes", &rep.UploadedBytes, upload, false},
		{"first_frame_ms", &rep.FirstFrameMs, maxFirstFrameMs, true},
		{"stalls", &rep.Stalls, maxStalls, false},
		{"seconds_watched", &rep.SecondsWatched, maxSecondsWatched, false},
	}
	known := map[string]bool{}
	for _, f := range fields {
		known[f.name] = true
		v, ok := raw[f.name]
		if !ok {
			if f.optional {
				continue
			}
			return PlaybackReport{}, invalidf("%s is missing", f.name)
		}
		if v = bytes.TrimSpace(v); len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
			return PlaybackReport{}, invalidf("%s must be a whole number", f.name)
		}
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if err := d.Decode(&n); err != nil {
			return PlaybackReport{}, invalidf("%s must be a whole number", f.name)
		}
		i, err := n.Int64()
		switch {
		case err != nil || strings.ContainsAny(n.String(), ".eE"):
			return PlaybackReport{}, invalidf("%s must be a whole number", f.name)
		case i < 0:
			return PlaybackReport{}, invalidf("%s must not be negative", f.name)
		case i > f.max:
			return PlaybackReport{}, invalidf("%s is more than %d", f.name, f.max)
		}
		*f.dst = i
	}
	for name := range raw {
		if !known[name] {
			return PlaybackReport{}, invalidf("%s is not a field of a playback report", name)
		}
	}
	if rep.PeerBytes+rep.WebSeedBytes > download {
		return PlaybackReport{}, invalidf("peer_bytes and web_seed_bytes add up to more than %d", download)
	}
	return rep, nil
}

// RecordPlayback adds a player's report to its torrent's day (UTC) of at.
func RecordPlayback(ctx context.Context, db DBTX, torrentID int64, at time.Time, r PlaybackReport) error {
	frames, frameMs := int64(0), int64(0)
	if r.FirstFrameMs >= 0 {
		frames, frameMs = 1, r.FirstFrameMs
	}
	_, err := db.Exec(ctx, `
		INSERT INTO playback_days (torrent_id, day, reports, peer_bytes, web_seed_bytes, uploaded_bytes,
		                           first_frames, first_frame_ms_sum, stalls, seconds_watched)
		VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (torrent_id, day) DO UPDATE SET
		    reports = playback_days.reports + 1,
		    peer_bytes = playback_days.peer_bytes + EXCLUDED.peer_bytes,
		    web_seed_bytes = playback_days.web_seed_bytes + EXCLUDED.web_seed_bytes,
		    uploaded_bytes = playback_days.uploaded_bytes + EXCLUDED.uploaded_bytes,
		    first_frames = playback_days.first_frames + EXCLUDED.first_frames,
		    first_frame_ms_sum = playback_days.first_frame_ms_sum + EXCLUDED.first_frame_ms_sum,
		    stalls = playback_days.stalls + EXCLUDED.stalls,
		    seconds_watched = playback_days.seconds_watched + EXCLUDED.seconds_watched`,
		torrentID, at.UTC().Format(time.DateOnly), r.PeerBytes, r.WebSeedBytes, r.UploadedBytes, frames, frameMs, r.Stalls, r.SecondsWatched)
	if err != nil {
		return fmt.Errorf("record playback of torrent %d: %w", torrentID, err)
	}
	return nil
}

// Playback is the sum of playback days over some torrents and dates.
type Playback struct {
	Reports          int64 `db:"reports"`
	PeerBytes        int64 `db:"peer_bytes"`
	WebSeedBytes     int64 `db:"web_seed_bytes"`
	UploadedBytes    int64 `db:"uploaded_bytes"`
	FirstFrames      int64 `db:"first_frames"`
	FirstFrameMsSum  int64 `db:"first_frame_ms_sum"`
	Stalls           int64 `db:"stalls"`
	SecondsWatched   int64 `db:"seconds_watched"`
	ServedPlayer     int64 `db:"served_player"`
	ServedBrowser    int64 `db:"served_browser"`
	ServedBitTorrent int64 `db:"served_bittorrent"` // to fans' BitTorrent clients (before served_fleet existed, the fleet's fetches too)
	ServedFleet      int64 `db:"served_fleet"`      // to seedbox nodes fetching what they were assigned
}

// SwarmPercent is the share of the players' bytes that came from peers rather than the web
// seed, rounded down, and whether there were any bytes at all.
func (p Playback) SwarmPercent() (int64, bool) {
	total := p.PeerBytes + p.WebSeedBytes
	if total <= 0 {
		return 0, false
	}
	return p.PeerBytes * 100 / total, true
}

// PlaybackTotals sums the playback days of the given torrents from from (inclusive) to to
// (exclusive), both taken as UTC dates.
func PlaybackTotals(ctx context.Context, db DBTX, torrentIDs []int64, from, to time.Time) (Playback, error) {
	rows, _ := db.Query(ctx, `
		SELECT coalesce(sum(reports), 0)::bigint AS reports, coalesce(sum(peer_bytes), 0)::bigint AS peer_bytes,
		       coalesce(sum(web_seed_bytes), 0)::bigint AS web_seed_bytes, coalesce(sum(uploaded_bytes), 0)::bigint AS uploaded_bytes,
		       coalesce(sum(first_frames), 0)::bigint AS first_frames, coalesce(sum(first_frame_ms_sum), 0)::bigint AS first_frame_ms_sum,
		       coalesce(sum(stalls), 0)::bigint AS stalls, coalesce(sum(seconds_watched), 0)::bigint AS seconds_watched,
		       coalesce(sum(served_player), 0)::bigint AS served_player, coalesce(sum(served_browser), 0)::bigint AS served_browser,
		       coalesce(sum(served_bittorrent), 0)::bigint AS served_bittorrent, coalesce(sum(served_fleet), 0)::bigint AS served_fleet
		FROM playback_days WHERE torrent_id = ANY($1) AND day >= $2::date AND day < $3::date`,
		torrentIDs, from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly))
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Playback])
	if err != nil {
		return Playback{}, fmt.Errorf("playback totals: %w", err)
	}
	return p, nil
}

// ServedTo is who asked the web seed for bytes.
type ServedTo int

// Who the web seed serves.
const (
	ToPlayer     ServedTo = iota // the episode player (webtorrent, when the swarm falls behind)
	ToBrowser                    // a plain <video>/<audio> element or a download link
	ToBitTorrent                 // a fan's BitTorrent client
	ToFleet                      // a seedbox node fetching a torrent it was assigned
	servedToCount
)

// String is the label of /metrics.
func (s ServedTo) String() string {
	return [...]string{"player", "browser", "bittorrent", "fleet"}[s]
}

// WebSeedTally counts the web seed's bytes per torrent in memory and adds them to the playback
// days now and then, so that a busy web seed costs the database one write per torrent per flush.
type WebSeedTally struct {
	mu      sync.Mutex
	pending map[int64]*[servedToCount]int64
}

// Add counts n bytes of torrentID served to who.
func (t *WebSeedTally) Add(torrentID int64, who ServedTo, n int64) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = map[int64]*[servedToCount]int64{}
	}
	c := t.pending[torrentID]
	if c == nil {
		c = new([servedToCount]int64)
		t.pending[torrentID] = c
	}
	c[who] += n
}

// Flush adds what was counted to the day (UTC) of now. What it could not write is counted again.
func (t *WebSeedTally) Flush(ctx context.Context, db DBTX, now time.Time) error {
	t.mu.Lock()
	pending := t.pending
	t.pending = nil
	t.mu.Unlock()
	var errs []error
	for id, c := range pending {
		_, err := db.Exec(ctx, `
			INSERT INTO playback_days (torrent_id, day, served_player, served_browser, served_bittorrent, served_fleet)
			SELECT id, $2, $3, $4, $5, $6 FROM torrents WHERE id = $1
			ON CONFLICT (torrent_id, day) DO UPDATE SET
			    served_player = playback_days.served_player + EXCLUDED.served_player,
			    served_browser = playback_days.served_browser + EXCLUDED.served_browser,
			    served_bittorrent = playback_days.served_bittorrent + EXCLUDED.served_bittorrent,
			    served_fleet = playback_days.served_fleet + EXCLUDED.served_fleet`,
			id, now.UTC().Format(time.DateOnly), c[ToPlayer], c[ToBrowser], c[ToBitTorrent], c[ToFleet])
		if err != nil {
			errs = append(errs, fmt.Errorf("web seed bytes of torrent %d: %w", id, err))
			for who, n := range c {
				t.Add(id, ServedTo(who), n)
			}
		}
	}
	return errors.Join(errs...)
}

// FlushEvery flushes the tally every period until ctx ends, and once more then.
func (t *WebSeedTally) FlushEvery(ctx context.Context, db DBTX, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := t.Flush(ctx, db, time.Now()); err != nil {
				log.Warn("count web seed bytes", slog.Any("error", err))
			}
			cancel()
			return
		case <-tick.C:
			if err := t.Flush(ctx, db, time.Now()); err != nil {
				log.Warn("count web seed bytes", slog.Any("error", err))
			}
		}
	}
}
