package live

import (
	"context"
	"fmt"
	"time"
)

// Report is what a viewer's page sends every few seconds: what changed since its last report.
type Report struct {
	Viewer    string `json:"viewer"`     // a random id the page makes, 8 to 64 characters
	PeerBytes int64  `json:"peer_bytes"` // segment bytes from other viewers
	HTTPBytes int64  `json:"http_bytes"` // segment bytes from a node or serve
	Seconds   int64  `json:"seconds"`    // seconds played
}

// viewerWindow is how recent a viewer's last report must be to count as watching now.
const viewerWindow = 15 * time.Second

// Validate names the first field out of range.
func (r Report) Validate() error {
	switch {
	case len(r.Viewer) < 8 || len(r.Viewer) > 64:
		return fmt.Errorf("%w: viewer: 8 to 64 characters", ErrInvalid)
	case r.PeerBytes < 0 || r.PeerBytes > 1<<32:
		return fmt.Errorf("%w: peer_bytes: from 0 to 4294967296", ErrInvalid)
	case r.HTTPBytes < 0 || r.HTTPBytes > 1<<32:
		return fmt.Errorf("%w: http_bytes: from 0 to 4294967296", ErrInvalid)
	case r.Seconds < 0 || r.Seconds > 600:
		return fmt.Errorf("%w: seconds: from 0 to 600", ErrInvalid)
	}
	return nil
}

// RecordReport adds a viewer's report to the live stream's statistics and its peak of viewers
// watching at once. A stream that has ended takes no more.
func RecordReport(ctx context.Context, db DBTX, streamID int64, r Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	_, err := db.Exec(ctx, `
		WITH v AS (
			INSERT INTO live_viewers (stream_id, viewer) SELECT id, $2 FROM live_streams WHERE id = $1 AND ended_at IS NULL
			ON CONFLICT (stream_id, viewer) DO UPDATE SET last_seen = now()
			RETURNING stream_id
		), n AS (
			-- the viewers seen within the window, this one counted whether or not it was there before
			SELECT count(*) + 1 AS c FROM live_viewers
			WHERE stream_id = $1 AND viewer <> $2 AND last_seen > now() - make_interval(secs => $6)
		)
		UPDATE live_streams SET viewer_seconds = viewer_seconds + $5, peer_bytes = peer_bytes + $3,
			http_bytes = http_bytes + $4, peak_viewers = greatest(peak_viewers, (SELECT c FROM n))
		WHERE id = $1 AND EXISTS (SELECT 1 FROM v)`,
		streamID, r.Viewer, r.PeerBytes, r.HTTPBytes, r.Seconds, viewerWindow.Seconds())
	if err != nil {
		return fmt.Errorf("viewer report of stream %d: %w", streamID, err)
	}
	return nil
}

// ViewersNow counts the stream's viewers that reported within the window.
func ViewersNow(ctx context.Context, db DBTX, streamID int64) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM live_viewers WHERE stream_id = $1 AND last_seen > now() - make_interval(secs => $2)`,
		streamID, viewerWindow.Seconds()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("viewers of stream %d: %w", streamID, err)
	}
	return n, nil
}
