-- +goose Up
-- Node identity: the fleet token only enrols. Enrolling gives a node its own secret, shown to it
-- once and kept here as its SHA-256; every later call of the node carries it. NULL when an admin
-- revoked it. readmitted: an admin let the next enrolment under the node's name in without the
-- old secret (a node that lost it, a removed or revoked node coming back); that enrolment gets a
-- new secret and clears it. Nodes enrolled before secrets existed get theirs at their next
-- registration, as if re-admitted; removed ones stay removed.
ALTER TABLE nodes
    ADD COLUMN secret_hash bytea CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    ADD COLUMN readmitted boolean NOT NULL DEFAULT false;
UPDATE nodes SET readmitted = true WHERE status <> 'removed';

-- +goose Down
ALTER TABLE nodes DROP COLUMN secret_hash, DROP COLUMN readmitted;
