-- +goose Up
-- Links a donor asked for on the fan page, each managing one monthly donation for a while,
-- beside the receipt's own link (donations.manage_token_hash). Only the SHA-256 of the token
-- is kept.
CREATE TABLE donation_manage_links (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    donation_id bigint NOT NULL REFERENCES donations ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX donation_manage_links_donation_idx ON donation_manage_links (donation_id);

-- +goose Down
DROP TABLE donation_manage_links;
