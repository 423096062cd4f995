package seeding

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// Test values: an info_hash with bytes a careless decoder mangles ('+' is 0x2b, ' ' is 0x20).
var (
	testHash   = [20]byte{0x2b, 0x20, 0x00, 0xff, 0x25, 0x26, 0x3d, 'a', 'Z', '~', 10: 0x80, 19: 0x2b}
	testPeerID = [20]byte([]byte("-FS0001-abcdefghijkl"))
)

// escapeAll percent-encodes every byte, as most clients do for info_hash.
func escapeAll(s string) string {
	var b strings.Builder
	for i := range len(s) {
		b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:]))
	}
	return b.String()
}

// announceQuery builds a valid announce query, with changes: "key=value" replaces or adds a
// parameter, "-key" removes it. Values are used raw, so tests control the encoding.
func announceQuery(changes ...string) string {
	params := [][2]string{
		{"info_hash", escapeAll(string(testHash[:]))},
		{"peer_id", url.QueryEscape(string(testPeerID[:]))},
		{"port", "6881"}, {"uploaded", "10"}, {"downloaded", "20"}, {"left", "30"},
		{"event", "started"}, {"compact", "1"},
	}
	for _, c := range changes {
		if k, ok := strings.CutPrefix(c, "-"); ok {
			for i := range params {
				if params[i][0] == k {
					params[i][0] = ""
				}
			}
			continue
		}
		k, v, _ := strings.Cut(c, "=")
		found := false
		for i := range params {
			if params[i][0] == k {
				params[i][1], found = v, true
			}
		}
		if !found {
			params = append(params, [2]string{k, v})
		}
	}
	var parts []string
	for _, p := range params {
		if p[0] != "" {
			parts = append(parts, p[0]+"="+p[1])
		}
	}
	return strings.Join(parts, "&")
}

func TestParseAnnounce(t *testing.T) {
	remote := net.ParseIP("203.0.113.9")
	want := Announce{
		InfoHash: testHash, PeerID: testPeerID,
		Addr:     netip.MustParseAddrPort("203.0.113.9:6881"),
		Uploaded: 10, Downloaded: 20, Left: 30,
		Event: EventStarted, Compact: true, NumWant: DefaultNumWant,
	}
	// An info_hash with '+' and unreserved bytes left raw, as some clients send it.
	rawPlus := "+%20%00%FF%25%26%3DaZ~%80%00%00%00%00%00%00%00%00+"
	tests := []struct {
		name   string
		query  string
		remote net.IP
		change func(*Announce)
	}{
		{"OK", announceQuery(), remote, nil},
		{"OKRawPlusInInfoHash", announceQuery("info_hash=" + rawPlus), remote, nil},
		{"OKNoEventNoCompact", announceQuery("-event", "-compact"), remote, func(a *Announce) { a.Event = EventNone }},
		{"OKStopped", announceQuery("event=stopped"), remote, func(a *Announce) { a.Event = EventStopped }},
		{"OKCompleted", announceQuery("event=completed", "left=0"), remote, func(a *Announce) { a.Event, a.Left = EventCompleted, 0 }},
		{"OKPausedIsRegular", announceQuery("event=paused"), remote, func(a *Announce) { a.Event = EventNone }},
		{"OKDictPeers", announceQuery("compact=0", "no_peer_id=1"), remote, func(a *Announce) { a.Compact, a.NoPeerID = false, true }},
		{"OKPortBounds", announceQuery("port=65535"), remote, func(a *Announce) { a.Addr = netip.MustParseAddrPort("203.0.113.9:65535") }},
		{"OKBigCounters", announceQuery("uploaded=9223372036854775807"), remote, func(a *Announce) { a.Uploaded = 1<<63 - 1 }},
		{"OKNumWant10", announceQuery("numwant=10"), remote, func(a *Announce) { a.NumWant = 10 }},
		{"OKNumWant0", announceQuery("numwant=0"), remote, func(a *Announce) { a.NumWant = 0 }},
		{"OKNumWantHuge", announceQuery("numwant=999999999999"), remote, func(a *Announce) { a.NumWant = MaxNumWant }},
		{"OKNumWantOverflow", announceQuery("numwant=99999999999999999999999999"), remote, func(a *Announce) { a.NumWant = MaxNumWant }},
		{"OKNumWantNegative", announceQuery("numwant=-1"), remote, nil},
		{"OKExtraParams", announceQuery("key=abc", "supportcrypto=1", "corrupt=0", "x%00=%01"), remote, nil},
		{"OKMappedRemote", announceQuery(), net.ParseIP("::ffff:203.0.113.9"), nil},
		{"OKRemote4Bytes", announceQuery(), net.IPv4(203, 0, 113, 9).To4(), nil},
		{"OKIPv6", announceQuery(), net.ParseIP("2001:db8::7"), func(a *Announce) { a.Addr = netip.MustParseAddrPort("[2001:db8::7]:6881") }},
		{"OKIPIgnoredFromPublicRemote", announceQuery("ip=10.1.2.3"), remote, nil},
		{"OKIPFromTrustedRemote", announceQuery("ip=198.51.100.4"), net.ParseIP("192.168.1.20"), func(a *Announce) { a.Addr = netip.MustParseAddrPort("198.51.100.4:6881") }},
		{"OKIPFromTrustedLoopbackMapped", announceQuery("ip=::ffff:198.51.100.4"), net.ParseIP("127.0.0.1"), func(a *Announce) { a.Addr = netip.MustParseAddrPort("198.51.100.4:6881") }},
		{"OKIPInvalidIgnored", announceQuery("ip=not-an-ip"), net.ParseIP("10.0.0.5"), func(a *Announce) { a.Addr = netip.MustParseAddrPort("10.0.0.5:6881") }},
		{"OKIPUnspecifiedIgnored", announceQuery("ip=0.0.0.0"), net.ParseIP("10.0.0.5"), func(a *Announce) { a.Addr = netip.MustParseAddrPort("10.0.0.5:6881") }},
		{"OKIPZoneIgnored", announceQuery("ip=fe80::1%25eth0"), net.ParseIP("10.0.0.5"), func(a *Announce) { a.Addr = netip.MustParseAddrPort("10.0.0.5:6881") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// These cases trust private networks and loopback, as an operator does by configuring them
			// as trusted proxies; TestParseAnnounceIPNeedsTrust has the others.
			trusted := tt.remote.IsPrivate() || tt.remote.IsLoopback()
			got, err := ParseAnnounce(tt.query, tt.remote, trusted)
			if err != nil {
				t.Fatalf("ParseAnnounce(%q): %v", tt.query, err)
			}
			w := want
			if tt.change != nil {
				tt.change(&w)
			}
			if got != w {
				t.Errorf("ParseAnnounce(%q)\n got %+v\nwant %+v", tt.query, got, w)
			}
		})
	}
}

// The ip parameter counts only from a sender the operator trusts: from anyone else, loopback and
// private networks included, it would let one host announce as many addresses as it likes.
func TestParseAnnounceIPNeedsTrust(t *testing.T) {
	for _, remote := range []string{"192.168.1.20", "127.0.0.1", "10.0.0.5", "203.0.113.9"} {
		a, err := ParseAnnounce(announceQuery("ip=198.51.100.4"), net.ParseIP(remote), false)
		if err != nil {
			t.Fatal(err)
		}
		if want := netip.AddrPortFrom(netip.MustParseAddr(remote), 6881); a.Addr != want {
			t.Errorf("ip=198.51.100.4 from untrusted %s: address %v, want %v", remote, a.Addr, want)
		}
		if a, _ := ParseAnnounce(announceQuery("ip=198.51.100.4"), net.ParseIP(remote), true); a.Addr.Addr() != netip.MustParseAddr("198.51.100.4") {
			t.Errorf("ip=198.51.100.4 from trusted %s: address %v", remote, a.Addr)
		}
	}
}

func TestParseAnnounceRejects(t *testing.T) {
	remote := net.ParseIP("203.0.113.9")
	tests := []struct {
		name   string
		query  string
		remote net.IP
		reason string // part of the failure reason
	}{
		{"ErrInfoHashMissing", announceQuery("-info_hash"), remote, "missing info_hash"},
		{"ErrInfoHash19", announceQuery("info_hash=" + escapeAll(strings.Repeat("a", 19))), remote, "info_hash must be 20 bytes"},
		{"ErrInfoHash21", announceQuery("info_hash=" + escapeAll(strings.Repeat("a", 21))), remote, "info_hash must be 20 bytes"},
		{"ErrInfoHashHex", announceQuery("info_hash=" + strings.Repeat("ab", 20)), remote, "info_hash must be 20 bytes"},
		{"ErrInfoHashTwice", announceQuery() + "&info_hash=" + escapeAll(string(testHash[:])), remote, "more than once"},
		{"ErrPeerIDShort", announceQuery("peer_id=abc"), remote, "peer_id must be 20 bytes"},
		{"ErrPeerIDMissing", announceQuery("-peer_id"), remote, "missing peer_id"},
		{"ErrPort0", announceQuery("port=0"), remote, "port"},
		{"ErrPort70000", announceQuery("port=70000"), remote, "port"},
		{"ErrPortABC", announceQuery("port=abc"), remote, "port"},
		{"ErrPortNegative", announceQuery("port=-1"), remote, "port"},
		{"ErrPortEmpty", announceQuery("port="), remote, "port"},
		{"ErrPortMissing", announceQuery("-port"), remote, "missing port"},
		{"ErrUploadedNegative", announceQuery("uploaded=-5"), remote, "uploaded"},
		{"ErrDownloadedText", announceQuery("downloaded=lots"), remote, "downloaded"},
		{"ErrLeftMissing", announceQuery("-left"), remote, "missing left"},
		{"ErrLeftOverflow", announceQuery("left=9223372036854775808"), remote, "left"},
		{"ErrEvent", announceQuery("event=finished"), remote, "event"},
		{"ErrCompact", announceQuery("compact=yes"), remote, "compact"},
		{"ErrNumWantText", announceQuery("numwant=many"), remote, "numwant"},
		{"ErrBadEscape", announceQuery("peer_id=%zz"), remote, "percent-encoding"},
		{"ErrTruncatedEscape", announceQuery() + "&x=%4", remote, "percent-encoding"},
		{"ErrNoRemote", announceQuery(), nil, "address"},
		{"ErrUnspecifiedRemote", announceQuery(), net.IPv4zero, "address"},
		{"ErrEmpty", "", remote, "missing info_hash"},
		{"ErrGarbage", "\x00\xff&&&===&%%%", remote, "percent-encoding"},
		{"ErrGarbageNoEscapes", "\x00\xff&&&===&;;", remote, "missing info_hash"},
		{"ErrTooLong", announceQuery("x=" + strings.Repeat("a", maxQueryBytes)), remote, "too long"},
		{"ErrTooManyRepeats", announceQuery() + strings.Repeat("&a=1", MaxScrapeHashes+1), remote, "too many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAnnounce(tt.query, tt.remote, true)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseAnnounce = %+v, %v; want ErrInvalid", a, err)
			}
			if r := FailureReason(err); !strings.Contains(r, tt.reason) {
				t.Errorf("failure reason %q does not mention %q", r, tt.reason)
			}
		})
	}
}

func TestParseScrape(t *testing.T) {
	h1, h2 := testHash, [20]byte{1, 2, 3}
	got, err := ParseScrape("info_hash=" + escapeAll(string(h1[:])) + "&info_hash=" + escapeAll(string(h2[:])) + "&foo=bar")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != h1 || got[1] != h2 {
		t.Errorf("ParseScrape = %x", got)
	}
	many := strings.Repeat("&info_hash="+escapeAll(string(h2[:])), MaxScrapeHashes+1)
	for name, q := range map[string]string{
		"ErrNone":     "",
		"ErrOnlyJunk": "a=b&c",
		"ErrShort":    "info_hash=abc",
		"ErrOneBad":   "info_hash=" + escapeAll(string(h1[:])) + "&info_hash=" + escapeAll(string(h1[:19])),
		"ErrTooMany":  many[1:],
		"ErrEscape":   "info_hash=%G0",
	} {
		if got, err := ParseScrape(q); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseScrape = %x, %v; want ErrInvalid", name, got, err)
		}
	}
}

func FuzzParseAnnounce(f *testing.F) {
	f.Add(announceQuery(), []byte{203, 0, 113, 9})
	f.Add(announceQuery("info_hash=+%20%00%FF%25%26%3DaZ~%00%00%00%00%00%00%00%00%00+", "numwant=999999999999"), []byte{127, 0, 0, 1})
	f.Add(announceQuery("compact=0", "ip=::1", "event=completed"), []byte(net.ParseIP("10.0.0.1")))
	f.Add("info_hash=%&port=;", []byte{})
	f.Fuzz(func(t *testing.T, query string, remote []byte) {
		a, err := ParseAnnounce(query, net.IP(remote), true)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || FailureReason(err) == "" {
				t.Fatalf("error %v is not an ErrInvalid with a reason", err)
			}
			return
		}
		// Check against the standard parser, with '+' escaped so it stays a byte.
		std, _ := url.ParseQuery(strings.NewReplacer("+", "%2B", ";", "%3B").Replace(query))
		if ih := std["info_hash"]; len(ih) != 1 || len(ih[0]) != 20 || ih[0] != string(a.InfoHash[:]) {
			t.Fatalf("accepted info_hash %x, query has %q", a.InfoHash, ih)
		}
		if id := std["peer_id"]; len(id) != 1 || len(id[0]) != 20 || id[0] != string(a.PeerID[:]) {
			t.Fatalf("accepted peer_id %x, query has %q", a.PeerID, id)
		}
		if p, _ := strconv.Atoi(std.Get("port")); a.Addr.Port() == 0 || p != int(a.Addr.Port()) {
			t.Fatalf("accepted port %d, query has %d", a.Addr.Port(), p)
		}
		if !a.Addr.Addr().IsValid() || a.Addr.Addr().Is4In6() || a.NumWant < 0 || a.NumWant > MaxNumWant ||
			a.Uploaded < 0 || a.Downloaded < 0 || a.Left < 0 {
			t.Fatalf("accepted %+v", a)
		}
		tr := Tracker{Allowed: func([20]byte) bool { return true }}
		resp, err := tr.Announce(a)
		if err != nil {
			t.Fatal(err)
		}
		checkBencode(t, EncodeAnnounceResponse(resp))
	})
}
