package publishing

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/periodic"
)

// DefaultUploadExpireAfter is how long an unfinished upload may go without a byte written
// before it is deleted.
const DefaultUploadExpireAfter = 24 * time.Hour

var uploadFileRE = regexp.MustCompile(`^([0-9a-f]{32})(\.info|\.hash|\.hash\.tmp)?$`)

// ExpireUploads deletes the unfinished uploads nobody has written to since before cutoff: their
// bytes, their hash state and tus's info file, and their row, so that a client resuming one
// hears it is gone. An episode left with no upload in progress is marked failed with a reason
// its creator reads, and may be uploaded again. Files under the store with no upload row (an
// upload whose creation failed half way) go once they are as old. Finished uploads are kept:
// their bytes are the episode. It returns how many uploads it deleted.
func ExpireUploads(ctx context.Context, db interface {
	catalog.DBTX
	Begin(context.Context) (pgx.Tx, error)
}, store *UploadStore, cutoff time.Time) (int, error) {
	ids, err := catalog.UnfinishedUploads(ctx, db, cutoff)
	if err != nil {
		return 0, fmt.Errorf("expire uploads: %w", err)
	}
	expired := 0
	for _, id := range ids {
		if store.lastWrite(id).After(cutoff) {
			continue // still arriving
		}
		deleted, err := catalog.ExpireUpload(ctx, db, id)
		if err != nil {
			return expired, fmt.Errorf("expire upload %s: %w", id, err)
		}
		if !deleted {
			continue // finished meanwhile: its file is the episode's now
		}
		if err := store.remove(id); err != nil {
			return expired, fmt.Errorf("expire upload %s: %w", id, err)
		}
		expired++
	}
	return expired, store.removeOrphans(ctx, db, cutoff)
}

// lastWrite is when the upload's files last changed, or the zero time when it has none.
func (s *UploadStore) lastWrite(id string) time.Time {
	var last time.Time
	for _, name := range []string{s.Path(id), s.Path(id) + ".info", s.statePath(id)} {
		if fi, err := os.Stat(name); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last
}

// remove deletes an upload's files.
func (s *UploadStore) remove(id string) error {
	var errs []error
	for _, name := range []string{s.Path(id), s.Path(id) + ".info", s.statePath(id), s.statePath(id) + ".tmp"} {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeOrphans deletes upload files older than cutoff whose id has no upload row.
func (s *UploadStore) removeOrphans(ctx context.Context, db catalog.DBTX, cutoff time.Time) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("expire uploads: %w", err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, e := range entries {
		m := uploadFileRE.FindStringSubmatch(e.Name())
		if m == nil || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		if s.lastWrite(m[1]).Before(cutoff) {
			ids = append(ids, m[1])
		}
	}
	if len(ids) == 0 {
		return nil
	}
	orphans, err := catalog.UploadsWithoutRow(ctx, db, ids)
	if err != nil {
		return fmt.Errorf("expire uploads: %w", err)
	}
	var errs []error
	for _, id := range orphans {
		errs = append(errs, s.remove(id))
	}
	return errors.Join(errs...)
}

// ExpireUploadsEvery runs ExpireUploads every interval until ctx ends, for uploads silent for
// longer than after.
func ExpireUploadsEvery(ctx context.Context, db interface {
	catalog.DBTX
	Begin(context.Context) (pgx.Tx, error)
}, store *UploadStore, after, interval time.Duration, logger *slog.Logger) {
	periodic.Loop{Name: "expire uploads", Every: interval, Log: logger}.Run(ctx, func(ctx context.Context) error {
		n, err := ExpireUploads(ctx, db, store, time.Now().Add(-after))
		if n > 0 {
			logger.Info("unfinished uploads expired", slog.Int("uploads", n), slog.Duration("after", after))
		}
		return err
	})
}
