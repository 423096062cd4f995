-- +goose Up
-- Accounts prove their email address (catalog): a verification link, password reset links,
-- and sessions an account can list and end.

-- NULL until the address is proved by a verification link. Accounts that operators made
-- (admins, partners) are vouched for; creators who signed up before verification existed prove
-- their address like new ones.
ALTER TABLE accounts ADD COLUMN email_verified_at timestamptz;
UPDATE accounts SET email_verified_at = created_at WHERE role IN ('admin', 'partner');

-- One-time links sent by email. Only the token's SHA-256 is stored; a token is good once
-- (used_at), until expires_at, and for the address it was sent to.
CREATE TABLE account_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify', 'reset')),
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX account_tokens_account_idx ON account_tokens (account_id, purpose);

-- Sessions get an id (the account's session list names them by it, never by token) and the
-- browser that started them.
ALTER TABLE sessions
    ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    ADD COLUMN user_agent text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 300);

-- +goose Down
ALTER TABLE sessions DROP COLUMN user_agent, DROP COLUMN id;
DROP TABLE account_tokens;
ALTER TABLE accounts DROP COLUMN email_verified_at;
