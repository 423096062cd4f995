-- +goose Up
-- A refund an operator asked for (billing), kept before Stripe is called so that a retry sends
-- the same idempotency key ("refund_request:<id>") and never makes a second refund. The ledger
-- is changed only by the charge.refunded event that follows, as for any refund.
CREATE TABLE refund_requests (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    charge_id        text NOT NULL CHECK (length(charge_id) BETWEEN 1 AND 255),
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason           text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    requested_by     text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 255),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    stripe_refund_id text UNIQUE CHECK (length(stripe_refund_id) BETWEEN 1 AND 255),
    failure          text NOT NULL DEFAULT '' CHECK (length(failure) <= 1000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'sent') = (stripe_refund_id IS NOT NULL))
);
CREATE INDEX refund_requests_charge_idx ON refund_requests (charge_id);

-- +goose Down
DROP TABLE refund_requests;
