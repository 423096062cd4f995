-- +goose Up
-- Uploads (catalog) and torrents with their tracker statistics (seeding).

-- A resumable upload (tus) of an episode's file. Its bytes live in blob storage under the id.
CREATE TABLE uploads (
    id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    episode_id   bigint NOT NULL REFERENCES episodes ON DELETE CASCADE,
    account_id   bigint NOT NULL REFERENCES accounts,
    filename     text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    size         bigint NOT NULL CHECK (size > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX uploads_episode_idx ON uploads (episode_id);

-- A published (or publishing) file. An episode has at most one live torrent.
CREATE TABLE torrents (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    episode_id     bigint NOT NULL REFERENCES episodes ON DELETE CASCADE,
    infohash       bytea NOT NULL UNIQUE CHECK (length(infohash) = 20),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    length         bigint NOT NULL CHECK (length > 0),
    piece_length   bigint NOT NULL CHECK (piece_length >= 16384),
    sha256         bytea NOT NULL CHECK (length(sha256) = 32),
    content_type   text NOT NULL,
    content_path   text NOT NULL,
    metainfo       bytea NOT NULL,
    status         text NOT NULL DEFAULT 'processing'
                   CHECK (status IN ('processing', 'published', 'failed', 'deleted')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    completed      bigint NOT NULL DEFAULT 0 CHECK (completed >= 0),
    downloaders    bigint NOT NULL DEFAULT 0 CHECK (downloaders >= 0)
);
CREATE UNIQUE INDEX torrents_live_episode_key ON torrents (episode_id) WHERE status <> 'deleted';

-- Tracker counters per torrent in five-minute buckets, for the dashboard.
CREATE TABLE swarm_stats (
    torrent_id bigint NOT NULL REFERENCES torrents ON DELETE CASCADE,
    bucket     timestamptz NOT NULL,
    seeders    integer NOT NULL DEFAULT 0 CHECK (seeders >= 0),
    leechers   integer NOT NULL DEFAULT 0 CHECK (leechers >= 0),
    completed  integer NOT NULL DEFAULT 0 CHECK (completed >= 0),
    announces  integer NOT NULL DEFAULT 0 CHECK (announces >= 0),
    PRIMARY KEY (torrent_id, bucket)
);

-- +goose Down
DROP TABLE swarm_stats;
DROP TABLE torrents;
DROP TABLE uploads;
