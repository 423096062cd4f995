package catalog

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // decoders for image.DecodeConfig
	_ "image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// MaxArtworkBytes is the largest show image accepted.
const MaxArtworkBytes = 2 << 20

// The sides of a show's square image, in pixels, as Apple Podcasts takes them.
const (
	MinArtworkSide         = 1400
	MaxArtworkSide         = 3000
	RecommendedArtworkSide = 3000
)

// Artwork is where show images live.
type Artwork struct{ Dir string }

func (a Artwork) path(showID int64) string {
	return filepath.Join(a.Dir, strconv.FormatInt(showID, 10))
}

// Save checks an uploaded image by its content (a square PNG or JPEG of MinArtworkSide to
// MaxArtworkSide pixels, at most MaxArtworkBytes, as podcast directories take it), stores it
// and records its type and size on the show.
func (a Artwork) Save(ctx context.Context, db DBTX, showID int64, r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, MaxArtworkBytes+1))
	if err != nil {
		return err
	}
	if len(b) > MaxArtworkBytes {
		return FieldErrors{"artwork": "The image must be at most 2 MiB."}
	}
	typ := http.DetectContentType(b)
	switch typ {
	case "image/png", "image/jpeg":
	default:
		return FieldErrors{"artwork": "The image must be a PNG or JPEG file, as podcast directories require."}
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return FieldErrors{"artwork": "The image could not be read: it is not a whole PNG or JPEG file."}
	}
	if msg := checkArtworkSize(cfg.Width, cfg.Height); msg != "" {
		return FieldErrors{"artwork": msg}
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
	_, err = db.Exec(ctx, `UPDATE shows SET artwork_type = $2, artwork_width = $3, artwork_height = $4, artwork_updated_at = now()
		WHERE id = $1`, showID, typ, cfg.Width, cfg.Height)
	return err
}

// checkArtworkSize says what is wrong with an image's size for podcast directories, or "".
func checkArtworkSize(w, h int) string {
	switch {
	case w != h:
		return fmt.Sprintf("The image must be square: this one is %dx%d pixels. Use %dx%d (at least %dx%d).",
			w, h, RecommendedArtworkSide, RecommendedArtworkSide, MinArtworkSide, MinArtworkSide)
	case w < MinArtworkSide:
		return fmt.Sprintf("The image must be at least %dx%d pixels: this one is %dx%d. %dx%d is recommended.",
			MinArtworkSide, MinArtworkSide, w, h, RecommendedArtworkSide, RecommendedArtworkSide)
	case w > MaxArtworkSide:
		return fmt.Sprintf("The image must be at most %dx%d pixels: this one is %dx%d.", MaxArtworkSide, MaxArtworkSide, w, h)
	}
	return ""
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
