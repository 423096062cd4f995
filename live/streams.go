package live

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Stream is one broadcast of a show, from connect to end, with its statistics.
type Stream struct {
	ID             int64      `db:"id"`
	ShowID         int64      `db:"show_id"`
	KeyID          int64      `db:"key_id"`
	StartedAt      time.Time  `db:"started_at"`
	SeenAt         time.Time  `db:"seen_at"`
	EndedAt        *time.Time `db:"ended_at"`
	EndReason      string     `db:"end_reason"`
	Recording      string     `db:"recording"` // recording, off, publishing, episode, failed
	RecordingError string     `db:"recording_error"`
	EpisodeID      *int64     `db:"episode_id"`
	Segments       int        `db:"segments"`
	PeakViewers    int        `db:"peak_viewers"`
	ViewerSeconds  int64      `db:"viewer_seconds"`
	PeerBytes      int64      `db:"peer_bytes"`
	HTTPBytes      int64      `db:"http_bytes"`
}

// Live reports whether the stream is on now.
func (s Stream) Live() bool { return s.EndedAt == nil }

// MinutesWatched is the viewers' time, in whole minutes.
func (s Stream) MinutesWatched() int64 { return s.ViewerSeconds / 60 }

// PeerShare is the share of the segment bytes viewers got from other viewers, 0 to 1.
func (s Stream) PeerShare() float64 {
	if s.PeerBytes+s.HTTPBytes == 0 {
		return 0
	}
	return float64(s.PeerBytes) / float64(s.PeerBytes+s.HTTPBytes)
}

const streamColumns = `id, show_id, key_id, started_at, seen_at, ended_at, end_reason, recording, recording_error,
	episode_id, segments, peak_viewers, viewer_seconds, peer_bytes, http_bytes`

// lostAfter is how long a live stream may go without a segment before another connection may
// take its place: the process ingesting it is gone.
const lostAfter = 30 * time.Second

// StartStream records a stream of the key's show going live. A show already live is ErrLive: a
// second connection with the same key is refused while the first one sends. One whose process
// died (no segment for 30 s) is ended first.
func StartStream(ctx context.Context, db DBTX, key Key, record bool) (Stream, error) {
	if _, err := db.Exec(ctx, `UPDATE live_streams SET ended_at = greatest(seen_at, started_at), end_reason = 'lost'
		WHERE show_id = $1 AND ended_at IS NULL AND seen_at < now() - make_interval(secs => $2)`,
		key.ShowID, lostAfter.Seconds()); err != nil {
		return Stream{}, fmt.Errorf("end lost streams of show %d: %w", key.ShowID, err)
	}
	recording := "recording"
	if !record {
		recording = "off"
	}
	rows, _ := db.Query(ctx, `INSERT INTO live_streams (show_id, key_id, recording) VALUES ($1, $2, $3)
		RETURNING `+streamColumns, key.ShowID, key.ID, recording)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Stream])
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Stream{}, fmt.Errorf("show %d: %w", key.ShowID, ErrLive)
	}
	if err != nil {
		return Stream{}, fmt.Errorf("start a stream of show %d: %w", key.ShowID, err)
	}
	return s, nil
}

// TouchStream notes a new segment of a live stream.
func TouchStream(ctx context.Context, db DBTX, id int64) error {
	_, err := db.Exec(ctx, `UPDATE live_streams SET seen_at = now(), segments = segments + 1 WHERE id = $1 AND ended_at IS NULL`, id)
	return err
}

// EndStream records the end of a stream and why (disconnected, silent, shutdown).
func EndStream(ctx context.Context, db DBTX, id int64, reason string) (Stream, error) {
	rows, _ := db.Query(ctx, `UPDATE live_streams SET ended_at = coalesce(ended_at, now()),
		end_reason = CASE WHEN ended_at IS NULL THEN $2 ELSE end_reason END
		WHERE id = $1 RETURNING `+streamColumns, id, reason)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Stream])
	return s, notFound(err, fmt.Sprintf("stream %d", id))
}

// SetRecording records what became of a stream's recording.
func SetRecording(ctx context.Context, db DBTX, id int64, state string, episodeID int64, reason string) error {
	var ep *int64
	if episodeID != 0 {
		ep = &episodeID
	}
	_, err := db.Exec(ctx, `UPDATE live_streams SET recording = $2, episode_id = coalesce($3, episode_id), recording_error = $4
		WHERE id = $1`, id, state, ep, reason)
	if err != nil {
		return fmt.Errorf("recording of stream %d: %w", id, err)
	}
	return nil
}

// FindStream loads a stream.
func FindStream(ctx context.Context, db DBTX, id int64) (Stream, error) {
	rows, _ := db.Query(ctx, `SELECT `+streamColumns+` FROM live_streams WHERE id = $1`, id)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Stream])
	return s, notFound(err, fmt.Sprintf("stream %d", id))
}

// LiveStream is the show's stream on now, or ErrNotFound.
func LiveStream(ctx context.Context, db DBTX, showID int64) (Stream, error) {
	rows, _ := db.Query(ctx, `SELECT `+streamColumns+` FROM live_streams WHERE show_id = $1 AND ended_at IS NULL`, showID)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Stream])
	return s, notFound(err, "live stream")
}

// ListStreams lists the show's streams, newest first.
func ListStreams(ctx context.Context, db DBTX, showID int64, limit int) ([]Stream, error) {
	rows, _ := db.Query(ctx, `SELECT `+streamColumns+` FROM live_streams WHERE show_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2`, showID, limit)
	ss, err := pgx.CollectRows(rows, pgx.RowToStructByName[Stream])
	if err != nil {
		return nil, fmt.Errorf("streams of show %d: %w", showID, err)
	}
	return ss, nil
}
