-- +goose Up
-- The WebSocket tracker's peers (seeding): which serve process holds the socket of each browser
-- or seedbox node in a swarm, so that an offer or answer from a peer on one process is relayed to
-- the process of the peer it is for. Unlogged: peers announce again when their socket reconnects.
CREATE UNLOGGED TABLE tracker_web_peers (
    infohash bytea NOT NULL CHECK (length(infohash) = 20),
    peer_id  bytea NOT NULL CHECK (length(peer_id) = 20),
    process  text NOT NULL CHECK (length(process) BETWEEN 1 AND 64),
    seeder   boolean NOT NULL,
    seen     timestamptz NOT NULL DEFAULT now(), -- refreshed by its process while the socket is open
    PRIMARY KEY (infohash, peer_id)
);
CREATE INDEX tracker_web_peers_process_idx ON tracker_web_peers (process);

-- Relayed messages too large for a NOTIFY payload (8000 bytes: an offer's SDP with its
-- candidates may come close): the notification carries the row's id and its reader deletes it.
CREATE UNLOGGED TABLE tracker_relay (
    id         bigserial PRIMARY KEY,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE tracker_relay;
DROP TABLE tracker_web_peers;
