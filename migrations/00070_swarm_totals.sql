-- +goose Up
-- Exact swarm totals (seeding): bytes the fleet served per torrent, kept across node restarts and
-- reassignments, and unique downloaders counted once per torrent for good, not once per period.

-- What the fleet has uploaded of a torrent, in all. A node reports its counter since it started
-- (its session); each heartbeat adds what the counter grew by, or all of it after a restart.
ALTER TABLE torrents ADD COLUMN bytes_served bigint NOT NULL DEFAULT 0 CHECK (bytes_served >= 0);
UPDATE torrents t SET bytes_served = a.uploaded
FROM (SELECT torrent_id, sum(uploaded) AS uploaded FROM assignments GROUP BY torrent_id) a
WHERE a.torrent_id = t.id;
ALTER TABLE assignments ADD COLUMN session text NOT NULL DEFAULT '' CHECK (length(session) <= 64);

-- Each downloader of a torrent once: the first 16 bytes of SHA-256(infohash, address), so that
-- no address is stored and the same household does not link across torrents by value.
CREATE TABLE torrent_downloaders (
    torrent_id bigint NOT NULL REFERENCES torrents ON DELETE CASCADE,
    peer       bytea NOT NULL CHECK (length(peer) = 16),
    first_seen timestamptz NOT NULL,
    PRIMARY KEY (torrent_id, peer)
);
ALTER TABLE swarm_stats ADD COLUMN downloaders integer NOT NULL DEFAULT 0 CHECK (downloaders >= 0);

-- +goose Down
ALTER TABLE swarm_stats DROP COLUMN downloaders;
DROP TABLE torrent_downloaders;
ALTER TABLE assignments DROP COLUMN session;
ALTER TABLE torrents DROP COLUMN bytes_served;
