-- +goose Up
-- Money in and out (billing): Stripe Connect status of parties, donations, sponsorship deals,
-- payouts, and Stripe events waiting for the payment they refer to.

ALTER TABLE parties
    ADD COLUMN charges_enabled    boolean NOT NULL DEFAULT false,
    ADD COLUMN payouts_enabled    boolean NOT NULL DEFAULT false,
    -- Stripe's time of the last account.updated applied, so an older event never overrides a newer.
    ADD COLUMN stripe_updated_at  timestamptz,
    -- A payout is made only when the balance owed is above this many minor units.
    ADD COLUMN payout_threshold   bigint NOT NULL DEFAULT 1000 CHECK (payout_threshold >= 0);
CREATE UNIQUE INDEX parties_stripe_account_key ON parties (stripe_account_id) WHERE stripe_account_id IS NOT NULL;

CREATE TABLE donations (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id             bigint NOT NULL REFERENCES shows,
    episode_id          bigint REFERENCES episodes,
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    monthly             boolean NOT NULL DEFAULT false,
    display_name        text NOT NULL DEFAULT '' CHECK (length(display_name) <= 60),
    message             text NOT NULL DEFAULT '' CHECK (length(message) <= 500),
    anonymous           boolean NOT NULL DEFAULT false,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'paid', 'failed', 'refunded', 'cancelled')),
    checkout_session_id text,
    subscription_id     text,
    charge_id           text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    paid_at             timestamptz
);
CREATE INDEX donations_show_idx ON donations (show_id, created_at DESC);
CREATE INDEX donations_subscription_idx ON donations (subscription_id) WHERE subscription_id IS NOT NULL;
CREATE INDEX donations_charge_idx ON donations (charge_id) WHERE charge_id IS NOT NULL;

CREATE TABLE sponsorships (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id             bigint NOT NULL REFERENCES shows,
    sponsor_name        text NOT NULL CHECK (length(sponsor_name) BETWEEN 1 AND 100),
    contact_email       text NOT NULL CHECK (length(contact_email) BETWEEN 3 AND 254 AND contact_email LIKE '%_@_%'),
    period_start        date,
    period_end          date,
    episodes            text NOT NULL DEFAULT '' CHECK (length(episodes) <= 500),
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status              text NOT NULL DEFAULT 'offered' CHECK (status IN ('offered', 'paid', 'cancelled', 'refunded')),
    -- The secret in the payment link sent to the sponsor.
    pay_token           text NOT NULL UNIQUE CHECK (length(pay_token) >= 20),
    checkout_session_id text,
    charge_id           text,
    created_by          bigint REFERENCES accounts,
    created_at          timestamptz NOT NULL DEFAULT now(),
    paid_at             timestamptz,
    CHECK (period_end IS NULL OR period_start IS NULL OR period_end >= period_start),
    CHECK (period_start IS NOT NULL OR episodes <> '')
);
CREATE INDEX sponsorships_show_idx ON sponsorships (show_id, created_at DESC);
CREATE INDEX sponsorships_charge_idx ON sponsorships (charge_id) WHERE charge_id IS NOT NULL;

-- One transfer per party, currency and period. The row is written before Stripe is called, and
-- its id is the transfer's idempotency key, so a run that crashed after the call is finished by
-- the next run without paying twice.
CREATE TABLE payouts (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    party_id           bigint NOT NULL REFERENCES parties,
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    period             text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    amount             bigint NOT NULL CHECK (amount > 0),
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'transferred', 'paid', 'failed', 'reversed')),
    stripe_transfer_id text UNIQUE,
    entry_id           bigint REFERENCES journal_entries,
    failure            text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (party_id, currency, period),
    CHECK ((status = 'pending') = (stripe_transfer_id IS NULL)),
    CHECK ((status = 'pending') = (entry_id IS NULL))
);

-- A Stripe event that refers to a charge not yet posted (a refund delivered before its payment)
-- waits here; posting anything for that charge enqueues its waiters again.
CREATE TABLE stripe_event_waits (
    event_id   text NOT NULL REFERENCES stripe_events,
    object_id  text NOT NULL CHECK (length(object_id) BETWEEN 1 AND 255),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (object_id, event_id)
);

-- +goose Down
DROP TABLE stripe_event_waits;
DROP TABLE payouts;
DROP TABLE sponsorships;
DROP TABLE donations;
DROP INDEX parties_stripe_account_key;
ALTER TABLE parties DROP COLUMN payout_threshold, DROP COLUMN stripe_updated_at,
    DROP COLUMN payouts_enabled, DROP COLUMN charges_enabled;
