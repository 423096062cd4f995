-- +goose Up
-- An early-access episode's public torrent (seeding) stays private to the fleet until its
-- release: the tracker, the .torrent file and the web seed refuse it to fans before public_from,
-- while the nodes fetch and seed it. NULL: public once published.
ALTER TABLE torrents ADD COLUMN public_from timestamptz;

-- +goose Down
ALTER TABLE torrents DROP COLUMN public_from;
