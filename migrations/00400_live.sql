-- +goose Up
-- Live streaming (live): stream keys per show, kept as SHA-256 only, with the overlay's secret;
-- what the creator set for streams (recording, overlay moderation, goal); each stream with its
-- statistics; the viewers watching now.

CREATE TABLE live_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id       bigint NOT NULL REFERENCES shows,
    key_hash      bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    overlay_hash  bytea NOT NULL UNIQUE CHECK (length(overlay_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
-- A show has one working key at a time: rotating revokes the old one in the same transaction.
CREATE UNIQUE INDEX live_keys_one_per_show ON live_keys (show_id) WHERE revoked_at IS NULL;

CREATE TABLE live_settings (
    show_id        bigint PRIMARY KEY REFERENCES shows,
    record         boolean NOT NULL DEFAULT true,
    message_limit  integer NOT NULL DEFAULT 200 CHECK (message_limit BETWEEN 0 AND 500),
    blocklist      text NOT NULL DEFAULT '' CHECK (length(blocklist) <= 5000),
    hide_messages  boolean NOT NULL DEFAULT false,
    goal_amount    bigint NOT NULL DEFAULT 0 CHECK (goal_amount >= 0)
);

CREATE TABLE live_streams (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id         bigint NOT NULL REFERENCES shows,
    key_id          bigint NOT NULL REFERENCES live_keys,
    started_at      timestamptz NOT NULL DEFAULT now(),
    -- The ingest touches it with every segment; a stream unseen for 30 s lost its process.
    seen_at         timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    end_reason      text NOT NULL DEFAULT '',
    recording       text NOT NULL DEFAULT 'recording'
                    CHECK (recording IN ('recording', 'off', 'publishing', 'episode', 'failed')),
    recording_error text NOT NULL DEFAULT '',
    episode_id      bigint REFERENCES episodes,
    segments        integer NOT NULL DEFAULT 0 CHECK (segments >= 0),
    peak_viewers    integer NOT NULL DEFAULT 0 CHECK (peak_viewers >= 0),
    viewer_seconds  bigint NOT NULL DEFAULT 0 CHECK (viewer_seconds >= 0),
    peer_bytes      bigint NOT NULL DEFAULT 0 CHECK (peer_bytes >= 0),
    http_bytes      bigint NOT NULL DEFAULT 0 CHECK (http_bytes >= 0),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
-- One stream per show at a time.
CREATE UNIQUE INDEX live_streams_one_live_per_show ON live_streams (show_id) WHERE ended_at IS NULL;
CREATE INDEX live_streams_show_idx ON live_streams (show_id, started_at DESC);

-- Viewers who reported in the last seconds, shared by every serve; rebuilt by the next reports.
CREATE UNLOGGED TABLE live_viewers (
    stream_id  bigint NOT NULL REFERENCES live_streams ON DELETE CASCADE,
    viewer     text NOT NULL CHECK (length(viewer) BETWEEN 8 AND 64),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, viewer)
);

-- +goose Down
DROP TABLE live_viewers;
DROP TABLE live_streams;
DROP TABLE live_settings;
DROP TABLE live_keys;
