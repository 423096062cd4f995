package seeding

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	httpTracker "github.com/anacrolix/torrent/tracker/http"
)

// checkBencode decodes b with anacrolix's decoder, which rejects unsorted dict keys and
// trailing bytes, and returns the value.
func checkBencode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := bencode.Unmarshal(b, &v); err != nil {
		t.Fatalf("not valid bencode: %v\n%q", err, b)
	}
	return v
}

var testPeers = []Peer{
	{ID: [20]byte{1}, Addr: netip.MustParseAddrPort("198.51.100.1:6881")},
	{ID: [20]byte{2}, Addr: netip.MustParseAddrPort("[2001:db8::2]:51413")},
	{ID: [20]byte{3}, Addr: netip.MustParseAddrPort("[::ffff:198.51.100.3]:1")},
	{ID: [20]byte{4}}, // invalid address: left out
}

func TestEncodeAnnounceResponseCompact(t *testing.T) {
	b := EncodeAnnounceResponse(AnnounceResponse{
		Interval: 1800 * time.Second, Complete: 3, Incomplete: 7, Peers: testPeers, Compact: true,
	})
	v := checkBencode(t, b)
	want := map[string]any{
		"interval": int64(1800), "complete": int64(3), "incomplete": int64(7),
		"peers":  "\xc6\x33\x64\x01\x1a\xe1" + "\xc6\x33\x64\x03\x00\x01",
		"peers6": "\x20\x01\x0d\xb8" + string(make([]byte, 11)) + "\x02\xc8\xd5",
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %q, want %q", k, v[k], w)
		}
	}
	// And as a BitTorrent client reads it.
	var r httpTracker.HttpResponse
	if err := bencode.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.FailureReason != "" || r.Interval != 1800 || len(r.Peers.List) != 2 || len(r.Peers6) != 1 ||
		r.Peers.List[0].Port != 6881 || r.Peers6[0].Port != 51413 {
		t.Errorf("client reads %+v", r)
	}
}

func TestEncodeAnnounceResponseDict(t *testing.T) {
	for _, noPeerID := range []bool{false, true} {
		b := EncodeAnnounceResponse(AnnounceResponse{Interval: time.Minute, Peers: testPeers, NoPeerID: noPeerID})
		checkBencode(t, b)
		var r httpTracker.HttpResponse
		if err := bencode.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Interval != 60 || len(r.Peers.List) != 3 {
			t.Fatalf("client reads %+v", r)
		}
		for i, p := range r.Peers.List {
			got, _ := p.ToNetipAddrPort()
			if want := testPeers[i].Addr; got.Addr().Unmap() != want.Addr().Unmap() || got.Port() != want.Port() {
				t.Errorf("peer %d at %v, want %v", i, got, want)
			}
			if wantID := testPeers[i].ID[:]; noPeerID && p.ID != nil || !noPeerID && !bytes.Equal(p.ID, wantID) {
				t.Errorf("no_peer_id=%v: peer %d id %x", noPeerID, i, p.ID)
			}
		}
	}
}

func TestEncodeAnnounceResponseEmpty(t *testing.T) {
	// Clients expect "peers" even when there are none.
	v := checkBencode(t, EncodeAnnounceResponse(AnnounceResponse{Compact: true}))
	if p, ok := v["peers"]; !ok || p != "" {
		t.Errorf("peers = %q, %v", p, ok)
	}
	if _, ok := v["peers6"]; ok {
		t.Error("peers6 present with no IPv6 peers")
	}
}

func TestEncodeScrapeResponse(t *testing.T) {
	files := []ScrapeFile{
		{InfoHash: [20]byte{0xff}, Complete: 1, Incomplete: 2, Downloaded: 3},
		{InfoHash: [20]byte{0x00, 0xff}, Complete: 4},
		{InfoHash: [20]byte{'a'}},
	}
	v := checkBencode(t, EncodeScrapeResponse(files))
	got, _ := v["files"].(map[string]any)
	if len(got) != len(files) {
		t.Fatalf("files = %v", v["files"])
	}
	for _, f := range files {
		d, _ := got[string(f.InfoHash[:])].(map[string]any)
		if d["complete"] != int64(f.Complete) || d["incomplete"] != int64(f.Incomplete) || d["downloaded"] != f.Downloaded {
			t.Errorf("%x: %v, want %+v", f.InfoHash, d, f)
		}
	}
	if v := checkBencode(t, EncodeScrapeResponse(nil)); len(v["files"].(map[string]any)) != 0 {
		t.Errorf("empty scrape = %v", v)
	}
}

func TestEncodeFailure(t *testing.T) {
	for _, reason := range []string{"torrent is not published on this tracker", "", "\x00\xffe:i1e", "ünïcode"} {
		var r httpTracker.HttpResponse
		b := EncodeFailure(reason)
		checkBencode(t, b)
		if err := bencode.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.FailureReason == "" || reason != "" && r.FailureReason != reason {
			t.Errorf("EncodeFailure(%q) reads as %q", reason, r.FailureReason)
		}
	}
}
