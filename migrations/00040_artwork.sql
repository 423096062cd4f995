-- +goose Up
-- A show's artwork: the image's sniffed type and when it changed (its bytes are blob storage).
ALTER TABLE shows
    ADD COLUMN artwork_type       text NOT NULL DEFAULT '' CHECK (artwork_type IN ('', 'image/png', 'image/jpeg', 'image/gif', 'image/webp')),
    ADD COLUMN artwork_updated_at timestamptz;

-- +goose Down
ALTER TABLE shows DROP COLUMN artwork_type, DROP COLUMN artwork_updated_at;
