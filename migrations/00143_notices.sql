-- +goose Up
-- Email about money (billing): the donor's address for a receipt, and when each receipt or
-- notice was written to the outbox, so that each goes out once. Money from before this
-- migration gets no notice.
ALTER TABLE donations
    ADD COLUMN donor_email text CHECK (donor_email IS NULL OR (length(donor_email) BETWEEN 3 AND 254 AND donor_email LIKE '%_@_%')),
    ADD COLUMN receipt_sent_at timestamptz,
    -- The SHA-256 of the token in the receipt's link that manages a monthly donation.
    ADD COLUMN manage_token_hash bytea UNIQUE CHECK (manage_token_hash IS NULL OR length(manage_token_hash) = 32);
ALTER TABLE sponsorships ADD COLUMN notice_sent_at timestamptz;
UPDATE sponsorships SET notice_sent_at = now() WHERE status <> 'offered';
ALTER TABLE payouts ADD COLUMN notice_sent_at timestamptz;
UPDATE payouts SET notice_sent_at = now() WHERE status <> 'pending';

CREATE INDEX donations_receipt_due_idx ON donations (id) WHERE receipt_sent_at IS NULL AND donor_email IS NOT NULL;
CREATE INDEX sponsorships_notice_due_idx ON sponsorships (id) WHERE notice_sent_at IS NULL;
CREATE INDEX payouts_notice_due_idx ON payouts (id) WHERE notice_sent_at IS NULL;

-- +goose Down
DROP INDEX payouts_notice_due_idx;
DROP INDEX sponsorships_notice_due_idx;
DROP INDEX donations_receipt_due_idx;
ALTER TABLE payouts DROP COLUMN notice_sent_at;
ALTER TABLE sponsorships DROP COLUMN notice_sent_at;
ALTER TABLE donations DROP COLUMN manage_token_hash, DROP COLUMN receipt_sent_at, DROP COLUMN donor_email;
