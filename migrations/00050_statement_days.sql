-- +goose Up
-- Per-day sums of party_entries for days that are over, so that a statement of a busy party reads
-- days rather than payments (billing). A day is rolled up once it is more than a day old; an entry
-- that arrives later for a rolled-up day marks the day dirty, and statements read dirty days from
-- party_entries until the next rollup recomputes them.
CREATE TABLE party_days (
    account_id bigint NOT NULL REFERENCES ledger_accounts,
    day        date NOT NULL,
    currency   text NOT NULL,
    kind       text NOT NULL,
    show_id    bigint NOT NULL, -- 0 for none
    source     text NOT NULL,   -- '' for none
    entries    bigint NOT NULL,
    share      bigint NOT NULL,
    absorbed   bigint NOT NULL,
    amount     bigint NOT NULL,
    gross      bigint NOT NULL,
    fee        bigint NOT NULL,
    PRIMARY KEY (account_id, day, kind, show_id, source, currency)
);

CREATE TABLE party_days_dirty (
    account_id bigint NOT NULL,
    day        date NOT NULL,
    PRIMARY KEY (account_id, day)
);

-- One row: days before rolled_until are in party_days (unless dirty).
CREATE TABLE party_days_state (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    rolled_until  date NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION party_days_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO party_days_dirty (account_id, day)
    SELECT DISTINCT n.account_id, n.day FROM changed n
    WHERE n.day < (SELECT rolled_until FROM party_days_state)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER party_entries_dirty_insert AFTER INSERT ON party_entries
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION party_days_mark_dirty();
CREATE TRIGGER party_entries_dirty_update AFTER UPDATE ON party_entries
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION party_days_mark_dirty();

-- Payouts and adjustments are listed one by one on statements.
CREATE INDEX party_entries_listed_idx ON party_entries (account_id, day) WHERE kind IN ('payout', 'adjustment');

-- +goose Down
DROP INDEX party_entries_listed_idx;
DROP TRIGGER party_entries_dirty_update ON party_entries;
DROP TRIGGER party_entries_dirty_insert ON party_entries;
DROP FUNCTION party_days_mark_dirty;
DROP TABLE party_days_state;
DROP TABLE party_days_dirty;
DROP TABLE party_days;
