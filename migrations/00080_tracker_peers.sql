-- +goose Up
-- The tracker's peers, shared by the serve processes behind a load balancer (seeding): each writes
-- the peers that announced to it and reads the others'. Unlogged: peers re-announce every
-- interval, so losing them in a crash costs one interval of partial peer lists, not data.
CREATE UNLOGGED TABLE tracker_peers (
    infohash bytea NOT NULL CHECK (length(infohash) = 20),
    peer_id  bytea NOT NULL CHECK (length(peer_id) = 20),
    ip       bytea NOT NULL CHECK (length(ip) = 16), -- IPv6 form (IPv4-mapped for IPv4)
    port     integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    seeder   boolean NOT NULL,
    process  text NOT NULL CHECK (length(process) BETWEEN 1 AND 64), -- the serve process that heard it last
    seen     timestamptz NOT NULL,
    PRIMARY KEY (infohash, peer_id, ip, port)
);
CREATE INDEX tracker_peers_seen_idx ON tracker_peers (seen);

-- +goose Down
DROP TABLE tracker_peers;
