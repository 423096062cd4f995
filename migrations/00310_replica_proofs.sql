-- +goose Up
-- Proof, not claims: a replica counts only once the control plane fetched pieces of it from the
-- node as a BitTorrent peer and they matched the piece hashes. proven_at is the last successful
-- proof of this replica (NULL: never proven, or invalidated by a failed proof of its node or by
-- the node reporting it as anything but seeding); proof_due is when the next proof is due (NULL:
-- at once, once the node reports seeding), also used as a short lease while one process proves
-- it. Replicas seeding before this migration are proven again before they count.
ALTER TABLE assignments
    ADD COLUMN proven_at timestamptz,
    ADD COLUMN proof_due timestamptz;
CREATE INDEX assignments_proof_due_idx ON assignments (proof_due NULLS FIRST) WHERE state = 'seeding';

-- A node that failed a proof is suspect from suspect_at, for suspect_reason (shown to admins);
-- its replicas do not count and it gets no new torrents. proofs_passed counts its proofs passed
-- in a row since its last failure: at 3 it is trusted again.
ALTER TABLE nodes
    ADD COLUMN suspect_at timestamptz,
    ADD COLUMN suspect_reason text NOT NULL DEFAULT '' CHECK (length(suspect_reason) <= 500),
    ADD COLUMN proofs_passed integer NOT NULL DEFAULT 0 CHECK (proofs_passed >= 0);

-- +goose Down
ALTER TABLE nodes DROP COLUMN suspect_at, DROP COLUMN suspect_reason, DROP COLUMN proofs_passed;
DROP INDEX assignments_proof_due_idx;
ALTER TABLE assignments DROP COLUMN proven_at, DROP COLUMN proof_due;
