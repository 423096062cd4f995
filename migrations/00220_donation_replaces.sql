-- +goose Up
-- A monthly donation whose amount the donor changed in offline test mode replaces the old one:
-- the old is cancelled when the new one's first payment completes.
ALTER TABLE donations ADD COLUMN replaces_donation_id bigint REFERENCES donations;

-- +goose Down
ALTER TABLE donations DROP COLUMN replaces_donation_id;
