-- +goose Up
-- Who is writing a resumable upload (catalog): one request at a time per upload, across every
-- serve process. A lock is a lease its holder renews while it writes; one left by a process that
-- died expires. A request that wants the upload asks the holder to let go (release_requested).
CREATE UNLOGGED TABLE upload_locks (
    upload_id         text PRIMARY KEY CHECK (length(upload_id) BETWEEN 1 AND 200),
    token             text NOT NULL CHECK (length(token) BETWEEN 1 AND 64),
    expires_at        timestamptz NOT NULL,
    release_requested boolean NOT NULL DEFAULT false
);

-- +goose Down
DROP TABLE upload_locks;
