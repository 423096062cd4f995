package api_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/fanseed/fanseed/catalog"
)

// The tracker answers every announce with bencode, a failure reason for anything it refuses,
// and serves only published torrents.
func TestTrackerEndpoints(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(t.Context(), ts.db, owner.ID, catalog.ShowInput{Slug: "tracked", Title: "Tracked", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	_, rec := ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))

	announce := func(q url.Values) (int, map[string]any) {
		t.Helper()
		resp := ts.do(t, nil, "GET", "/announce?"+trackerQuery(q), nil)
		var m map[string]any
		if err := bencode.Unmarshal([]byte(readBody(t, resp)), &m); err != nil {
			t.Fatalf("announce %v: body is not bencode: %v", q, err)
		}
		return resp.StatusCode, m
	}
	// A peer with nothing left has uploaded some, which shows it holds the data (a client from a
	// magnet announces left=0 too before it has the metadata, and is a leecher).
	peer := func(id string, port string, left string) url.Values {
		uploaded := "0"
		if left == "0" {
			uploaded = "16384"
		}
		return url.Values{"info_hash": {string(rec.InfoHash)}, "peer_id": {id}, "port": {port},
			"uploaded": {uploaded}, "downloaded": {"0"}, "left": {left}, "compact": {"1"}, "event": {"started"}}
	}
	for name, q := range map[string]url.Values{
		"short info_hash": {"info_hash": {"abc"}, "peer_id": {strings.Repeat("p", 20)}, "port": {"6881"}, "uploaded": {"0"}, "downloaded": {"0"}, "left": {"1"}},
		"bad port":        peer(strings.Repeat("a", 20), "70000", "1"),
		"missing fields":  {"info_hash": {string(rec.InfoHash)}},
		"garbage":         {"%%%": {"\x00\xff"}},
		"huge numwant": func() url.Values {
			q := peer(strings.Repeat("b", 20), "6881", "1")
			q.Set("numwant", "99999999999999999999")
			return q
		}(),
		"unpublished": peer(strings.Repeat("c", 20), "6881", "1"),
	} {
		if name == "unpublished" {
			q.Set("info_hash", strings.Repeat("\x01", 20))
		}
		status, m := announce(q)
		if status != http.StatusOK {
			t.Errorf("%s: status %d, want 200", name, status)
		}
		reason, _ := m["failure reason"].(string)
		if name == "huge numwant" {
			if reason != "" {
				t.Errorf("%s: refused with %q, want it clamped", name, reason)
			}
			continue
		}
		if reason == "" {
			t.Errorf("%s: no failure reason in %v", name, m)
		}
	}

	// A seeder and a leecher find each other; scrape counts them.
	announce(peer(strings.Repeat("s", 20), "7001", "0"))
	_, m := announce(peer(strings.Repeat("l", 20), "7002", "100"))
	if peers, _ := m["peers"].(string); len(peers)%6 != 0 || !bytes.Contains([]byte(peers), []byte{127, 0, 0, 1, 0x1b, 0x59}) ||
		bytes.Contains([]byte(peers), []byte{127, 0, 0, 1, 0x1b, 0x5a}) {
		t.Errorf("leecher got peers %q, want the seeder on port 7001 and not itself", m["peers"])
	}
	resp := ts.do(t, nil, "GET", "/scrape?"+trackerQuery(url.Values{"info_hash": {string(rec.InfoHash)}}), nil)
	var scrape struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
		} `bencode:"files"`
	}
	if err := bencode.Unmarshal([]byte(readBody(t, resp)), &scrape); err != nil {
		t.Fatal(err)
	}
	// The seeder "s"; the leechers "l" and "b" (the clamped numwant announce had bytes left).
	if f := scrape.Files[string(rec.InfoHash)]; f.Complete != 1 || f.Incomplete != 2 {
		t.Errorf("scrape: %d seeders %d leechers, want 1 and 2", f.Complete, f.Incomplete)
	}
}

// trackerQuery encodes a tracker request's query as BitTorrent clients do (anacrolix among
// them): a space as %20, never '+', which the tracker reads as the byte 0x2B that some clients
// leave unescaped in a binary info_hash. With url.Values.Encode alone, an infohash holding a
// 0x20 byte (one in 13) would be sent as another one.
func trackerQuery(q url.Values) string { return strings.ReplaceAll(q.Encode(), "+", "%20") }
