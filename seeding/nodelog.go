package seeding

import (
	"context"
	"log/slog"
	"regexp"
)

// perPieceLine matches the torrent client's line for each piece that fails its hash check, which
// it writes at INFO for every piece checked before it arrived: thousands a minute on a fetching
// node.
var perPieceLine = regexp.MustCompile(`\bpiece \d+ failed hash\b`)

// pieceLines is the torrent client's log handler: its per-piece lines become debug lines, shown
// with LOG_LEVEL=debug; the rest passes as it is.
type pieceLines struct{ slog.Handler }

func (h pieceLines) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug && r.Level < slog.LevelWarn && perPieceLine.MatchString(r.Message) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h pieceLines) WithAttrs(attrs []slog.Attr) slog.Handler {
	return pieceLines{h.Handler.WithAttrs(attrs)}
}

func (h pieceLines) WithGroup(name string) slog.Handler { return pieceLines{h.Handler.WithGroup(name)} }
