-- +goose Up
-- The web seed's bytes to the seedbox fleet (nodes fetching a torrent they were assigned), apart
-- from those to fans' BitTorrent clients, so that the dashboard sets what fans' clients took from
-- the origin beside what the fleet served them. Before this column the fleet's fetches were
-- counted in served_bittorrent; those days stay as they were.
ALTER TABLE playback_days
    ADD COLUMN served_fleet bigint NOT NULL DEFAULT 0 CHECK (served_fleet >= 0);

-- +goose Down
ALTER TABLE playback_days DROP COLUMN served_fleet;
