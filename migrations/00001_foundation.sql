-- +goose Up
-- Accounts, sessions, shows, episodes (catalog) and parties with share plans (billing).

CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('creator', 'admin', 'partner')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));

-- The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_account_idx ON sessions (account_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Failed logins, keyed by 'email:<address>' and 'ip:<address>', for rate limiting.
CREATE TABLE login_failures (
    key       text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key_idx ON login_failures (key, failed_at);

CREATE TABLE shows (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id     bigint NOT NULL REFERENCES accounts,
    slug         text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 2 AND 60),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    funding_goal bigint NOT NULL DEFAULT 0 CHECK (funding_goal >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shows_owner_idx ON shows (owner_id);

CREATE TABLE episodes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id        bigint NOT NULL REFERENCES shows ON DELETE CASCADE,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    status         text NOT NULL DEFAULT 'draft'
                   CHECK (status IN ('draft', 'uploading', 'processing', 'published', 'failed', 'deleted')),
    failure_reason text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX episodes_show_idx ON episodes (show_id, created_at DESC);

-- Parties are payees: the creator of a show, the distributor (the platform) and collaborators.
CREATE TABLE parties (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('creator', 'distributor', 'collaborator')),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    email             text CHECK (email IS NULL OR (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%')),
    account_id        bigint REFERENCES accounts,
    stripe_account_id text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX parties_email_key ON parties (lower(email)) WHERE kind <> 'distributor';
CREATE UNIQUE INDEX parties_distributor_key ON parties (kind) WHERE kind = 'distributor';
INSERT INTO parties (kind, name) VALUES ('distributor', 'Fanseed (distributor)');

-- A share plan is immutable: a change is a new plan with a later effective time. The plan in
-- force for money received at time t is the latest one whose effective_at <= t.
CREATE TABLE share_plans (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id      bigint NOT NULL REFERENCES shows ON DELETE CASCADE,
    source       text NOT NULL DEFAULT 'all' CHECK (source IN ('all', 'donations', 'sponsorship')),
    fee_policy   text NOT NULL DEFAULT 'net' CHECK (fee_policy IN ('net', 'gross')),
    effective_at timestamptz NOT NULL,
    created_by   bigint REFERENCES accounts,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (show_id, source, effective_at)
);

CREATE TABLE share_plan_lines (
    plan_id      bigint NOT NULL REFERENCES share_plans ON DELETE CASCADE,
    party_id     bigint NOT NULL REFERENCES parties,
    position     integer NOT NULL CHECK (position >= 0),
    basis_points integer NOT NULL CHECK (basis_points BETWEEN 1 AND 10000),
    PRIMARY KEY (plan_id, party_id)
);

-- Every plan's lines sum to exactly 10000 basis points, checked at commit.
-- +goose StatementBegin
CREATE FUNCTION share_plan_check_sum() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pid   bigint;
    total bigint;
BEGIN
    IF TG_TABLE_NAME = 'share_plans' THEN
        pid := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        pid := OLD.plan_id;
    ELSE
        pid := NEW.plan_id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM share_plans WHERE id = pid) THEN
        RETURN NULL; -- the plan itself was deleted
    END IF;
    SELECT coalesce(sum(basis_points), 0) INTO total FROM share_plan_lines WHERE plan_id = pid;
    IF total <> 10000 THEN
        RAISE EXCEPTION 'share plan % lines sum to % basis points, not 10000', pid, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'share_plan_lines_sum';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER share_plan_lines_sum
    AFTER INSERT OR UPDATE OR DELETE ON share_plan_lines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION share_plan_check_sum();

CREATE CONSTRAINT TRIGGER share_plans_sum
    AFTER INSERT ON share_plans
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION share_plan_check_sum();

-- +goose Down
DROP TABLE share_plan_lines;
DROP TABLE share_plans;
DROP FUNCTION share_plan_check_sum;
DROP TABLE parties;
DROP TABLE episodes;
DROP TABLE shows;
DROP TABLE login_failures;
DROP TABLE sessions;
DROP TABLE accounts;
