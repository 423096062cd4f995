package seeding

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/fanseed/fanseed/periodic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned for a torrent that does not exist (or is deleted).
var ErrNotFound = errors.New("not found")

// DBTX is what queries need: a pool, a connection or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Torrent statuses: a torrent is served by the tracker only once published.
const (
	StatusProcessing = "processing"
	StatusPublished  = "published"
	StatusFailed     = "failed"
	StatusDeleted    = "deleted"
)

// Record is a torrent as stored: the file, its hashes and where its bytes are.
type Record struct {
	ID          int64      `db:"id"`
	EpisodeID   int64      `db:"episode_id"`
	InfoHash    []byte     `db:"infohash"`
	Name        string     `db:"name"`
	Length      int64      `db:"length"`
	PieceLength int64      `db:"piece_length"`
	SHA256      []byte     `db:"sha256"`
	ContentType string     `db:"content_type"`
	ContentPath string     `db:"content_path"`
	Metainfo    []byte     `db:"metainfo"`
	Status      string     `db:"status"`
	CreatedAt   time.Time  `db:"created_at"`
	PublishedAt *time.Time `db:"published_at"`
	Completed   int64      `db:"completed"`
	Downloaders int64      `db:"downloaders"`
	PublicFrom  *time.Time `db:"public_from"` // before it, fans are refused the torrent (an early-access episode); nil: none
}

// PublicAt reports whether fans may have the torrent at now: it is published and past any
// embargo. The seedbox nodes fetch and seed it before.
func (r Record) PublicAt(now time.Time) bool {
	return r.Status == StatusPublished && (r.PublicFrom == nil || !now.Before(*r.PublicFrom))
}

// InfoHashHex is the infohash as 40 hex digits, as URLs and magnets carry it.
func (r Record) InfoHashHex() string { return hex.EncodeToString(r.InfoHash) }

const recordColumns = `id, episode_id, infohash, name, length, piece_length, sha256, content_type, content_path,
	metainfo, status, created_at, published_at, completed, downloaders, public_from`

// CreateTorrent stores a new torrent for an episode, in processing until the fleet seeds it.
func CreateTorrent(ctx context.Context, db DBTX, r Record) (Record, error) {
	rows, _ := db.Query(ctx, `
		INSERT INTO torrents (episode_id, infohash, name, length, piece_length, sha256, content_type, content_path, metainfo, public_from)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+recordColumns,
		r.EpisodeID, r.InfoHash, r.Name, r.Length, r.PieceLength, r.SHA256, r.ContentType, r.ContentPath, r.Metainfo, r.PublicFrom)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Record])
	if err != nil {
		return Record{}, fmt.Errorf("create torrent: %w", err)
	}
	return out, nil
}

// FindTorrent loads a torrent that is not deleted by its infohash.
func FindTorrent(ctx context.Context, db DBTX, infoHash []byte) (Record, error) {
	rows, _ := db.Query(ctx, `SELECT `+recordColumns+` FROM torrents WHERE infohash = $1 AND status <> 'deleted'`, infoHash)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Record])
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("torrent %x: %w", infoHash, ErrNotFound)
	}
	return r, err
}

// TorrentForEpisode loads an episode's live torrent.
func TorrentForEpisode(ctx context.Context, db DBTX, episodeID int64) (Record, error) {
	rows, _ := db.Query(ctx, `SELECT `+recordColumns+` FROM torrents WHERE episode_id = $1 AND status <> 'deleted'`, episodeID)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Record])
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("torrent of episode %d: %w", episodeID, ErrNotFound)
	}
	return r, err
}

// SetPublicFrom embargoes an episode's torrents until at (nil lifts it).
func SetPublicFrom(ctx context.Context, db DBTX, episodeID int64, at *time.Time) error {
	if _, err := db.Exec(ctx, `UPDATE torrents SET public_from = $2 WHERE episode_id = $1 AND status <> 'deleted'`, episodeID, at); err != nil {
		return fmt.Errorf("embargo torrents of episode %d: %w", episodeID, err)
	}
	return nil
}

// DeleteTorrent unpublishes a torrent: the tracker refuses it and the fleet drops it.
func DeleteTorrent(ctx context.Context, db DBTX, id int64) error {
	_, err := db.Exec(ctx, `UPDATE torrents SET status = 'deleted' WHERE id = $1`, id)
	return err
}

// Published is the set of torrents the tracker serves (published, past any embargo), refreshed
// from the database at most every TTL so that several control-plane processes agree within that
// time, and an embargo ends within it.
type Published struct {
	DB  DBTX
	TTL time.Duration

	mu      sync.Mutex
	loaded  time.Time
	hashes  map[[20]byte]int64 // infohash -> torrent id
	loading bool
}

// Allowed reports whether the tracker may serve the torrent. It never blocks on the database
// for longer than one refresh.
func (p *Published) Allowed(ih [20]byte) bool {
	p.refresh(false)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.hashes[ih]
	return ok
}

// ID returns the torrent id of a published infohash.
func (p *Published) ID(ih [20]byte) (int64, bool) {
	p.refresh(false)
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.hashes[ih]
	return id, ok
}

// Invalidate makes the next lookup read the database, after this process changed a status.
func (p *Published) Invalidate() { p.refresh(true) }

func (p *Published) refresh(force bool) {
	ttl := p.TTL
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	p.mu.Lock()
	if p.loading || (!force && p.hashes != nil && time.Since(p.loaded) < ttl) {
		p.mu.Unlock()
		return
	}
	p.loading = true
	p.mu.Unlock()

	next := map[[20]byte]int64{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, _ := p.DB.Query(ctx, `SELECT infohash, id FROM torrents WHERE status = 'published' AND (public_from IS NULL OR public_from <= now())`)
	var ih []byte
	var id int64
	_, err := pgx.ForEachRow(rows, []any{&ih, &id}, func() error {
		var k [20]byte
		copy(k[:], ih)
		next[k] = id
		return nil
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loading = false
	if err != nil && p.hashes != nil {
		return // keep serving the last known set
	}
	p.hashes, p.loaded = next, time.Now()
}

// bucketSize is the width of a swarm_stats time bucket.
const bucketSize = 5 * time.Minute

// RecordStats adds a tracker snapshot to the five-minute buckets and the torrents' totals.
// Downloaders are counted once per torrent for good: a bucket counts those first seen in it.
// Completions are counted once per address and torrent a day, across every serve process: the
// snapshot's CompletedAddrs, not its Completed.
func RecordStats(ctx context.Context, db DBTX, at time.Time, stats []SwarmStats) error {
	if len(stats) == 0 {
		return nil
	}
	bucket := at.Truncate(bucketSize)
	day := at.UTC().Truncate(24 * time.Hour)
	hashes := make([][]byte, len(stats))
	seeders, leechers, announces := make([]int64, len(stats)), make([]int64, len(stats)), make([]int64, len(stats))
	var peerTorrents, peers, doneTorrents, done [][]byte
	for i, s := range stats {
		hashes[i] = append([]byte(nil), s.InfoHash[:]...)
		seeders[i], leechers[i], announces[i] = int64(s.Seeders), int64(s.Leechers), s.Announces
		for _, a := range s.DownloaderAddrs {
			peerTorrents, peers = append(peerTorrents, hashes[i]), append(peers, downloaderKey(s.InfoHash, a))
		}
		for _, a := range s.CompletedAddrs {
			doneTorrents, done = append(doneTorrents, hashes[i]), append(done, completionKey(day, s.InfoHash, a))
		}
	}
	// Several serve processes record at once: each locks the torrents it counts in one order
	// first, so that they wait for each other instead of deadlocking. NO KEY UPDATE, as the
	// UPDATE below takes: heartbeats adding torrent_served rows hold key-share locks on torrents
	// in the nodes' order, and those must not wait for this or it for them.
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM torrents WHERE infohash = ANY($1) ORDER BY id FOR NO KEY UPDATE`, hashes); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
		WITH done AS (
			INSERT INTO torrent_completions (day, torrent_id, peer)
			SELECT $9::date, t.id, u.peer FROM unnest($5::bytea[], $6::bytea[]) AS u(infohash, peer)
			JOIN torrents t ON t.infohash = u.infohash
			ON CONFLICT DO NOTHING
			RETURNING torrent_id
		), s AS (
			SELECT t.id, u.seeders, u.leechers, u.announces,
			       (SELECT count(*) FROM done WHERE done.torrent_id = t.id) AS completed
			FROM unnest($2::bytea[], $3::bigint[], $4::bigint[], $10::bigint[])
			     AS u(infohash, seeders, leechers, announces)
			JOIN torrents t ON t.infohash = u.infohash
		), fresh AS (
			INSERT INTO torrent_downloaders (torrent_id, peer, first_seen)
			SELECT t.id, u.peer, $1 FROM unnest($7::bytea[], $8::bytea[]) AS u(infohash, peer)
			JOIN torrents t ON t.infohash = u.infohash
			ON CONFLICT DO NOTHING
			RETURNING torrent_id
		), d AS (
			SELECT s.*, (SELECT count(*) FROM fresh f WHERE f.torrent_id = s.id) AS downloaders FROM s
		), totals AS (
			UPDATE torrents t SET completed = t.completed + d.completed, downloaders = t.downloaders + d.downloaders
			FROM d WHERE t.id = d.id AND (d.completed > 0 OR d.downloaders > 0)
		)
		INSERT INTO swarm_stats (torrent_id, bucket, seeders, leechers, completed, announces, downloaders)
		SELECT id, $1, seeders, leechers, completed, announces, downloaders FROM d
		ON CONFLICT (torrent_id, bucket) DO UPDATE SET
			seeders = greatest(swarm_stats.seeders, EXCLUDED.seeders),
			leechers = greatest(swarm_stats.leechers, EXCLUDED.leechers),
			completed = swarm_stats.completed + EXCLUDED.completed,
			announces = swarm_stats.announces + EXCLUDED.announces,
			downloaders = swarm_stats.downloaders + EXCLUDED.downloaders`,
			bucket, hashes, seeders, leechers, doneTorrents, done, peerTorrents, peers, day, announces)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM torrent_completions WHERE day < $1::date`, day.AddDate(0, 0, -1))
		return err
	})
	if err != nil {
		return fmt.Errorf("record swarm stats: %w", err)
	}
	return nil
}

// downloaderKey stands for a downloader of a torrent without storing its address: the first
// 16 bytes of SHA-256 over the infohash and the address.
func downloaderKey(ih [20]byte, a netip.Addr) []byte {
	h := sha256.New()
	h.Write(ih[:])
	b, _ := a.Unmap().MarshalBinary()
	h.Write(b)
	return h.Sum(nil)[:16]
}

// completionKey stands for an address that finished a torrent on a day: the first 16 bytes of
// SHA-256 over the day, the infohash and the address, so that days do not link.
func completionKey(day time.Time, ih [20]byte, a netip.Addr) []byte {
	h := sha256.New()
	h.Write([]byte(day.Format(time.DateOnly)))
	h.Write(ih[:])
	b, _ := a.Unmap().MarshalBinary()
	h.Write(b)
	return h.Sum(nil)[:16]
}

// RecordStatsEvery adds the tracker's counters to the database every interval until ctx ends,
// and once more at the end.
func RecordStatsEvery(ctx context.Context, db DBTX, t *Tracker, every time.Duration, logger *slog.Logger) {
	periodic.Loop{Name: "record swarm stats", Every: every, Final: true, Log: logger}.Run(ctx, func(ctx context.Context) error {
		return RecordStats(ctx, db, time.Now(), t.Snapshot())
	})
}

// LockEpisodeTorrents locks an episode's torrent rows, in the order publishing takes them (the
// torrent before its episode), for a transaction that goes on to change the episode.
func LockEpisodeTorrents(ctx context.Context, db DBTX, episodeID int64) error {
	if _, err := db.Exec(ctx, `SELECT 1 FROM torrents WHERE episode_id = $1 ORDER BY id FOR NO KEY UPDATE`, episodeID); err != nil {
		return fmt.Errorf("lock torrents of episode %d: %w", episodeID, err)
	}
	return nil
}

// DropFailedTorrents marks deleted an episode's torrents that failed to publish, so that a new
// file of the episode takes their place.
func DropFailedTorrents(ctx context.Context, db DBTX, episodeID int64) error {
	if _, err := db.Exec(ctx, `UPDATE torrents SET status = 'deleted' WHERE episode_id = $1 AND status = 'failed'`, episodeID); err != nil {
		return fmt.Errorf("drop failed torrents of episode %d: %w", episodeID, err)
	}
	return nil
}

// PublishedTorrents returns the published torrents of the given episodes, by episode id.
func PublishedTorrents(ctx context.Context, db DBTX, episodeIDs []int64) (map[int64]Record, error) {
	rows, _ := db.Query(ctx, `SELECT `+recordColumns+` FROM torrents WHERE episode_id = ANY($1) AND status = 'published'`, episodeIDs)
	recs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Record])
	if err != nil {
		return nil, fmt.Errorf("published torrents: %w", err)
	}
	out := make(map[int64]Record, len(recs))
	for _, r := range recs {
		out[r.EpisodeID] = r
	}
	return out, nil
}

// AddWebTrackerToAll re-issues the .torrent of every torrent not deleted that does not list the
// WebSocket tracker yet, with it in its announce-list (see AddWebTracker); infohashes stay as
// they are. It returns how many it changed. A .torrent it cannot read is left as it is.
func AddWebTrackerToAll(ctx context.Context, db DBTX, webTrackerURL string) (int, error) {
	return reissueAll(ctx, db, func(_, _ string, mi []byte) ([]byte, bool, error) {
		return AddWebTracker(mi, webTrackerURL)
	})
}
