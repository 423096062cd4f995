-- +goose Up
-- The seedbox fleet (seeding): nodes, and which node holds which torrent.

-- A seedbox node. It is up while it heartbeats; down after missing heartbeats (its torrents go
-- elsewhere); draining when an operator removes it (it keeps seeding until others have its
-- torrents); removed once drained.
CREATE TABLE nodes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    listen_addr    text NOT NULL CHECK (length(listen_addr) BETWEEN 3 AND 300),
    public_addr    text NOT NULL CHECK (length(public_addr) BETWEEN 3 AND 300),
    capacity_bytes bigint NOT NULL CHECK (capacity_bytes > 0),
    disk_used      bigint NOT NULL DEFAULT 0 CHECK (disk_used >= 0),
    status         text NOT NULL DEFAULT 'up' CHECK (status IN ('up', 'down', 'draining', 'removed')),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz NOT NULL DEFAULT now()
);

-- A replica of a torrent on a node. 'dropping' rows are gone from the node's desired set and are
-- deleted once the node no longer reports the torrent. The counters are the node's last report.
CREATE TABLE assignments (
    torrent_id bigint NOT NULL REFERENCES torrents ON DELETE CASCADE,
    node_id    bigint NOT NULL REFERENCES nodes ON DELETE CASCADE,
    state      text NOT NULL DEFAULT 'assigned' CHECK (state IN ('assigned', 'fetching', 'seeding', 'dropping')),
    uploaded   bigint NOT NULL DEFAULT 0 CHECK (uploaded >= 0),
    peers      integer NOT NULL DEFAULT 0 CHECK (peers >= 0),
    seeders    integer NOT NULL DEFAULT 0 CHECK (seeders >= 0),
    leechers   integer NOT NULL DEFAULT 0 CHECK (leechers >= 0),
    error      text NOT NULL DEFAULT '' CHECK (length(error) <= 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (torrent_id, node_id)
);
CREATE INDEX assignments_node_idx ON assignments (node_id);

-- +goose Down
DROP TABLE assignments;
DROP TABLE nodes;
