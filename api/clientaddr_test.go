package api_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/internal/testkit"
)

// The client is the right-most address of X-Forwarded-For (or Forwarded) that is not a trusted
// proxy, and only when the request came from one: the tracker records it, the request log
// names it, and ip= counts only from a trusted host itself. Without TRUSTED_PROXIES nobody's
// headers are believed, and ip= counts from nobody.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		header  http.Header
		ip      string
		want    string
	}{
		{"UntrustedHeadersIgnored", nil, http.Header{"X-Forwarded-For": {"203.0.113.5"}}, "", "127.0.0.1"},
		{"UntrustedIPParamIgnored", nil, nil, "198.51.100.1", "127.0.0.1"},
		{"RightMostUntrustedHop", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
			http.Header{"X-Forwarded-For": {"198.51.100.200, 203.0.113.5", "10.1.2.3"}}, "", "203.0.113.5"},
		{"ForwardedHeader", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			http.Header{"Forwarded": {`for=198.51.100.9;proto=https, for="[2001:db8::5]:4711"`}}, "", "2001:db8::5"},
		{"GarbageHopStops", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
			http.Header{"X-Forwarded-For": {"198.51.100.9, not-an-ip, 10.0.0.7"}}, "", "10.0.0.7"},
		{"ForwardedClientIPParamIgnored", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			http.Header{"X-Forwarded-For": {"203.0.113.5"}}, "198.51.100.1", "203.0.113.5"},
		{"TrustedHostIPParam", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil, "198.51.100.1", "198.51.100.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &testkit.LogBuffer{}
			ts := newTestServerWith(t, func(c *api.Config) { c.TrustedProxies = tt.trusted }, logs)
			owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
			show, err := catalog.CreateShow(t.Context(), ts.db, owner.ID, catalog.ShowInput{Slug: "proxied", Title: "Proxied", Currency: "USD"})
			if err != nil {
				t.Fatal(err)
			}
			_, rec := ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))
			announce := func(id, port, left string, h http.Header, ip string) map[string]any {
				q := url.Values{"info_hash": {string(rec.InfoHash)}, "peer_id": {strings.Repeat(id, 20)}, "port": {port},
					"uploaded": {"0"}, "downloaded": {"0"}, "left": {left}, "compact": {"0"}, "event": {"started"}}
				if ip != "" {
					q.Set("ip", ip)
				}
				req, err := http.NewRequest("GET", ts.URL+"/announce?"+trackerQuery(q), nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range h {
					req.Header[k] = v
				}
				var m map[string]any
				if err := bencode.Unmarshal([]byte(readBody(t, ts.send(t, nil, req))), &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
			announce("s", "7001", "0", tt.header, tt.ip)
			m := announce("l", "7002", "100", nil, "")
			peers, _ := m["peers"].([]any)
			if len(peers) != 1 {
				t.Fatalf("leecher got peers %v, want the seeder", m)
			}
			if got := peers[0].(map[string]any)["ip"]; got != tt.want {
				t.Errorf("the tracker recorded the seeder as %v, want %s", got, tt.want)
			}
			// Announces are logged at debug level; a page shows the address the log records.
			req, _ := http.NewRequest("GET", ts.URL+"/healthz", nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			readBody(t, ts.send(t, nil, req))
			found := false
			for line := range strings.SplitSeq(logs.String(), "\n") {
				var entry struct{ Msg, Path, Remote string }
				if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "request" && entry.Path == "/healthz" && entry.Remote == tt.want {
					found = true
				}
			}
			if !found && tt.ip == "" {
				t.Errorf("no request log line with remote %s in\n%s", tt.want, logs.String())
			}
		})
	}
}
