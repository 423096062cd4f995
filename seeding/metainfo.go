package seeding

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// maxNameBytes is the longest file name common file systems accept.
const maxNameBytes = 255

// CleanName turns an uploaded file name into a torrent name that is safe to create on a fan's
// disk: only the last path component (either separator), without control or bidirectional
// override characters or invalid UTF-8, trimmed of spaces.
func CleanName(name string) (string, error) {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	switch {
	case name == "" || name == "." || name == "..":
		return "", invalidf("file name is empty once path and control characters are removed")
	case len(name) > maxNameBytes:
		return "", invalidf("file name is longer than %d bytes", maxNameBytes)
	}
	return name, nil
}

// isBidiControl reports the characters that make "gpj.exe" display as "exe.jpg".
func isBidiControl(r rune) bool {
	return r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' ||
		r == '\u200e' || r == '\u200f' || r == '\u061c'
}

// TorrentOptions is what a .torrent says besides the hashes.
type TorrentOptions struct {
	Name       string // the uploaded file name; CleanName is applied
	TrackerURL string // announce: our tracker
	// WebTrackerURL is our WebSocket tracker (ws:// or wss://), a second tier of announce-list
	// so that browsers and the seedbox nodes' WebRTC find each other; empty for none.
	WebTrackerURL string
	WebSeedURL    string    // url-list (BEP 19); empty for none. See WebSeedFileURL.
	ShowURL       string    // comment: the show page; empty for none
	CreatedAt     time.Time // creation date; zero leaves it out
}

// Torrent is a built .torrent file and what pages and the tracker need to know about it.
type Torrent struct {
	Name     string   // the cleaned name
	InfoHash [20]byte // SHA-1 of the bencoded info dict (BitTorrent v1)
	Bytes    []byte   // the .torrent file
}

// BuildTorrent makes a single-file BitTorrent v1 .torrent from an upload's hashes. Its info dict
// has exactly the keys mktorrent writes without -p, so both give the same infohash.
func BuildTorrent(h Hashes, o TorrentOptions) (Torrent, error) {
	name, err := CleanName(o.Name)
	if err != nil {
		return Torrent{}, err
	}
	switch {
	case h.Length <= 0:
		return Torrent{}, invalidf("file is empty")
	case !validPieceLength(h.PieceLength):
		return Torrent{}, invalidf("piece length %d is not a power of two between %d and %d",
			h.PieceLength, MinPieceLength, MaxPieceLength)
	case int64(len(h.Pieces)) != NumPieces(h.Length, h.PieceLength)*sha1.Size:
		return Torrent{}, invalidf("%d bytes of piece hashes for %d bytes in pieces of %d",
			len(h.Pieces), h.Length, h.PieceLength)
	}
	if err := checkURL("tracker URL", o.TrackerURL, "http", "https", "udp"); err != nil {
		return Torrent{}, err
	}
	mi := metainfo.MetaInfo{Announce: o.TrackerURL, CreatedBy: "Fanseed", Comment: o.ShowURL}
	if o.WebTrackerURL != "" {
		if err := checkURL("WebSocket tracker URL", o.WebTrackerURL, "ws", "wss"); err != nil {
			return Torrent{}, err
		}
		mi.AnnounceList = metainfo.AnnounceList{{o.TrackerURL}, {o.WebTrackerURL}}
	}
	if err := setWebSeed(&mi, o.WebSeedURL, o.CreatedAt); err != nil {
		return Torrent{}, err
	}
	info := metainfo.Info{PieceLength: h.PieceLength, Pieces: h.Pieces, Name: name, Length: h.Length}
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		return Torrent{}, fmt.Errorf("seeding: encode info: %w", err)
	}
	b, err := bencode.Marshal(mi)
	if err != nil {
		return Torrent{}, fmt.Errorf("seeding: encode torrent: %w", err)
	}
	return Torrent{Name: name, InfoHash: mi.HashInfoBytes(), Bytes: b}, nil
}

// setWebSeed sets a torrent's url-list (none for "") and its creation date (none for zero).
func setWebSeed(mi *metainfo.MetaInfo, webSeedURL string, createdAt time.Time) error {
	if webSeedURL != "" {
		if err := checkURL("web seed URL", webSeedURL, "http", "https"); err != nil {
			return err
		}
		mi.UrlList = metainfo.UrlList{webSeedURL}
	}
	if !createdAt.IsZero() {
		mi.CreationDate = createdAt.Unix()
	}
	return nil
}

func checkURL(what, raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return invalidf("%s %q is not an absolute URL", what, raw)
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return invalidf("%s %q must use one of %s", what, raw, strings.Join(schemes, ", "))
}

// WebSeedFileURL is the URL a client fetches for a single-file torrent's web seed: BEP 19 says
// a url-list entry ending in "/" gets the torrent name appended, so the web-seed endpoint must
// answer there, and fan pages link to it.
func WebSeedFileURL(webSeedURL, name string) string {
	if strings.HasSuffix(webSeedURL, "/") {
		return webSeedURL + url.PathEscape(name)
	}
	return webSeedURL
}

// Magnet is what an episode's magnet link carries.
type Magnet struct {
	InfoHash   [20]byte
	Name       string // dn
	Length     int64  // xl: the file's size, so a client can show it before the metadata
	TorrentURL string // xs: where the .torrent is, for clients that fetch it rather than the metadata from peers
	Trackers   []string
	WebSeed    string // ws (BEP 19)
}

// MagnetURI is the magnet link on an episode page: infohash, name, size, our trackers, the
// .torrent's URL and our web seed, so a client can start without the .torrent. Empty values are
// left out.
func MagnetURI(m Magnet) string {
	mm := metainfo.Magnet{InfoHash: m.InfoHash, DisplayName: m.Name, Params: url.Values{}}
	for _, tr := range m.Trackers {
		if tr != "" {
			mm.Trackers = append(mm.Trackers, tr)
		}
	}
	if m.Length > 0 {
		mm.Params.Set("xl", strconv.FormatInt(m.Length, 10))
	}
	if m.TorrentURL != "" {
		mm.Params.Set("xs", m.TorrentURL)
	}
	if m.WebSeed != "" {
		mm.Params.Set("ws", m.WebSeed)
	}
	return mm.String()
}

// AddWebTracker re-issues a .torrent with the WebSocket tracker as a tier of its announce-list
// (after the tiers it has, or after announce), leaving the info dictionary and so the infohash
// as they are. A torrent that lists it already comes back unchanged, with changed false.
func AddWebTracker(torrentFile []byte, webTrackerURL string) (out []byte, changed bool, err error) {
	if err := checkURL("WebSocket tracker URL", webTrackerURL, "ws", "wss"); err != nil {
		return nil, false, err
	}
	mi, err := metainfo.Load(bytes.NewReader(torrentFile))
	if err != nil {
		return nil, false, invalidf("not a .torrent file: %v", err)
	}
	tiers := mi.UpvertedAnnounceList()
	for _, tier := range tiers {
		if slices.Contains(tier, webTrackerURL) {
			return torrentFile, false, nil
		}
	}
	mi.AnnounceList = append(slices.Clone(tiers), []string{webTrackerURL})
	if out, err = bencode.Marshal(mi); err != nil {
		return nil, false, fmt.Errorf("seeding: encode torrent: %w", err)
	}
	return out, true, nil
}
