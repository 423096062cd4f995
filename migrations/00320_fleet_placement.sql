-- +goose Up
-- Placement, returning nodes, rebalancing and demand-following replicas (seeding).

-- The node's NODE_ZONE (a rack, a site, a provider): no two replicas of a torrent are placed in
-- one zone while another zone has a node with room. '' is no zone: the node is a zone of its own.
ALTER TABLE nodes ADD COLUMN zone text NOT NULL DEFAULT ''
    CHECK (zone = '' OR zone ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$');

-- A copy a node kept while it was down: the node verifies its data again before the copy counts,
-- and the copy is not dropped as a surplus fetch meanwhile.
ALTER TABLE assignments ADD COLUMN reverify boolean NOT NULL DEFAULT false;

-- Replicas a torrent has beyond REPLICAS while its swarm is busy (demand-following replicas),
-- and when that last changed, so that it changes one step at a time.
ALTER TABLE torrents
    ADD COLUMN extra_replicas integer NOT NULL DEFAULT 0 CHECK (extra_replicas BETWEEN 0 AND 100),
    ADD COLUMN demand_changed_at timestamptz;

-- A replica the rebalancer is moving: the copy on to_node is fetched first, and the one on
-- from_node dropped only once the new one counts. One move per torrent at a time. A finished (or
-- given up) move stays for a minute, so that bytes and started_at bound the bytes moves start per
-- minute.
CREATE TABLE replica_moves (
    torrent_id bigint PRIMARY KEY REFERENCES torrents ON DELETE CASCADE,
    from_node  bigint NOT NULL REFERENCES nodes ON DELETE CASCADE,
    to_node    bigint NOT NULL REFERENCES nodes ON DELETE CASCADE,
    bytes      bigint NOT NULL CHECK (bytes > 0),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK (from_node <> to_node)
);
CREATE INDEX replica_moves_started_idx ON replica_moves (started_at);

-- +goose Down
DROP TABLE replica_moves;
ALTER TABLE torrents DROP COLUMN extra_replicas, DROP COLUMN demand_changed_at;
ALTER TABLE assignments DROP COLUMN reverify;
ALTER TABLE nodes DROP COLUMN zone;
