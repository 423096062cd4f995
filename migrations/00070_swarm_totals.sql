-- +goose Up
-- Exact swarm totals (seeding): bytes the fleet served per torrent, kept across node restarts and
-- reassignments, and unique downloaders counted once per torrent for good, not once per period.

-- What each node has uploaded of a torrent, in all. A node reports its counter since it started
-- (its session); each heartbeat adds what the counter grew by, or all of it after a restart. A
-- row per torrent and node, so that heartbeats of different nodes never wait on each other, and
-- kept when the torrent leaves the node.
CREATE TABLE torrent_served (
    torrent_id    bigint NOT NULL REFERENCES torrents ON DELETE CASCADE,
    node_id       bigint NOT NULL REFERENCES nodes ON DELETE CASCADE,
    session       text NOT NULL DEFAULT '' CHECK (length(session) <= 64),
    last_uploaded bigint NOT NULL DEFAULT 0 CHECK (last_uploaded >= 0), -- the counter at the last report
    bytes         bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    PRIMARY KEY (torrent_id, node_id)
);
INSERT INTO torrent_served (torrent_id, node_id, last_uploaded, bytes)
SELECT torrent_id, node_id, uploaded, uploaded FROM assignments WHERE uploaded > 0;

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
DROP TABLE torrent_served;
