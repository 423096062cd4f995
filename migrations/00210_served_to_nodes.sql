-- +goose Up
-- What the seedbox nodes sent each other of a torrent (the fleet copying it), a part of
-- torrent_served.bytes, so that bytes served to fans leave it out. Counted as bytes is: a node
-- reports its counter since the torrent was added in its session.
ALTER TABLE torrent_served
    ADD COLUMN last_to_nodes bigint NOT NULL DEFAULT 0 CHECK (last_to_nodes >= 0),
    ADD COLUMN to_nodes bigint NOT NULL DEFAULT 0 CHECK (to_nodes >= 0);

-- +goose Down
ALTER TABLE torrent_served DROP COLUMN last_to_nodes, DROP COLUMN to_nodes;
