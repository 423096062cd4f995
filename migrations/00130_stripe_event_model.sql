-- +goose Up
-- Stripe's whole event model (billing): refunds kept by Stripe's refund id with the amounts they
-- moved, a failed refund putting its split back, transfers Stripe refused, and events of types
-- Fanseed does not handle kept as ignored.

ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_check,
    ADD CONSTRAINT journal_entries_kind_check CHECK (kind IN ('payment', 'refund', 'refund_failed', 'dispute',
        'dispute_won', 'payout', 'adjustment'));
-- A failed refund reverses its refund entry, as a won dispute reverses its dispute entry.
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_check1,
    ADD CONSTRAINT journal_entries_reverses_check
        CHECK ((kind IN ('refund', 'refund_failed', 'dispute', 'dispute_won')) = (reverses_entry_id IS NOT NULL));

-- One row per Stripe refund posted: id is Stripe's refund id (or, for an event that names no
-- refund, the charge and the event: "ch_...@evt_..."); amount is in the charge's currency and
-- settled what left the platform's balance, in the ledger's currency, as Stripe's balance
-- transaction says. failed_entry_id is the entry that put the split back when the refund failed.
CREATE TABLE refunds (
    id              text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    charge_id       text NOT NULL CHECK (length(charge_id) BETWEEN 1 AND 255),
    amount          bigint NOT NULL CHECK (amount > 0),
    settled         bigint NOT NULL CHECK (settled > 0),
    entry_id        bigint NOT NULL UNIQUE REFERENCES journal_entries,
    failed_entry_id bigint UNIQUE REFERENCES journal_entries,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_charge_idx ON refunds (charge_id);

-- A transfer Stripe refused: the payout's money went back to what the party is owed, and a later
-- run pays it with a payout of its own, so a refused payout does not hold its period.
ALTER TABLE payouts DROP CONSTRAINT payouts_status_check,
    ADD CONSTRAINT payouts_status_check CHECK (status IN ('pending', 'transferred', 'paid', 'failed', 'reversed', 'refused'));
ALTER TABLE payouts DROP CONSTRAINT payouts_check,
    ADD CONSTRAINT payouts_transfer_check CHECK ((status IN ('pending', 'refused')) = (stripe_transfer_id IS NULL));
ALTER TABLE payouts DROP CONSTRAINT payouts_check1,
    ADD CONSTRAINT payouts_entry_check CHECK ((status IN ('pending', 'refused')) = (entry_id IS NULL));
ALTER TABLE payouts DROP CONSTRAINT payouts_party_id_currency_period_key;
CREATE UNIQUE INDEX payouts_period_key ON payouts (party_id, currency, period) WHERE status <> 'refused';

-- An event of a type Fanseed does not handle is applied as ignored, so the admin sees it.
ALTER TABLE stripe_events ADD COLUMN ignored boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE stripe_events DROP COLUMN ignored;
DROP INDEX payouts_period_key;
ALTER TABLE payouts ADD CONSTRAINT payouts_party_id_currency_period_key UNIQUE (party_id, currency, period);
ALTER TABLE payouts DROP CONSTRAINT payouts_entry_check,
    ADD CONSTRAINT payouts_check1 CHECK ((status = 'pending') = (entry_id IS NULL));
ALTER TABLE payouts DROP CONSTRAINT payouts_transfer_check,
    ADD CONSTRAINT payouts_check CHECK ((status = 'pending') = (stripe_transfer_id IS NULL));
ALTER TABLE payouts DROP CONSTRAINT payouts_status_check,
    ADD CONSTRAINT payouts_status_check CHECK (status IN ('pending', 'transferred', 'paid', 'failed', 'reversed'));
DROP TABLE refunds;
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_reverses_check,
    ADD CONSTRAINT journal_entries_check1 CHECK ((kind IN ('refund', 'dispute', 'dispute_won')) = (reverses_entry_id IS NOT NULL));
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_check,
    ADD CONSTRAINT journal_entries_kind_check CHECK (kind IN ('payment', 'refund', 'dispute', 'dispute_won', 'payout', 'adjustment'));
