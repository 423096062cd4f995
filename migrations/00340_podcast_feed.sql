-- +goose Up
-- What podcast directories (Apple Podcasts, Podcasting 2.0 indexes) read from a show's feed.
ALTER TABLE shows
    ADD COLUMN language       text NOT NULL DEFAULT 'en' CHECK (length(language) BETWEEN 2 AND 35),
    ADD COLUMN category       text NOT NULL DEFAULT '' CHECK (length(category) <= 100),
    ADD COLUMN subcategory    text NOT NULL DEFAULT '' CHECK (length(subcategory) <= 100 AND (subcategory = '' OR category <> '')),
    ADD COLUMN explicit       boolean NOT NULL DEFAULT false,
    ADD COLUMN author         text NOT NULL DEFAULT '' CHECK (length(author) <= 200),
    ADD COLUMN owner_name     text NOT NULL DEFAULT '' CHECK (length(owner_name) <= 200),
    ADD COLUMN owner_email    text NOT NULL DEFAULT '' CHECK (length(owner_email) <= 254),
    ADD COLUMN show_type      text NOT NULL DEFAULT 'episodic' CHECK (show_type IN ('episodic', 'serial')),
    ADD COLUMN locked         boolean NOT NULL DEFAULT false,
    ADD COLUMN podcast_guid   uuid,
    ADD COLUMN artwork_width  integer CHECK (artwork_width > 0),
    ADD COLUMN artwork_height integer CHECK (artwork_height > 0),
    -- podcast:locked names the owner's address: a locked feed must have one.
    ADD CONSTRAINT shows_locked_owner_email CHECK (NOT locked OR owner_email <> '');

-- An episode's number in its show and the length of its media, read from the file.
ALTER TABLE episodes
    ADD COLUMN number           integer CHECK (number > 0),
    ADD COLUMN duration_seconds integer CHECK (duration_seconds >= 0);

-- +goose Down
ALTER TABLE episodes DROP COLUMN duration_seconds, DROP COLUMN number;
ALTER TABLE shows DROP CONSTRAINT shows_locked_owner_email,
    DROP COLUMN artwork_height, DROP COLUMN artwork_width, DROP COLUMN podcast_guid, DROP COLUMN locked,
    DROP COLUMN show_type, DROP COLUMN owner_email, DROP COLUMN owner_name, DROP COLUMN author,
    DROP COLUMN explicit, DROP COLUMN subcategory, DROP COLUMN category, DROP COLUMN language;
