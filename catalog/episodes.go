package catalog

import (
	"context"
	"fmt"
	"strconv"
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
	Number        *int       `db:"number"`           // its number in the show, for itunes:episode
	Duration      *int       `db:"duration_seconds"` // read from the media; nil when unknown
}

// EpisodeInput is what the episode form sends. Number is optional: without one the episode
// takes the number after the show's highest.
type EpisodeInput struct {
	Title, Description, Number string
}

func (in *EpisodeInput) validate() (number *int, err error) {
	fe := FieldErrors{}
	in.Title = strings.TrimSpace(in.Title)
	in.Description = strings.TrimSpace(in.Description)
	in.Number = strings.TrimSpace(in.Number)
	if in.Number != "" {
		n, err := strconv.Atoi(in.Number)
		if err != nil || n < 1 || n > 1_000_000 {
			fe["number"] = "Episode number must be a whole number from 1 to 1000000."
		} else {
			number = &n
		}
	}
	checkTitle(fe, in.Title, in.Description)
	if len(fe) > 0 {
		return nil, fe
	}
	return number, nil
}

const episodeColumns = `id, show_id, title, description, status, failure_reason, created_at, published_at, number, duration_seconds`

// CreateEpisode adds a draft episode to a show; its file comes with an upload.
func CreateEpisode(ctx context.Context, db DBTX, showID int64, in EpisodeInput) (Episode, error) {
	number, err := in.validate()
	if err != nil {
		return Episode{}, err
	}
	rows, _ := db.Query(ctx, `INSERT INTO episodes (show_id, title, description, number)
		VALUES ($1, $2, $3, coalesce($4, (SELECT coalesce(max(number), 0) + 1 FROM episodes WHERE show_id = $1 AND status <> 'deleted')))
		RETURNING `+episodeColumns,
		showID, in.Title, in.Description, number)
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
		AND (release_at IS NULL OR release_at <= now())
		ORDER BY published_at DESC NULLS LAST, id DESC LIMIT $2`, showID, limit)
	eps, err := pgx.CollectRows(rows, pgx.RowToStructByName[Episode])
	if err != nil {
		return nil, fmt.Errorf("published episodes: %w", err)
	}
	return eps, nil
}

// FindPublishedEpisode loads a public episode of a show.
func FindPublishedEpisode(ctx context.Context, db DBTX, showID, id int64) (Episode, error) {
	rows, _ := db.Query(ctx, `SELECT `+episodeColumns+` FROM episodes WHERE show_id = $1 AND id = $2 AND status = 'published'
		AND (release_at IS NULL OR release_at <= now())`, showID, id)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Episode])
	return e, notFound(err, "episode")
}

// SetEpisodeDuration records the length of an episode's media, read from the file.
func SetEpisodeDuration(ctx context.Context, db DBTX, id int64, seconds int) error {
	if _, err := db.Exec(ctx, `UPDATE episodes SET duration_seconds = $2 WHERE id = $1`, id, seconds); err != nil {
		return fmt.Errorf("duration of episode %d: %w", id, err)
	}
	return nil
}

// UpdateEpisode changes an episode's title, description and, when given, number (not deleted ones).
func UpdateEpisode(ctx context.Context, db DBTX, id int64, in EpisodeInput) (Episode, error) {
	number, err := in.validate()
	if err != nil {
		return Episode{}, err
	}
	rows, _ := db.Query(ctx, `UPDATE episodes SET title = $2, description = $3, number = coalesce($4, number)
		WHERE id = $1 AND status <> 'deleted'
		RETURNING `+episodeColumns, id, in.Title, in.Description, number)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Episode])
	return e, notFound(err, "episode")
}

// EpisodeRelease is the date before which an episode is not listed publicly, or nil.
func EpisodeRelease(ctx context.Context, db DBTX, episodeID int64) (*time.Time, error) {
	var at *time.Time
	if err := db.QueryRow(ctx, `SELECT release_at FROM episodes WHERE id = $1`, episodeID).Scan(&at); err != nil {
		return nil, notFound(err, "episode")
	}
	return at, nil
}

// SetEpisodeRelease sets the date before which a published episode is not listed publicly (its
// campaign's backers get it first); nil lists it as soon as it is published.
func SetEpisodeRelease(ctx context.Context, db DBTX, showID, episodeID int64, at *time.Time) error {
	tag, err := db.Exec(ctx, `UPDATE episodes SET release_at = $3 WHERE id = $2 AND show_id = $1`, showID, episodeID, at)
	if err != nil {
		return fmt.Errorf("release of episode %d: %w", episodeID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("episode %d: %w", episodeID, ErrNotFound)
	}
	return nil
}

// checkTitle puts in fe what is wrong with a show's or an episode's title and description.
func checkTitle(fe FieldErrors, title, description string) {
	switch n := utf8.RuneCountInString(title); {
	case n == 0:
		fe["title"] = "Title is required."
	case n > 200:
		fe["title"] = "Title must be at most 200 characters."
	}
	if utf8.RuneCountInString(description) > 5000 {
		fe["description"] = "Description must be at most 5000 characters."
	}
}
