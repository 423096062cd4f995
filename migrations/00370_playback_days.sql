-- +goose Up
-- Where the bytes of browser playback came from (seeding), per torrent and UTC day: what the
-- episode players report (bytes from peers, from the web seed, uploaded to other viewers, time
-- to first frame, stalls, seconds watched) and what the origin web seed counted itself, split
-- by who asked (the player, a plain browser element or link, a BitTorrent client).
CREATE TABLE playback_days (
    torrent_id         bigint NOT NULL REFERENCES torrents ON DELETE CASCADE,
    day                date NOT NULL,
    reports            bigint NOT NULL DEFAULT 0 CHECK (reports >= 0),
    peer_bytes         bigint NOT NULL DEFAULT 0 CHECK (peer_bytes >= 0),
    web_seed_bytes     bigint NOT NULL DEFAULT 0 CHECK (web_seed_bytes >= 0),
    uploaded_bytes     bigint NOT NULL DEFAULT 0 CHECK (uploaded_bytes >= 0),
    first_frames       bigint NOT NULL DEFAULT 0 CHECK (first_frames >= 0), -- reports that carried a time to first frame
    first_frame_ms_sum bigint NOT NULL DEFAULT 0 CHECK (first_frame_ms_sum >= 0),
    stalls             bigint NOT NULL DEFAULT 0 CHECK (stalls >= 0),
    seconds_watched    bigint NOT NULL DEFAULT 0 CHECK (seconds_watched >= 0),
    served_player      bigint NOT NULL DEFAULT 0 CHECK (served_player >= 0),  -- web seed bytes to the episode player
    served_browser     bigint NOT NULL DEFAULT 0 CHECK (served_browser >= 0), -- to plain <video>/<audio> and links
    served_bittorrent  bigint NOT NULL DEFAULT 0 CHECK (served_bittorrent >= 0), -- to BitTorrent clients
    PRIMARY KEY (torrent_id, day)
);

-- +goose Down
DROP TABLE playback_days;
