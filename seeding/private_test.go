package seeding

import (
	"bytes"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// A private twin has private=1 in the same info dict otherwise, so one infohash (not the public
// one) for every holder, and carries each holder's own tracker URL, web seed and name.
func TestPrivateTorrent(t *testing.T) {
	data := randomBytes(3, 100_000)
	public, err := BuildTorrent(hashAll(t, data, 16384), TorrentOptions{Name: "ep.mp3", TrackerURL: "http://example.com/announce",
		WebSeedURL: "http://example.com/seed/x/"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := PrivateTorrent(public.Bytes, PrivateOptions{TrackerURL: "http://example.com/early/aaa/announce",
		WebSeedURL: "http://example.com/early/aaa/sig/", IssuedTo: "Ann <ann@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := PrivateTorrent(public.Bytes, PrivateOptions{TrackerURL: "http://example.com/early/bbb/announce", IssuedTo: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	ih, err := PrivateInfoHash(public.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if a.InfoHash != b.InfoHash || a.InfoHash != ih || a.InfoHash == public.InfoHash {
		t.Fatalf("infohashes: a %x, b %x, PrivateInfoHash %x, public %x", a.InfoHash, b.InfoHash, ih, public.InfoHash)
	}
	mi, err := metainfo.Load(bytes.NewReader(a.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.Private == nil || !*info.Private || info.Length != int64(len(data)) || info.Name != "ep.mp3" ||
		mi.Announce != "http://example.com/early/aaa/announce" || len(mi.AnnounceList) != 0 || !strings.Contains(mi.Comment, "ann@example.com") ||
		len(mi.UrlList) != 1 || mi.UrlList[0] != "http://example.com/early/aaa/sig/" {
		t.Fatalf("private torrent %+v, info private %v", mi, info.Private)
	}
	if _, err := PrivateTorrent([]byte("not a torrent"), PrivateOptions{TrackerURL: "http://example.com/a"}); err == nil {
		t.Fatal("a non-torrent made a private torrent")
	}
	if _, err := PrivateTorrent(public.Bytes, PrivateOptions{TrackerURL: "ftp://example.com/a"}); err == nil {
		t.Fatal("an ftp tracker was taken")
	}
}
