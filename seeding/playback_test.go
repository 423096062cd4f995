package seeding

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

func TestParsePlaybackReport(t *testing.T) {
	const length = 100 << 20 // 100 MiB: 200 MiB of downloads and 6.4 GiB of uploads per report
	tests := []struct {
		name, body string
		want       PlaybackReport
		wantErr    string // a part of the error; "" for none
	}{
		{"OK", `{"peer_bytes":900,"web_seed_bytes":100,"uploaded_bytes":5,"first_frame_ms":640,"stalls":1,"seconds_watched":12}`,
			PlaybackReport{PeerBytes: 900, WebSeedBytes: 100, UploadedBytes: 5, FirstFrameMs: 640, Stalls: 1, SecondsWatched: 12}, ""},
		{"OKNoFirstFrame", `{"peer_bytes":0,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":30}`,
			PlaybackReport{FirstFrameMs: -1, SecondsWatched: 30}, ""},
		{"ErrNotJSON", `peer_bytes=1`, PlaybackReport{}, "JSON object"},
		{"ErrArray", `[1,2]`, PlaybackReport{}, "JSON object"},
		{"ErrMissing", `{"peer_bytes":1,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0}`, PlaybackReport{}, "seconds_watched is missing"},
		{"ErrNegative", `{"peer_bytes":-1,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":0}`, PlaybackReport{}, "peer_bytes must not be negative"},
		{"ErrFraction", `{"peer_bytes":0,"web_seed_bytes":1.5,"uploaded_bytes":0,"stalls":0,"seconds_watched":0}`, PlaybackReport{}, "web_seed_bytes must be a whole number"},
		{"ErrString", `{"peer_bytes":0,"web_seed_bytes":0,"uploaded_bytes":"7","stalls":0,"seconds_watched":0}`, PlaybackReport{}, "uploaded_bytes must be a whole number"},
		{"ErrUnknownField", `{"peer_bytes":0,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":0,"country":"fr"}`, PlaybackReport{}, "country is not a field"},
		{"ErrTooManyBytes", `{"peer_bytes":209715201,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":0}`, PlaybackReport{}, "peer_bytes is more than 209715200"},
		{"ErrSumTooBig", `{"peer_bytes":209715200,"web_seed_bytes":1,"uploaded_bytes":0,"stalls":0,"seconds_watched":0}`, PlaybackReport{}, "add up to more than"},
		{"ErrFirstFrame", `{"peer_bytes":0,"web_seed_bytes":0,"uploaded_bytes":0,"first_frame_ms":600001,"stalls":0,"seconds_watched":0}`, PlaybackReport{}, "first_frame_ms is more than"},
		{"ErrWatched", `{"peer_bytes":0,"web_seed_bytes":0,"uploaded_bytes":0,"stalls":0,"seconds_watched":86401}`, PlaybackReport{}, "seconds_watched is more than"},
		{"ErrLong", `{"peer_bytes":0` + strings.Repeat(" ", 5000) + `}`, PlaybackReport{}, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlaybackReport(strings.NewReader(tt.body), length)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParsePlaybackReport = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(FailureReason(err), tt.wantErr) {
				t.Fatalf("ParsePlaybackReport error = %v, want ErrInvalid with %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParsePlaybackReport(f *testing.F) {
	f.Add(`{"peer_bytes":900,"web_seed_bytes":100,"uploaded_bytes":5,"first_frame_ms":640,"stalls":1,"seconds_watched":12}`)
	f.Add(`{"peer_bytes":1e3}`)
	f.Fuzz(func(t *testing.T, body string) {
		r, err := ParsePlaybackReport(strings.NewReader(body), 1<<30)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if r.PeerBytes < 0 || r.WebSeedBytes < 0 || r.UploadedBytes < 0 || r.Stalls < 0 || r.SecondsWatched < 0 || r.FirstFrameMs < -1 {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// Reports and the web seed's tally add up per torrent and day, and the totals read them back.
func TestPlaybackDays(t *testing.T) {
	f := newFleetFixture(t)
	ctx := context.Background()
	a, b := f.torrent(1<<20), f.torrent(1<<20)
	day := time.Date(2026, 5, 4, 23, 59, 0, 0, time.UTC)
	for _, r := range []PlaybackReport{
		{PeerBytes: 900, WebSeedBytes: 100, UploadedBytes: 50, FirstFrameMs: 400, Stalls: 1, SecondsWatched: 30},
		{PeerBytes: 800, WebSeedBytes: 200, FirstFrameMs: -1, SecondsWatched: 30},
	} {
		if err := RecordPlayback(ctx, f.db, a.ID, day, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := RecordPlayback(ctx, f.db, b.ID, day.Add(time.Hour), PlaybackReport{PeerBytes: 7, FirstFrameMs: 1000}); err != nil {
		t.Fatal(err)
	}
	var tally WebSeedTally
	tally.Add(a.ID, ToPlayer, 300)
	tally.Add(a.ID, ToPlayer, 1)
	tally.Add(a.ID, ToBitTorrent, 5000)
	tally.Add(a.ID, ToBrowser, 20)
	tally.Add(1<<40, ToBrowser, 20) // a torrent deleted since: dropped
	if err := tally.Flush(ctx, f.db, day); err != nil {
		t.Fatal(err)
	}
	if err := tally.Flush(ctx, f.db, day); err != nil { // nothing counted twice
		t.Fatal(err)
	}
	from := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	got, err := PlaybackTotals(ctx, f.db, []int64{a.ID}, from, from.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	want := Playback{Reports: 2, PeerBytes: 1700, WebSeedBytes: 300, UploadedBytes: 50, FirstFrames: 1, FirstFrameMsSum: 400,
		Stalls: 1, SecondsWatched: 60, ServedPlayer: 301, ServedBrowser: 20, ServedBitTorrent: 5000}
	if got != want {
		t.Errorf("PlaybackTotals(a) = %+v, want %+v", got, want)
	}
	if pct, ok := got.SwarmPercent(); !ok || pct != 85 {
		t.Errorf("SwarmPercent = %d, %v; want 85", pct, ok)
	}
	// b's report fell on the next UTC day.
	if got, err := PlaybackTotals(ctx, f.db, []int64{a.ID, b.ID}, from, from.AddDate(0, 0, 1)); err != nil || got.PeerBytes != 1700 {
		t.Errorf("PlaybackTotals(a, b) on May 4 = %+v, %v; want b's report left out", got, err)
	}
	if got, err := PlaybackTotals(ctx, f.db, []int64{a.ID, b.ID}, from, from.AddDate(0, 0, 2)); err != nil || got.PeerBytes != 1707 || got.FirstFrames != 2 {
		t.Errorf("PlaybackTotals(a, b) on May 4-5 = %+v, %v", got, err)
	}
	if _, ok := (Playback{}).SwarmPercent(); ok {
		t.Error("SwarmPercent of nothing reported a share")
	}
}

// Torrents that carry BEP 19's directory form (or no url-list) are re-issued with the file's
// URL, keeping their infohash; a second pass changes nothing.
func TestSetWebSeedOfAll(t *testing.T) {
	f := newFleetFixture(t)
	ctx := context.Background()
	old, empty := f.torrent(1<<20), f.torrent(1<<20)
	data := randomBytes(4, 40000)
	for _, r := range []struct {
		rec     Record
		webSeed string
	}{{old, "http://fanseed.test/seed/" + old.InfoHashHex() + "/"}, {empty, ""}} {
		tor, err := BuildTorrent(hashAll(t, data, MinPieceLength), TorrentOptions{Name: r.rec.Name, TrackerURL: "http://fanseed.test/announce", WebSeedURL: r.webSeed})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.Exec(ctx, `UPDATE torrents SET metainfo = $2 WHERE id = $1`, r.rec.ID, tor.Bytes); err != nil {
			t.Fatal(err)
		}
	}
	fileURL := func(ih, name string) string { return "http://fanseed.test/seed/" + ih + "/" + name }
	n, err := SetWebSeedOfAll(ctx, f.db, fileURL)
	if err != nil || n != 2 {
		t.Fatalf("SetWebSeedOfAll = %d, %v; want 2 (the third torrent's .torrent is unreadable and left alone)", n, err)
	}
	for _, rec := range []Record{old, empty} {
		var mb []byte
		if err := f.db.QueryRow(ctx, `SELECT metainfo FROM torrents WHERE id = $1`, rec.ID).Scan(&mb); err != nil {
			t.Fatal(err)
		}
		mi, err := metainfo.Load(bytes.NewReader(mb))
		if err != nil {
			t.Fatal(err)
		}
		if want := fileURL(rec.InfoHashHex(), rec.Name); len(mi.UrlList) != 1 || mi.UrlList[0] != want {
			t.Errorf("url-list = %q, want [%q]", mi.UrlList, want)
		}
		if want := hashAll(t, data, MinPieceLength); mi.InfoBytes == nil || !bytes.Contains(mi.InfoBytes, want.Pieces) {
			t.Error("the info dictionary changed")
		}
	}
	if n, err := SetWebSeedOfAll(ctx, f.db, fileURL); err != nil || n != 0 {
		t.Errorf("second SetWebSeedOfAll = %d, %v; want 0", n, err)
	}
}

func TestSetWebSeed(t *testing.T) {
	data := randomBytes(5, 50000)
	tor, err := BuildTorrent(hashAll(t, data, MinPieceLength), TorrentOptions{Name: "Ep 1.mp4", TrackerURL: "http://f.example/announce", WebSeedURL: "http://f.example/seed/ab/"})
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := SetWebSeed(tor.Bytes, "http://f.example/seed/ab/Ep%201.mp4")
	if err != nil || !changed {
		t.Fatalf("SetWebSeed = %v, %v", changed, err)
	}
	mi, err := metainfo.Load(bytes.NewReader(out))
	if err != nil || [20]byte(mi.HashInfoBytes()) != tor.InfoHash || len(mi.UrlList) != 1 || mi.UrlList[0] != "http://f.example/seed/ab/Ep%201.mp4" {
		t.Fatalf("re-issued: %v, infohash %x (want %x), url-list %q", err, mi.HashInfoBytes(), tor.InfoHash, mi.UrlList)
	}
	if again, changed, err := SetWebSeed(out, "http://f.example/seed/ab/Ep%201.mp4"); err != nil || changed || !bytes.Equal(again, out) {
		t.Errorf("second SetWebSeed changed = %v, %v", changed, err)
	}
	if _, _, err := SetWebSeed(tor.Bytes, "ftp://f.example/x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetWebSeed(ftp) error = %v, want ErrInvalid", err)
	}
	if _, _, err := SetWebSeed([]byte("not bencode"), "http://f.example/x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetWebSeed(garbage) error = %v, want ErrInvalid", err)
	}
}
