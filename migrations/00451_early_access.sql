-- +goose Up
-- Early access: a campaign's episodes reach its entitled backers first, over private torrents,
-- and everyone else on their release date.

-- catalog: an episode with a release date is not listed publicly before it.
ALTER TABLE episodes ADD COLUMN release_at timestamptz;

-- billing: the episodes a campaign funded, with the infohash of their private torrent (the
-- public one's info dict with private=1), known once a first backer's .torrent is issued.
CREATE TABLE campaign_episodes (
    campaign_id      bigint NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    episode_id       bigint NOT NULL UNIQUE REFERENCES episodes ON DELETE CASCADE,
    release_at       timestamptz NOT NULL,
    private_infohash bytea UNIQUE CHECK (private_infohash IS NULL OR length(private_infohash) = 20),
    PRIMARY KEY (campaign_id, episode_id)
);

-- +goose Down
DROP TABLE campaign_episodes;
ALTER TABLE episodes DROP COLUMN release_at;
