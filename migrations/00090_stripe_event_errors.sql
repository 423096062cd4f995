-- +goose Up
-- Why a Stripe event is not applied yet (billing): the last error of its own job, shown to the
-- operator with a way to try again.
ALTER TABLE stripe_events ADD COLUMN last_error text NOT NULL DEFAULT '' CHECK (length(last_error) <= 1000);

-- +goose Down
ALTER TABLE stripe_events DROP COLUMN last_error;
