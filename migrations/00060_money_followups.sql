-- +goose Up
-- Money follow-ups (billing): events handed to a job of their own are marked on the event, payout
-- thresholds are per currency, and a sponsorship keeps why its last payment failed.

-- Set when a batch hands an event to a job of its own (it needs Stripe, failed in a batch, or
-- was woken after waiting): batches leave it to that job from then on. (Either applies an event
-- under a lock on its row and only while applied_at is unset, so this is about not retrying a
-- failing event in every batch, not about applying once.)
ALTER TABLE stripe_events ADD COLUMN alone_at timestamptz;

-- A party's own payout threshold in a currency, in its minor units: a payout is made only when
-- what is owed is above it. Without a row the currency's default applies (billing.DefaultPayoutThreshold).
CREATE TABLE payout_thresholds (
    party_id   bigint NOT NULL REFERENCES parties,
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount     bigint NOT NULL CHECK (amount >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (party_id, currency)
);
ALTER TABLE parties DROP COLUMN payout_threshold;

-- Why the last payment of a sponsorship's link failed (an async method such as a bank debit
-- declined); the deal stays offered and the link can be paid again.
ALTER TABLE sponsorships ADD COLUMN failure text NOT NULL DEFAULT '' CHECK (length(failure) <= 500);

-- +goose Down
ALTER TABLE sponsorships DROP COLUMN failure;
ALTER TABLE parties ADD COLUMN payout_threshold bigint NOT NULL DEFAULT 1000 CHECK (payout_threshold >= 0);
DROP TABLE payout_thresholds;
ALTER TABLE stripe_events DROP COLUMN alone_at;
