-- +goose Up
-- A seedbox node that serves live segments to viewers (an HTTP edge) reports its public URL.
ALTER TABLE nodes ADD COLUMN live_edge_url text NOT NULL DEFAULT '' CHECK (length(live_edge_url) <= 300);

-- +goose Down
ALTER TABLE nodes DROP COLUMN live_edge_url;
