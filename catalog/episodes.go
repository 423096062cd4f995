package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Episode is one file of a show, published as a torrent.
type Episode struct {
	ID            int64      `db:"id"`
	ShowID        int64      `db:"show_id"`
	Title         string     `db:"title"`
	Description   string     `db:"description"`
	Status        string     `db:"status"`
	FailureReason string     `db:"failure_reason"`
	CreatedAt     time.Time  `db:"created_at"`
	PublishedAt   *time.Time `db:"published_at"`
}

// EpisodeInput is what the episode form sends.
type EpisodeInput struct {
	Title, Description string
}

func (in *EpisodeInput) validate() error {
	fe := FieldErrors{}
	in.Title = strings.TrimSpace(in.Title)
	in.Description = strings.TrimSpace(in.Description)
	switch n := utf8.RuneCountInString(in.Title); {
	case n == 0:
		fe["title"] = "Title is required."
	case n > 200:
		fe["title"] = "Title must be at most 200 characters."
	}
	if utf8.RuneCountInString(in.Description) > 5000 {
		fe["description"] = "Description must be at most 5000 characters."
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

const episodeColumns = `id, show_id, title, description, status, failure_reason, created_at, published_at`

// CreateEpisode adds a draft episode to a show; its file comes with an upload.
func CreateEpisode(ctx context.Context, db DBTX, showID int64, in EpisodeInput) (Episode, error) {
	if err := in.validate(); err != nil {
		return Episode{}, err
	}
	rows, _ := db.Query(ctx, `INSERT INTO episodes (show_id, title, description) VALUES ($1, $2, $3) RETURNING `+episodeColumns,
		showID, in.Title, in.Description)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Episode])
	if err != nil {
		return Episode{}, fmt.Errorf("create episode: %w", err)
	}
	return e, nil
}

// ListEpisodes returns a show's episodes, newest first, without deleted ones.
func ListEpisodes(ctx context.Context, db DBTX, showID int64) ([]Episode, error) {
	rows, _ := db.Query(ctx, `SELECT `+episodeColumns+` FROM episodes WHERE show_id = $1 AND status <> 'deleted'
		ORDER BY created_at DESC, id DESC`, showID)
	eps, err := pgx.CollectRows(rows, pgx.RowToStructByName[Episode])
	if err != nil {
		return nil, fmt.Errorf("list episodes: %w", err)
	}
	return eps, nil
}

// PublishedEpisodes lists a show's public episodes, newest first.
func PublishedEpisodes(ctx context.Context, db DBTX, showID int64, limit int) ([]Episode, error) {
	rows, _ := db.Query(ctx, `SELECT `+episodeColumns+` FROM episodes WHERE show_id = $1 AND status = 'published'
		ORDER BY published_at DESC NULLS LAST, id DESC LIMIT $2`, showID, limit)
	eps, err := pgx.CollectRows(rows, pgx.RowToStructByName[Episode])
	if err != nil {
		return nil, fmt.Errorf("published episodes: %w", err)
	}
	return eps, nil
}

// FindPublishedEpisode loads a public episode of a show.
func FindPublishedEpisode(ctx context.Context, db DBTX, showID, id int64) (Episode, error) {
	rows, _ := db.Query(ctx, `SELECT `+episodeColumns+` FROM episodes WHERE show_id = $1 AND id = $2 AND status = 'published'`, showID, id)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Episode])
	return e, notFound(err, "episode")
}

// UpdateEpisode changes an episode's title and description (not deleted ones).
func UpdateEpisode(ctx context.Context, db DBTX, id int64, in EpisodeInput) (Episode, error) {
	if err := in.validate(); err != nil {
		return Episode{}, err
	}
	rows, _ := db.Query(ctx, `UPDATE episodes SET title = $2, description = $3 WHERE id = $1 AND status <> 'deleted'
		RETURNING `+episodeColumns, id, in.Title, in.Description)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Episode])
	return e, notFound(err, "episode")
}
