-- +goose Up
-- What the fleet's last reconcile could not place: live torrents short of their replicas with no
-- up node that has room for another, their missing replicas and bytes. One row, written by the
-- process that reconciles; since is when the current shortage started (NULL when there is
-- none), so that its start and end are logged once whichever process sees them.
CREATE TABLE fleet_shortage (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    torrents   bigint[] NOT NULL DEFAULT '{}',
    replicas   bigint NOT NULL DEFAULT 0 CHECK (replicas >= 0),
    bytes      bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    since      timestamptz CHECK ((since IS NULL) = (replicas = 0)),
    checked_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO fleet_shortage DEFAULT VALUES;

-- +goose Down
DROP TABLE fleet_shortage;
