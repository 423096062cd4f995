-- +goose Up
-- The thank-you page after a donation shows its amount only to the browser that started the
-- checkout: the page's address carries this random token (never the sequential id), and so does
-- a cookie set for that browser.
ALTER TABLE donations ADD COLUMN thanks_token text NOT NULL
    DEFAULT replace(gen_random_uuid()::text, '-', '') CHECK (length(thanks_token) >= 32);
CREATE UNIQUE INDEX donations_thanks_token_key ON donations (thanks_token);

-- +goose Down
ALTER TABLE donations DROP COLUMN thanks_token;
