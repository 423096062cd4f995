-- +goose Up
-- Completed downloads counted once per address a day (seeding): one address announcing
-- event=completed from 500 ports, or from several serve processes, is one download. The key is
-- the first 16 bytes of SHA-256(day, infohash, address), so that no address is stored and the
-- same household does not link across days or torrents. Rows older than yesterday are deleted
-- as stats are recorded.
CREATE TABLE torrent_completions (
    day        date NOT NULL,
    torrent_id bigint NOT NULL REFERENCES torrents ON DELETE CASCADE,
    peer       bytea NOT NULL CHECK (length(peer) = 16),
    PRIMARY KEY (day, torrent_id, peer)
);
CREATE INDEX torrent_completions_torrent ON torrent_completions (torrent_id);

-- +goose Down
DROP TABLE torrent_completions;
