package catalog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// MaxArtworkBytes is the largest show image accepted.
const MaxArtworkBytes = 2 << 20

// Artwork is where show images live.
type Artwork struct{ Dir string }

func (a Artwork) path(showID int64) string {
	return filepath.Join(a.Dir, strconv.FormatInt(showID, 10))
}

// Save checks an uploaded image by its content (PNG, JPEG, GIF or WebP, at most
// MaxArtworkBytes), stores it and records its type on the show.
func (a Artwork) Save(ctx context.Context, db DBTX, showID int64, r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, MaxArtworkBytes+1))
	if err != nil {
		return err
	}
	if len(b) > MaxArtworkBytes {
		return FieldErrors{"artwork": "The image must be at most 2 MiB."}
	}
	typ := http.DetectContentType(b)
	if len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")) {
		typ = "image/webp"
	}
	switch typ {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
	default:
		return FieldErrors{"artwork": "The image must be a PNG, JPEG, GIF or WebP file."}
	}
	if err := os.MkdirAll(a.Dir, 0o750); err != nil {
		return err
	}
	tmp := a.path(showID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	if err := os.Rename(tmp, a.path(showID)); err != nil {
		return err
	}
	_, err = db.Exec(ctx, `UPDATE shows SET artwork_type = $2, artwork_updated_at = now() WHERE id = $1`, showID, typ)
	return err
}

// Open returns a show's image, its type and when it changed.
func (a Artwork) Open(ctx context.Context, db DBTX, showID int64) (*os.File, string, time.Time, error) {
	var typ string
	var at *time.Time
	if err := db.QueryRow(ctx, `SELECT artwork_type, artwork_updated_at FROM shows WHERE id = $1`, showID).Scan(&typ, &at); err != nil {
		return nil, "", time.Time{}, notFound(err, "show")
	}
	if typ == "" || at == nil {
		return nil, "", time.Time{}, fmt.Errorf("artwork: %w", ErrNotFound)
	}
	f, err := os.Open(a.path(showID))
	return f, typ, *at, err
}
