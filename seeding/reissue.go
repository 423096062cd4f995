package seeding

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/jackc/pgx/v5"
)

// SetWebSeed re-issues a .torrent with url-list holding webSeedURL alone (the file's own URL, in
// place of BEP 19's directory form that webtorrent cannot use), leaving the info dictionary and
// so the infohash as they are. A torrent that lists exactly it comes back unchanged.
func SetWebSeed(torrentFile []byte, webSeedURL string) (out []byte, changed bool, err error) {
	if err := checkURL("web seed URL", webSeedURL, "http", "https"); err != nil {
		return nil, false, err
	}
	mi, err := metainfo.Load(bytes.NewReader(torrentFile))
	if err != nil {
		return nil, false, invalidf("not a .torrent file: %v", err)
	}
	if slices.Equal([]string(mi.UrlList), []string{webSeedURL}) {
		return torrentFile, false, nil
	}
	mi.UrlList = metainfo.UrlList{webSeedURL}
	if out, err = bencode.Marshal(mi); err != nil {
		return nil, false, fmt.Errorf("seeding: encode torrent: %w", err)
	}
	return out, true, nil
}

// SetWebSeedOfAll re-issues the .torrent of every torrent not deleted whose url-list is not the
// file URL webSeedURL(infohash hex, name) gives (see SetWebSeed); infohashes stay as they are.
// It returns how many it changed. A .torrent it cannot read is left as it is.
func SetWebSeedOfAll(ctx context.Context, db DBTX, webSeedURL func(infoHashHex, name string) string) (int, error) {
	return reissueAll(ctx, db, func(infoHashHex, name string, mi []byte) ([]byte, bool, error) {
		return SetWebSeed(mi, webSeedURL(infoHashHex, name))
	})
}

// reissueAll gives the .torrent of every torrent not deleted to change, and stores what change
// returns where it changed it (and the stored .torrent is still the one it was given). It
// returns how many it stored; a .torrent change fails on is left as it is.
func reissueAll(ctx context.Context, db DBTX, change func(infoHashHex, name string, mi []byte) ([]byte, bool, error)) (int, error) {
	type row struct {
		id       int64
		infoHash []byte
		name     string
		mi       []byte
	}
	rows, _ := db.Query(ctx, `SELECT id, infohash, name, metainfo FROM torrents WHERE status <> 'deleted' ORDER BY id`)
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.infoHash, &x.name, &x.mi)
		return x, err
	})
	if err != nil {
		return 0, fmt.Errorf("read torrents: %w", err)
	}
	n := 0
	for _, r := range list {
		out, changed, err := change(fmt.Sprintf("%x", r.infoHash), r.name, r.mi)
		if err != nil || !changed {
			continue
		}
		tag, err := db.Exec(ctx, `UPDATE torrents SET metainfo = $2 WHERE id = $1 AND metainfo = $3`, r.id, out, r.mi)
		if err != nil {
			return n, fmt.Errorf("re-issue torrent %d: %w", r.id, err)
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}
