-- +goose Up
-- Campaigns: community-funded projects with a goal and a deadline, reward tiers, and pledges
-- that save a payment method and are charged off-session when the campaign closes.

-- A campaign's own share plan (a production partner, say) has source 'campaigns': no donation
-- or sponsorship is ever split by it, and pledges' charges are posted with that source.
ALTER TABLE share_plans DROP CONSTRAINT share_plans_source_check,
    ADD CONSTRAINT share_plans_source_check CHECK (source IN ('all', 'donations', 'sponsorship', 'campaigns'));
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_source_check,
    ADD CONSTRAINT journal_entries_source_check CHECK (source IN ('donations', 'sponsorship', 'campaigns'));

CREATE TABLE campaigns (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id        bigint NOT NULL REFERENCES shows ON DELETE CASCADE,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    story          text NOT NULL DEFAULT '' CHECK (length(story) <= 20000),
    goal           bigint NOT NULL CHECK (goal > 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    deadline       timestamptz NOT NULL,
    time_zone      text NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 64),
    all_or_nothing boolean NOT NULL DEFAULT true,
    status         text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'live', 'succeeded', 'failed', 'cancelled')),
    -- The plan that splits its pledges: its own (source 'campaigns') or the show's, pinned when
    -- it goes live.
    share_plan_id  bigint REFERENCES share_plans,
    own_plan       boolean NOT NULL DEFAULT false,
    refunded_at    timestamptz, -- every charged pledge asked to be refunded
    created_at     timestamptz NOT NULL DEFAULT now(),
    launched_at    timestamptz,
    closed_at      timestamptz,
    CHECK (status = 'draft' OR (share_plan_id IS NOT NULL AND launched_at IS NOT NULL)),
    CHECK (status NOT IN ('succeeded', 'failed') OR closed_at IS NOT NULL)
);
CREATE INDEX campaigns_show_idx ON campaigns (show_id);

-- Once live, a campaign's goal, currency, deadline and plan are what backers pledged to.
-- +goose StatementBegin
CREATE FUNCTION campaign_check_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (NEW.goal <> OLD.goal OR NEW.currency <> OLD.currency OR NEW.deadline <> OLD.deadline
        OR NEW.time_zone <> OLD.time_zone OR NEW.all_or_nothing <> OLD.all_or_nothing
        OR NEW.share_plan_id IS DISTINCT FROM OLD.share_plan_id) THEN
        RAISE EXCEPTION 'campaign % is %: its goal, currency, deadline and plan cannot change', OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status <> NEW.status AND NOT (
        (OLD.status = 'draft' AND NEW.status IN ('live', 'cancelled')) OR
        (OLD.status = 'live' AND NEW.status IN ('succeeded', 'failed', 'cancelled'))) THEN
        RAISE EXCEPTION 'campaign % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER campaigns_frozen BEFORE UPDATE ON campaigns FOR EACH ROW EXECUTE FUNCTION campaign_check_frozen();

CREATE TABLE campaign_stretch_goals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    amount      bigint NOT NULL CHECK (amount > 0),
    description text NOT NULL CHECK (length(description) BETWEEN 1 AND 1000),
    UNIQUE (campaign_id, amount)
);

-- taken counts the pledges holding a reward of the tier; the CHECK makes overselling a
-- limited tier impossible whatever the interleaving.
CREATE TABLE campaign_tiers (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id    bigint NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    minimum        bigint NOT NULL CHECK (minimum > 0),
    quantity       integer CHECK (quantity IS NULL OR quantity > 0),
    taken          integer NOT NULL DEFAULT 0,
    delivery_month date CHECK (delivery_month IS NULL OR extract(day FROM delivery_month) = 1),
    early_access   boolean NOT NULL DEFAULT false,
    credits        boolean NOT NULL DEFAULT false,
    download       boolean NOT NULL DEFAULT false,
    position       integer NOT NULL DEFAULT 0,
    CHECK (taken >= 0 AND (quantity IS NULL OR taken <= quantity))
);
CREATE INDEX campaign_tiers_campaign_idx ON campaign_tiers (campaign_id, position);

-- A pledge: pending until its Checkout (setup mode) completes, active while the campaign is
-- live, then charging, collected, needs_action (the bank asked for authentication, or the
-- charge failed: the backer is emailed a link to pay on-session), dropped (7 days without),
-- released (an all-or-nothing campaign failed: nobody charged), cancelled, refunded.
CREATE TABLE pledges (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id         bigint NOT NULL REFERENCES campaigns,
    tier_id             bigint REFERENCES campaign_tiers,
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            text NOT NULL,
    backer_email        text NOT NULL CHECK (length(backer_email) BETWEEN 3 AND 254 AND backer_email LIKE '%_@_%'),
    backer_name         text NOT NULL DEFAULT '' CHECK (length(backer_name) <= 100),
    credit_name         text CHECK (credit_name IS NULL OR length(credit_name) BETWEEN 1 AND 100),
    account_id          bigint REFERENCES accounts,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'charging', 'collected',
                            'needs_action', 'dropped', 'released', 'cancelled', 'refunded')),
    token               text NOT NULL UNIQUE, -- the backer's link to the pledge
    passkey             text NOT NULL UNIQUE, -- in the tracker URL of the backer's early-access torrents
    checkout_session_id text UNIQUE,
    pay_session_id      text UNIQUE, -- the on-session payment of a pledge that needs action
    customer_id         text,
    payment_method_id   text,
    payment_intent_id   text,
    charge_id           text,
    failure             text NOT NULL DEFAULT '',
    needs_action_since  timestamptz,
    notice_sent_at      timestamptz,
    reminders           integer NOT NULL DEFAULT 0,
    detached_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    collected_at        timestamptz,
    CHECK (status <> 'collected' OR (charge_id IS NOT NULL AND collected_at IS NOT NULL)),
    CHECK (status <> 'needs_action' OR needs_action_since IS NOT NULL)
);
CREATE INDEX pledges_campaign_idx ON pledges (campaign_id, status);
CREATE INDEX pledges_charge_idx ON pledges (charge_id) WHERE charge_id IS NOT NULL;
CREATE INDEX pledges_email_idx ON pledges (lower(backer_email));

CREATE TABLE campaign_updates (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    emailed_at  timestamptz -- written to the outbox for every backer
);
CREATE INDEX campaign_updates_campaign_idx ON campaign_updates (campaign_id, created_at);

-- +goose Down
DROP TABLE campaign_updates;
DROP TABLE pledges;
DROP TABLE campaign_tiers;
DROP TABLE campaign_stretch_goals;
DROP TABLE campaigns;
DROP FUNCTION campaign_check_frozen;
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_source_check,
    ADD CONSTRAINT journal_entries_source_check CHECK (source IN ('donations', 'sponsorship'));
ALTER TABLE share_plans DROP CONSTRAINT share_plans_source_check,
    ADD CONSTRAINT share_plans_source_check CHECK (source IN ('all', 'donations', 'sponsorship'));
