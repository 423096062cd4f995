-- +goose Up
-- The double-entry ledger (billing): accounts, journal entries made of postings, and the Stripe
-- events they come from. Amounts are signed minor units: positive is a debit, negative a credit.
-- Every entry sums to zero per currency, and nothing posted is ever changed or removed: a
-- mistake is corrected by a new entry.

-- Stripe events, stored as received; applied_at is set in the same transaction as their effect,
-- so an event delivered twice is applied once.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    type        text NOT NULL CHECK (length(type) BETWEEN 1 AND 255),
    api_version text NOT NULL DEFAULT '',
    livemode    boolean NOT NULL DEFAULT false,
    created     timestamptz NOT NULL, -- Stripe's time for the event
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    applied_at  timestamptz
);
CREATE INDEX stripe_events_pending_idx ON stripe_events (created) WHERE applied_at IS NULL;

-- One account per kind, currency and (for per-party kinds) party. Positive balances are debit
-- balances: stripe_clearing (gross collected through Stripe, not yet paid out) and the loss
-- accounts are normally positive; processor_fees (fees Stripe withheld, a contra account to
-- stripe_clearing), party_payable (owed to a party) and platform_revenue are normally negative.
CREATE TABLE ledger_accounts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('stripe_clearing', 'processor_fees', 'party_payable',
                   'platform_revenue', 'refunds', 'dispute_losses', 'payouts_in_transit')),
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    party_id   bigint REFERENCES parties,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind IN ('party_payable', 'payouts_in_transit')) = (party_id IS NOT NULL)),
    UNIQUE NULLS NOT DISTINCT (kind, currency, party_id),
    UNIQUE (id, currency) -- the target of postings' currency check
);

CREATE TABLE journal_entries (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('payment', 'refund', 'dispute', 'dispute_won',
                          'payout', 'adjustment')),
    description       text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- The same business fact ("payment:ch_123") can be posted only once.
    idempotency_key   text UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    stripe_object_id  text CHECK (length(stripe_object_id) BETWEEN 1 AND 255),
    stripe_event_id   text REFERENCES stripe_events,
    show_id           bigint REFERENCES shows,
    source            text CHECK (source IN ('donations', 'sponsorship')),
    share_plan_id     bigint REFERENCES share_plans,
    reverses_entry_id bigint REFERENCES journal_entries,
    occurred_at       timestamptz NOT NULL, -- when the money moved; picks the share plan
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- The transaction that created the entry, set by a trigger: only it may add postings.
    created_xact      xid8 NOT NULL,
    CHECK (kind <> 'payment' OR (show_id IS NOT NULL AND source IS NOT NULL AND share_plan_id IS NOT NULL)),
    CHECK ((kind IN ('refund', 'dispute', 'dispute_won')) = (reverses_entry_id IS NOT NULL))
);
CREATE INDEX journal_entries_show_idx ON journal_entries (show_id, occurred_at) WHERE show_id IS NOT NULL;
CREATE INDEX journal_entries_reverses_idx ON journal_entries (reverses_entry_id) WHERE reverses_entry_id IS NOT NULL;

-- role says what a line is, for reversals and statements: the gross the fan paid, a fee Stripe
-- withheld, a party's share, a fee absorbed by the distributor or the platform, a loss, a transfer.
CREATE TABLE postings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id   bigint NOT NULL REFERENCES journal_entries,
    account_id bigint NOT NULL,
    currency   text NOT NULL,
    amount     bigint NOT NULL CHECK (amount <> 0),
    role       text NOT NULL CHECK (role IN ('gross', 'fee', 'share', 'fee_absorbed', 'loss',
                   'transfer', 'adjustment')),
    FOREIGN KEY (account_id, currency) REFERENCES ledger_accounts (id, currency)
);
CREATE INDEX postings_entry_idx ON postings (entry_id);
CREATE INDEX postings_account_idx ON postings (account_id, entry_id);

-- +goose StatementBegin
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER ledger_accounts_immutable BEFORE UPDATE OR DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
-- Entries name the plan that split them, so a plan's lines are never rewritten either.
CREATE TRIGGER share_plans_immutable BEFORE UPDATE ON share_plans
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER share_plan_lines_immutable BEFORE UPDATE ON share_plan_lines
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- +goose StatementBegin
CREATE FUNCTION journal_entry_stamp_xact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_xact := pg_current_xact_id(); -- the top-level transaction, even in a savepoint
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER journal_entries_stamp_xact BEFORE INSERT ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_entry_stamp_xact();

-- A committed entry is closed: postings can be added only by the transaction that created it.
-- +goose StatementBegin
CREATE FUNCTION posting_check_open_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM journal_entries
                   WHERE id = NEW.entry_id AND created_xact = pg_current_xact_id()) THEN
        RAISE EXCEPTION 'journal entry % is closed: postings are added with the entry', NEW.entry_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER postings_open_entry BEFORE INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION posting_check_open_entry();

-- Every entry has at least two postings and sums to zero per currency, checked at commit.
-- +goose StatementBegin
CREATE FUNCTION journal_entry_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    eid   bigint;
    n     bigint;
    cur   text;
    total numeric;
BEGIN
    IF TG_TABLE_NAME = 'journal_entries' THEN
        eid := NEW.id;
    ELSE
        eid := NEW.entry_id;
    END IF;
    SELECT count(*) INTO n FROM postings WHERE entry_id = eid;
    IF n < 2 THEN
        RAISE EXCEPTION 'journal entry % has % postings, not at least 2', eid, n
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_balanced';
    END IF;
    SELECT currency, sum(amount) INTO cur, total
        FROM postings WHERE entry_id = eid
        GROUP BY currency HAVING sum(amount) <> 0
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entry % does not balance: its % postings sum to %', eid, cur, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_balanced';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER journal_entries_balanced
    AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entry_check_balanced();

CREATE CONSTRAINT TRIGGER postings_balanced
    AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entry_check_balanced();

-- An event's content never changes, it is applied once, and its id is kept for good.
-- +goose StatementBegin
CREATE FUNCTION stripe_event_check_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.applied_at IS NOT NULL
       OR (NEW.id, NEW.type, NEW.api_version, NEW.livemode, NEW.created, NEW.payload, NEW.received_at)
          IS DISTINCT FROM
          (OLD.id, OLD.type, OLD.api_version, OLD.livemode, OLD.created, OLD.payload, OLD.received_at) THEN
        RAISE EXCEPTION 'stripe event %: only setting applied_at once is allowed, % refused', OLD.id, TG_OP
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER stripe_events_guard BEFORE UPDATE OR DELETE ON stripe_events
    FOR EACH ROW EXECUTE FUNCTION stripe_event_check_change();

-- +goose Down
DROP TRIGGER share_plan_lines_immutable ON share_plan_lines;
DROP TRIGGER share_plans_immutable ON share_plans;
DROP TABLE postings;
DROP TABLE journal_entries;
DROP TABLE ledger_accounts;
DROP TABLE stripe_events;
DROP FUNCTION stripe_event_check_change;
DROP FUNCTION journal_entry_check_balanced;
DROP FUNCTION posting_check_open_entry;
DROP FUNCTION journal_entry_stamp_xact;
DROP FUNCTION ledger_refuse_change;
