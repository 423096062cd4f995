-- +goose Up
-- Login throttling by growing delays instead of a lockout. One row per key ('email:<address>',
-- 'ip:<address>', 'device:<account id>:<token hash>'): the failures in a row, and the earliest
-- time the next attempt may be made. Failures are forgotten a day after the last one.
CREATE TABLE login_throttle (
    key        text PRIMARY KEY,
    failures   integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    next_at    timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_throttle_updated_idx ON login_throttle (updated_at);

-- Browsers an account has logged in from, by the SHA-256 of the random token in their device
-- cookie: from one of them the right password works however many strangers failed to log in
-- to the account. A browser's token is replaced at each login; its rows move with it.
CREATE TABLE login_devices (
    token_hash    bytea NOT NULL CHECK (length(token_hash) = 32),
    account_id    bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_hash, account_id)
);
CREATE INDEX login_devices_account_idx ON login_devices (account_id);

-- +goose Down
DROP TABLE login_devices;
DROP TABLE login_throttle;
