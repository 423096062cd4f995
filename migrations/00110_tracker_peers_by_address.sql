-- +goose Up
-- A tracker peer is its address, as in the tracker's memory: a client that restarts on the same
-- port with a new peer id replaces its row instead of counting twice until the old one expires.
DELETE FROM tracker_peers a USING tracker_peers b
WHERE a.infohash = b.infohash AND a.ip = b.ip AND a.port = b.port
  AND (a.seen, a.peer_id) < (b.seen, b.peer_id);
ALTER TABLE tracker_peers DROP CONSTRAINT tracker_peers_pkey, ADD PRIMARY KEY (infohash, ip, port);

-- +goose Down
ALTER TABLE tracker_peers DROP CONSTRAINT tracker_peers_pkey, ADD PRIMARY KEY (infohash, peer_id, ip, port);
