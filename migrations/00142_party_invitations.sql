-- +goose Up
-- A party is linked to an account (parties.account_id) only when the person behind it accepts
-- an invitation sent to the party's address (billing): a one-time link, stored as its SHA-256,
-- good until expires_at, accepted by a logged-in account with a verified matching address.
CREATE TABLE party_invitations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    party_id    bigint NOT NULL REFERENCES parties ON DELETE CASCADE,
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    show_id     bigint REFERENCES shows ON DELETE SET NULL,
    invited_by  bigint REFERENCES accounts ON DELETE SET NULL,
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by bigint REFERENCES accounts,
    CHECK (expires_at > created_at),
    CHECK ((accepted_at IS NULL) = (accepted_by IS NULL))
);
CREATE INDEX party_invitations_party_idx ON party_invitations (party_id, created_at DESC);

-- +goose Down
DROP TABLE party_invitations;
