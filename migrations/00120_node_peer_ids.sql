-- +goose Up
-- The BitTorrent peer id a node's client has in this run, from its heartbeats: once the node is
-- marked down, the tracker forgets its peers at once rather than when they expire.
ALTER TABLE nodes ADD COLUMN peer_id bytea CHECK (peer_id IS NULL OR length(peer_id) = 20);

-- +goose Down
ALTER TABLE nodes DROP COLUMN peer_id;
