-- +goose Up
-- API tokens that write: a token's scope is read or write (write includes read), and it may
-- expire, at a time chosen when it is made (NULL: never).
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check CHECK (scope IN ('read', 'write'));
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz CHECK (expires_at > created_at);

-- Idempotency keys of the API's creates: the answer to the first request with a key, replayed
-- to a retry with the same key and the same request, for a day.
CREATE TABLE api_idempotency (
    account_id   bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL CHECK (length(request_hash) = 32),
    status       int NOT NULL CHECK (status BETWEEN 200 AND 599),
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);
CREATE INDEX api_idempotency_created_idx ON api_idempotency (created_at);

-- +goose Down
DROP TABLE api_idempotency;
ALTER TABLE api_tokens DROP COLUMN expires_at;
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE scope <> 'read';
UPDATE api_tokens SET scope = 'read';
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check CHECK (scope IN ('read'));
