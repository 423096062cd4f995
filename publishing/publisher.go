package publishing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
)

// Publisher turns finished uploads into torrents and hands them to the fleet.
type Publisher struct {
	DB interface {
		catalog.DBTX
		Begin(ctx context.Context) (pgx.Tx, error)
	}
	Store    *UploadStore
	BaseURL  string                                                             // public URL of the control plane, without a trailing slash
	Assigned func(ctx context.Context, tx pgx.Tx, torrent seeding.Record) error // assigns replicas; may be nil
}

// TrackerURL is the announce URL of our tracker.
func (p *Publisher) TrackerURL() string { return p.BaseURL + "/announce" }

// WebTrackerURL is our WebSocket tracker's URL: the same path, ws:// or wss:// as BaseURL is
// http:// or https://.
func (p *Publisher) WebTrackerURL() string {
	if rest, ok := strings.CutPrefix(p.BaseURL, "https://"); ok {
		return "wss://" + rest + "/announce"
	}
	return "ws://" + strings.TrimPrefix(p.BaseURL, "http://") + "/announce"
}

// WebSeedURL is a torrent's url-list entry (BEP 19): the file's own URL, which webtorrent
// requires for a single-file torrent and BitTorrent clients accept as well.
func (p *Publisher) WebSeedURL(infoHashHex, name string) string {
	return seeding.WebSeedFileURL(p.BaseURL+"/seed/"+infoHashHex+"/", name)
}

// Finish builds the torrent of a completed upload from the hashes made while it arrived, stores
// it and moves the episode to processing. Calling it again for the same upload does nothing.
func (p *Publisher) Finish(ctx context.Context, uploadID string) error {
	up, err := catalog.FindUpload(ctx, p.DB, uploadID)
	if err != nil {
		return err
	}
	if up.CompletedAt != nil {
		return nil
	}
	hashes, err := p.Store.Hashes(ctx, uploadID)
	if err != nil {
		return err
	}
	if hashes.Length != up.Size {
		return fmt.Errorf("upload %s: hashed %d bytes of %d", uploadID, hashes.Length, up.Size)
	}
	ctype, err := p.Store.ContentType(uploadID)
	if err != nil {
		catalog.FailUpload(ctx, p.DB, uploadID, "The file is not audio, video or an archive.")
		return err
	}
	// The playing time, for podcast apps; a file whose headers do not say simply has none.
	duration := -1
	if d, err := MediaDuration(p.Store.Path(uploadID), ctype); err == nil {
		duration = int(d.Round(time.Second) / time.Second)
	}
	slug, err := catalog.EpisodeShowSlug(ctx, p.DB, up.EpisodeID)
	if err != nil {
		return err
	}
	opts := seeding.TorrentOptions{Name: up.Filename, TrackerURL: p.TrackerURL(), WebTrackerURL: p.WebTrackerURL(), ShowURL: p.BaseURL + "/s/" + slug, CreatedAt: time.Now()}
	t, err := seeding.BuildTorrent(hashes, opts)
	if err != nil {
		return err
	}
	// url-list names the infohash, which the info dictionary alone decides: build again with it.
	opts.WebSeedURL = p.WebSeedURL(fmt.Sprintf("%x", t.InfoHash), t.Name)
	if t, err = seeding.BuildTorrent(hashes, opts); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, p.DB, func(tx pgx.Tx) error {
		if first, err := catalog.CompleteUpload(ctx, tx, uploadID); err != nil || !first {
			return err
		}
		// A file that failed to publish before gives way to this one.
		if err := seeding.DropFailedTorrents(ctx, tx, up.EpisodeID); err != nil {
			return err
		}
		// An early-access episode's torrent is the fleet's alone until the release.
		release, err := catalog.EpisodeRelease(ctx, tx, up.EpisodeID)
		if err != nil {
			return err
		}
		rec, err := seeding.CreateTorrent(ctx, tx, seeding.Record{
			EpisodeID: up.EpisodeID, InfoHash: t.InfoHash[:], Name: t.Name, Length: hashes.Length,
			PieceLength: hashes.PieceLength, SHA256: hashes.SHA256[:], ContentType: ctype,
			ContentPath: p.Store.Path(uploadID), Metainfo: t.Bytes, PublicFrom: release,
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "torrents_infohash_key" {
			return fmt.Errorf("%w: this exact file, with this name, is already published as another episode", catalog.ErrInvalid)
		}
		if err != nil {
			return err
		}
		if err := catalog.ProcessEpisode(ctx, tx, up.EpisodeID); err != nil {
			return err
		}
		if duration >= 0 {
			if err := catalog.SetEpisodeDuration(ctx, tx, up.EpisodeID, duration); err != nil {
				return err
			}
		}
		if p.Assigned != nil {
			return p.Assigned(ctx, tx, rec)
		}
		return nil
	})
}

// Delete unpublishes an episode and its torrent in one transaction. It locks the torrents before
// the episode, the order publishing takes them in, so a delete while the episode is being
// published waits for it instead of deadlocking with it.
func (p *Publisher) Delete(ctx context.Context, episodeID int64) error {
	return pgx.BeginFunc(ctx, p.DB, func(tx pgx.Tx) error {
		if err := seeding.LockEpisodeTorrents(ctx, tx, episodeID); err != nil {
			return err
		}
		if err := catalog.DeleteEpisode(ctx, tx, episodeID); err != nil {
			return err
		}
		t, err := seeding.TorrentForEpisode(ctx, tx, episodeID)
		if errors.Is(err, seeding.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return seeding.DeleteTorrent(ctx, tx, t.ID)
	})
}

// SetRelease holds an episode back from the public until at (its campaign's backers get it
// first over a private torrent), or releases it with nil: the episode's listing (catalog) and
// its torrent's embargo (seeding) in one transaction, the torrent row taken first.
func SetRelease(ctx context.Context, db interface {
	seeding.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}, showID, episodeID int64, at *time.Time) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := seeding.LockEpisodeTorrents(ctx, tx, episodeID); err != nil {
			return err
		}
		if err := catalog.SetEpisodeRelease(ctx, tx, showID, episodeID, at); err != nil {
			return err
		}
		return seeding.SetPublicFrom(ctx, tx, episodeID, at)
	})
}

// Episodes is the fleet's seeding.Episodes: the catalog moves each episode as the fleet
// publishes or fails its torrent, in the fleet's transaction.
type Episodes struct{}

// TorrentsPublished publishes the episodes whose torrents the fleet just published.
func (Episodes) TorrentsPublished(ctx context.Context, tx pgx.Tx, episodeIDs []int64) error {
	return catalog.PublishEpisodes(ctx, tx, episodeIDs)
}

// TorrentFailed fails the episode whose torrent could not be published in time.
func (Episodes) TorrentFailed(ctx context.Context, tx pgx.Tx, episodeID int64, reason string) error {
	return catalog.FailEpisode(ctx, tx, episodeID, reason)
}
