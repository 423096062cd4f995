package seeding

import (
	"bytes"
	"fmt"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// PrivateOptions is what a private (early-access) torrent issued to one person carries.
type PrivateOptions struct {
	TrackerURL string // the private announce URL, with the holder's passkey
	WebSeedURL string // a signed, expiring web seed URL ending in "/"
	IssuedTo   string // who it was issued to, written in its comment
	CreatedAt  time.Time
}

// PrivateTorrent makes the private twin of a published torrent: the same info dict with
// private=1 (BEP 27), so a different infohash that clients keep off DHT and PEX, announcing only
// to TrackerURL. Everything outside the info dict is the holder's own, so every holder's
// .torrent has the same infohash and a leaked one names who it was issued to.
func PrivateTorrent(public []byte, o PrivateOptions) (Torrent, error) {
	info, err := privateInfo(public)
	if err != nil {
		return Torrent{}, err
	}
	if err := checkURL("tracker URL", o.TrackerURL, "http", "https"); err != nil {
		return Torrent{}, err
	}
	mi := metainfo.MetaInfo{Announce: o.TrackerURL, CreatedBy: "Fanseed",
		Comment: "Early access issued to " + o.IssuedTo + ". Do not share: it is yours alone."}
	if err := setWebSeed(&mi, o.WebSeedURL, o.CreatedAt); err != nil {
		return Torrent{}, err
	}
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		return Torrent{}, fmt.Errorf("seeding: encode private info: %w", err)
	}
	b, err := bencode.Marshal(mi)
	if err != nil {
		return Torrent{}, fmt.Errorf("seeding: encode private torrent: %w", err)
	}
	return Torrent{Name: info.Name, InfoHash: mi.HashInfoBytes(), Bytes: b}, nil
}

// PrivateInfoHash is the infohash of a published torrent's private twin.
func PrivateInfoHash(public []byte) ([20]byte, error) {
	info, err := privateInfo(public)
	if err != nil {
		return [20]byte{}, err
	}
	b, err := bencode.Marshal(info)
	if err != nil {
		return [20]byte{}, fmt.Errorf("seeding: encode private info: %w", err)
	}
	return metainfo.HashBytes(b), nil
}

func privateInfo(public []byte) (metainfo.Info, error) {
	mi, err := metainfo.Load(bytes.NewReader(public))
	if err != nil {
		return metainfo.Info{}, invalidf("torrent does not parse: %v", err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return metainfo.Info{}, invalidf("torrent info does not parse: %v", err)
	}
	private := true
	info.Private = &private
	return info, nil
}
