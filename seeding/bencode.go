package seeding

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// EncodeAnnounceResponse writes an announce response: interval, complete, incomplete and peers,
// as BEP 23 compact strings ("peers" for IPv4, "peers6" for IPv6) or as a list of dicts.
func EncodeAnnounceResponse(r AnnounceResponse) []byte {
	if r.Compact {
		return appendCompactAnnounce(make([]byte, 0, 96+6*len(r.Peers)), r)
	}
	d := dict{
		"interval":   int64(r.Interval / time.Second),
		"complete":   int64(r.Complete),
		"incomplete": int64(r.Incomplete),
	}
	peers := make(list, 0, len(r.Peers))
	for _, p := range r.Peers {
		if !p.Addr.IsValid() {
			continue
		}
		pd := dict{"ip": p.Addr.Addr().Unmap().String(), "port": int64(p.Addr.Port())}
		if !r.NoPeerID {
			pd["peer id"] = p.ID[:]
		}
		peers = append(peers, pd)
	}
	d["peers"] = peers
	return d.appendTo(nil)
}

// appendCompactAnnounce appends a compact announce response (BEP 23; IPv6 peers in peers6,
// BEP 7): what dict would write, its keys in order, without building one.
func appendCompactAnnounce(b []byte, r AnnounceResponse) []byte {
	b = append(b, "d8:completei"...)
	b = strconv.AppendInt(b, int64(r.Complete), 10)
	b = append(b, "e10:incompletei"...)
	b = strconv.AppendInt(b, int64(r.Incomplete), 10)
	b = append(b, "e8:intervali"...)
	b = strconv.AppendInt(b, int64(r.Interval/time.Second), 10)
	b = append(b, "e5:peers"...)
	v4, v6 := 0, 0
	for _, p := range r.Peers {
		switch ip := p.Addr.Addr().Unmap(); {
		case ip.Is4():
			v4++
		case ip.Is6():
			v6++
		}
	}
	peers := func(b []byte, n int, four bool) []byte {
		size := 18
		if four {
			size = 6
		}
		b = strconv.AppendInt(b, int64(n*size), 10)
		b = append(b, ':')
		for _, p := range r.Peers {
			ip := p.Addr.Addr().Unmap()
			switch {
			case four && ip.Is4():
				a := ip.As4()
				b = binary.BigEndian.AppendUint16(append(b, a[:]...), p.Addr.Port())
			case !four && ip.Is6():
				a := ip.As16()
				b = binary.BigEndian.AppendUint16(append(b, a[:]...), p.Addr.Port())
			}
		}
		return b
	}
	b = peers(b, v4, true)
	if v6 > 0 {
		b = append(b, "6:peers6"...)
		b = peers(b, v6, false)
	}
	return append(b, 'e')
}

// EncodeScrapeResponse writes a scrape response: a "files" dict keyed by raw infohash.
func EncodeScrapeResponse(files []ScrapeFile) []byte {
	fd := make(dict, len(files))
	for _, f := range files {
		fd[string(f.InfoHash[:])] = dict{
			"complete":   int64(f.Complete),
			"incomplete": int64(f.Incomplete),
			"downloaded": f.Downloaded,
		}
	}
	return dict{"files": fd}.appendTo(nil)
}

// EncodeFailure writes a tracker error. The reason is never empty: some clients (aria2) treat
// an empty failure reason as a malformed response.
func EncodeFailure(reason string) []byte {
	if reason == "" {
		reason = "tracker error"
	}
	return dict{"failure reason": reason}.appendTo(nil)
}

// dict and list are the bencode containers tracker responses need; values are string, []byte,
// int64, list or dict.
type (
	dict map[string]any
	list []any
)

// appendTo writes d with its keys in sorted raw-byte order, as bencode requires.
func (d dict) appendTo(b []byte) []byte {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, 'd')
	for _, k := range keys {
		b = appendValue(appendString(b, k), d[k])
	}
	return append(b, 'e')
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendString(b, v)
	case []byte:
		b = append(strconv.AppendInt(b, int64(len(v)), 10), ':')
		return append(b, v...)
	case int64:
		return append(strconv.AppendInt(append(b, 'i'), v, 10), 'e')
	case list:
		b = append(b, 'l')
		for _, e := range v {
			b = appendValue(b, e)
		}
		return append(b, 'e')
	case dict:
		return v.appendTo(b)
	}
	// Only this file builds values, so this is a bug here, never bad input.
	panic(fmt.Sprintf("seeding: cannot bencode %T", v))
}

func appendString(b []byte, s string) []byte {
	b = append(strconv.AppendInt(b, int64(len(s)), 10), ':')
	return append(b, s...)
}
