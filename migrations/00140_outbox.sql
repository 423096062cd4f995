-- +goose Up
-- Every email Fanseed sends (mail): one row per message, written in the transaction of what
-- it tells of. key makes a message go out once (receipt:donation:42). status: held (no SMTP
-- server configured: the message stays here, for the admin's Outbox page), queued (a job
-- sends it), sent, failed (given up after the job's last attempt). A secret message carries a
-- one-time link: its body is blanked once it is sent, so the link lives only in the mailbox.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 200),
    to_address  text NOT NULL CHECK (length(to_address) BETWEEN 3 AND 254 AND to_address LIKE '%_@_%'),
    subject     text NOT NULL CHECK (length(subject) BETWEEN 1 AND 300),
    body        text NOT NULL,
    secret      boolean NOT NULL DEFAULT false,
    status      text NOT NULL CHECK (status IN ('held', 'queued', 'sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX outbox_created_idx ON outbox (created_at DESC, id DESC);

-- +goose Down
DROP TABLE outbox;
