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

-- One row per Stripe refund booked or known to have failed: id is Stripe's refund id (or, for
-- an event that names no refund, the charge and the event: "ch_...@evt_..."); amount is in the
-- charge's currency and settled what left the platform's balance, in the ledger's currency, as
-- Stripe's balance transaction says. A refund that failed after it was booked has the entry that
-- put its split back; one reported failed before it was booked is kept (failed, no entry) so that
-- an older event reporting it as succeeded never books it.
CREATE TABLE refunds (
    id              text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    charge_id       text NOT NULL CHECK (length(charge_id) BETWEEN 1 AND 255),
    amount          bigint NOT NULL CHECK (amount > 0),
    settled         bigint NOT NULL CHECK (settled >= 0),
    entry_id        bigint UNIQUE REFERENCES journal_entries,
    failed          boolean NOT NULL DEFAULT false,
    failed_entry_id bigint UNIQUE REFERENCES journal_entries,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (entry_id IS NOT NULL OR failed),
    CHECK (failed_entry_id IS NULL OR (failed AND entry_id IS NOT NULL))
);
CREATE INDEX refunds_charge_idx ON refunds (charge_id);
-- Refunds booked before: their keys carried the charge's cumulative amount refunded.
INSERT INTO refunds (id, charge_id, amount, settled, entry_id, created_at)
SELECT 'legacy:' || e.idempotency_key, e.stripe_object_id,
       split_part(e.idempotency_key, ':', 3)::bigint - coalesce(lag(split_part(e.idempotency_key, ':', 3)::bigint)
           OVER (PARTITION BY e.stripe_object_id ORDER BY split_part(e.idempotency_key, ':', 3)::bigint), 0),
       (SELECT -sum(p.amount) FROM postings p WHERE p.entry_id = e.id AND p.role = 'gross'), e.id, e.created_at
FROM journal_entries e
WHERE e.kind = 'refund' AND e.idempotency_key ~ '^refund:[^:]+:[0-9]+$' AND e.stripe_object_id IS NOT NULL;

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
