package seeding

import (
	"bytes"
	"errors"
	"maps"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"episode-01.mp4", "episode-01.mp4"},
		{"  Episode 1: Pilot.mkv  ", "Episode 1: Pilot.mkv"},
		{"/home/ana/videos/ep1.mp4", "ep1.mp4"},
		{`C:\Users\Ana\Videos\ep1.mp4`, "ep1.mp4"},
		{"../../etc/passwd", "passwd"},
		{"ep\x00\x1b[31m1\x7f.mp4", "ep[31m1.mp4"},
		{"line\nbreak\r.mp4", "linebreak.mp4"},
		{"evil\u202egpj.exe", "evilgpj.exe"},
		{"épisode \u00e9t\u00e9 日本.webm", "épisode été 日本.webm"},
		{"bad\xffutf8.ogg", "badutf8.ogg"},
		{"...", "..."},
		{strings.Repeat("a", 255), strings.Repeat("a", 255)},
	}
	for _, tt := range tests {
		got, err := CleanName(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "   ", "dir/", `dir\`, ".", "..", "a/..", "\x00\x01", "\u202e", strings.Repeat("a", 256)} {
		if got, err := CleanName(in); !errors.Is(err, ErrInvalid) || err.Error() == "" {
			t.Errorf("CleanName(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func hashAll(t *testing.T, data []byte, pieceLength int64) Hashes {
	t.Helper()
	h, err := NewHasher(pieceLength)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(data)
	return h.Sum()
}

func TestBuildTorrent(t *testing.T) {
	data := randomBytes(3, 5*MinPieceLength+99)
	hashes := hashAll(t, data, MinPieceLength)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	opts := TorrentOptions{
		Name:       "uploads/Ep 1.mp4",
		TrackerURL: "https://fanseed.example/announce",
		WebSeedURL: "https://fanseed.example/webseed/42/",
		ShowURL:    "https://fanseed.example/shows/night-owls",
		CreatedAt:  created,
	}
	tor, mi, info := buildTorrent(t, hashes, opts)
	checks := []struct {
		field     string
		got, want any
	}{
		{"Name", tor.Name, "Ep 1.mp4"},
		{"InfoHash", tor.InfoHash, [20]byte(mi.HashInfoBytes())},
		{"announce", mi.Announce, opts.TrackerURL},
		{"url-list", []string(mi.UrlList), []string{opts.WebSeedURL}},
		{"created by", mi.CreatedBy, "Fanseed"},
		{"creation date", mi.CreationDate, created.Unix()},
		{"comment", mi.Comment, opts.ShowURL},
		{"info.name", info.Name, "Ep 1.mp4"},
		{"info.length", info.Length, int64(len(data))},
		{"info.piece length", info.PieceLength, int64(MinPieceLength)},
		{"info.pieces", info.Pieces, referenceHashes(data, MinPieceLength).Pieces},
		{"info.private", info.Private == nil, true},
	}
	for _, c := range checks {
		if !equalAny(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	// Decoding into interface values checks the dict keys are sorted; the info dict must hold
	// exactly the keys mktorrent writes, or the infohashes would differ.
	var generic map[string]any
	if err := bencode.Unmarshal(tor.Bytes, &generic); err != nil {
		t.Fatal(err)
	}
	infoDict, _ := generic["info"].(map[string]any)
	if keys := slices.Sorted(maps.Keys(infoDict)); !slices.Equal(keys, []string{"length", "name", "piece length", "pieces"}) {
		t.Errorf("info keys = %q", keys)
	}
}

func equalAny(a, b any) bool {
	switch a := a.(type) {
	case []byte:
		return bytes.Equal(a, b.([]byte))
	case []string:
		return slices.Equal(a, b.([]string))
	}
	return a == b
}

func TestBuildTorrentRejects(t *testing.T) {
	good := hashAll(t, []byte("some bytes"), MinPieceLength)
	opts := TorrentOptions{Name: "a.mp4", TrackerURL: "http://t.example/announce"}
	if _, err := BuildTorrent(good, opts); err != nil {
		t.Fatalf("good input: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Hashes, *TorrentOptions)
	}{
		{"ErrNameEmpty", func(h *Hashes, o *TorrentOptions) { o.Name = "dir/" }},
		{"ErrEmptyFile", func(h *Hashes, o *TorrentOptions) { *h = hashAll(t, nil, MinPieceLength) }},
		{"ErrPieceLength", func(h *Hashes, o *TorrentOptions) { h.PieceLength = 1000 }},
		{"ErrPiecesShort", func(h *Hashes, o *TorrentOptions) { h.Pieces = h.Pieces[:19] }},
		{"ErrPiecesLong", func(h *Hashes, o *TorrentOptions) { h.Pieces = append(bytes.Clone(h.Pieces), h.Pieces...) }},
		{"ErrTrackerMissing", func(h *Hashes, o *TorrentOptions) { o.TrackerURL = "" }},
		{"ErrTrackerRelative", func(h *Hashes, o *TorrentOptions) { o.TrackerURL = "/announce" }},
		{"ErrTrackerScheme", func(h *Hashes, o *TorrentOptions) { o.TrackerURL = "ftp://t.example/announce" }},
		{"ErrWebSeedScheme", func(h *Hashes, o *TorrentOptions) { o.WebSeedURL = "udp://t.example/" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, o := good, opts
			tt.change(&h, &o)
			if _, err := BuildTorrent(h, o); !errors.Is(err, ErrInvalid) {
				t.Errorf("error = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestBuildTorrentMatchesMktorrent checks that our torrent has the infohash mktorrent gives the
// same file, so fans' clients see one swarm whichever tool made the torrent.
func TestBuildTorrentMatchesMktorrent(t *testing.T) {
	mktorrent, err := exec.LookPath("mktorrent")
	if err != nil {
		t.Fatal("mktorrent is not installed (bash .ci/test installs it: apt-get install mktorrent)")
	}
	dir := t.TempDir()
	data := randomBytes(4, 3<<20+12345)
	file := filepath.Join(dir, "episode 07.ogg")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// mktorrent 1.1 takes 32 KiB (2^15) at the least.
	for _, pieceLength := range []int64{32 << 10, 1 << 20} {
		out := filepath.Join(dir, strconv.FormatInt(pieceLength, 10)+".torrent")
		log2 := strconv.Itoa(bits.TrailingZeros64(uint64(pieceLength)))
		cmd := exec.Command(mktorrent, "-l", log2, "-a", "http://127.0.0.1/announce", "-o", out, file)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mktorrent: %v\n%s", err, b)
		}
		want, err := metainfo.LoadFromFile(out)
		if err != nil {
			t.Fatal(err)
		}
		tor, err := BuildTorrent(hashAll(t, data, pieceLength), TorrentOptions{
			Name:       filepath.Base(file),
			TrackerURL: "https://fanseed.example/announce",
			WebSeedURL: "https://fanseed.example/webseed/7/",
			CreatedAt:  time.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if tor.InfoHash != [20]byte(want.HashInfoBytes()) {
			t.Errorf("piece length %d: infohash %x, mktorrent's %x", pieceLength, tor.InfoHash, want.HashInfoBytes())
		}
	}
}

func TestWebSeedFileURL(t *testing.T) {
	tests := []struct{ base, name, want string }{
		{"https://f.example/ws/42/", "Ep 1.mp4", "https://f.example/ws/42/Ep%201.mp4"},
		{"https://f.example/ws/42/ep1.mp4", "ep1.mp4", "https://f.example/ws/42/ep1.mp4"},
	}
	for _, tt := range tests {
		if got := WebSeedFileURL(tt.base, tt.name); got != tt.want {
			t.Errorf("WebSeedFileURL(%q, %q) = %q, want %q", tt.base, tt.name, got, tt.want)
		}
	}
}

func TestMagnetURI(t *testing.T) {
	ih := [20]byte{0xde, 0xad, 0xbe, 0xef, 19: 1}
	uri := MagnetURI(Magnet{InfoHash: ih, Name: "Ep 1 & 2.mp4", Length: 123456789, TorrentURL: "https://f.example/t/de.torrent",
		Trackers: []string{"https://f.example/announce?x=1", "", "wss://f.example/tracker"}, WebSeed: "https://f.example/ws/42/"})
	if !strings.HasPrefix(uri, "magnet:?xt=urn:btih:deadbeef") {
		t.Errorf("MagnetURI = %q, want xt first", uri)
	}
	m, err := metainfo.ParseMagnetUri(uri)
	if err != nil {
		t.Fatal(err)
	}
	if [20]byte(m.InfoHash) != ih || m.DisplayName != "Ep 1 & 2.mp4" ||
		!slices.Equal(m.Trackers, []string{"https://f.example/announce?x=1", "wss://f.example/tracker"}) ||
		m.Params.Get("ws") != "https://f.example/ws/42/" || m.Params.Get("xl") != "123456789" ||
		m.Params.Get("xs") != "https://f.example/t/de.torrent" {
		t.Errorf("ParseMagnetUri(%q) = %+v", uri, m)
	}
	if uri := MagnetURI(Magnet{InfoHash: ih, Name: "a"}); strings.Contains(uri, "tr=") || strings.Contains(uri, "ws=") ||
		strings.Contains(uri, "xl=") || strings.Contains(uri, "xs=") {
		t.Errorf("MagnetURI without URLs = %q", uri)
	}
}

// Torrents list the WebSocket tracker as a second tier; a torrent made without it is re-issued
// with it and keeps its infohash; one that lists it is left as it is.
func TestWebTrackerInAnnounceList(t *testing.T) {
	h := Hashes{Length: 5, PieceLength: MinPieceLength, Pieces: make([]byte, 20)}
	old, err := BuildTorrent(h, TorrentOptions{Name: "a.mp4", TrackerURL: "https://f.example/announce"})
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := AddWebTracker(old.Bytes, "wss://f.example/announce")
	if err != nil || !changed {
		t.Fatalf("AddWebTracker: %v, changed %v", err, changed)
	}
	mi, err := metainfo.Load(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if mi.HashInfoBytes() != old.InfoHash {
		t.Errorf("infohash changed: %x, was %x", mi.HashInfoBytes(), old.InfoHash)
	}
	want := metainfo.AnnounceList{{"https://f.example/announce"}, {"wss://f.example/announce"}}
	if !reflect.DeepEqual(mi.AnnounceList, want) || mi.Announce != "https://f.example/announce" {
		t.Errorf("announce %q, announce-list %v, want %v", mi.Announce, mi.AnnounceList, want)
	}
	if again, changed, err := AddWebTracker(out, "wss://f.example/announce"); err != nil || changed || !bytes.Equal(again, out) {
		t.Errorf("second AddWebTracker changed it: %v %v", changed, err)
	}
	fresh, err := BuildTorrent(h, TorrentOptions{Name: "a.mp4", TrackerURL: "https://f.example/announce", WebTrackerURL: "wss://f.example/announce"})
	if err != nil || fresh.InfoHash != old.InfoHash || !bytes.Equal(fresh.Bytes, out) {
		t.Errorf("a new torrent with the WebSocket tracker: %v, infohash %x, same bytes %v", err, fresh.InfoHash, bytes.Equal(fresh.Bytes, out))
	}
	if _, err := BuildTorrent(h, TorrentOptions{Name: "a.mp4", TrackerURL: "https://f.example/announce", WebTrackerURL: "https://f.example/announce"}); err == nil {
		t.Error("an http WebSocket tracker URL was taken")
	}
	mi.AnnounceList = nil
	if got := nodeTrackers(mi); !reflect.DeepEqual(got, [][]string{{"https://f.example/announce"}, {"wss://f.example/announce"}}) {
		t.Errorf("a node announces an old torrent to %v", got)
	}
}
