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
	d := dict{
		"interval":   int64(r.Interval / time.Second),
		"complete":   int64(r.Complete),
		"incomplete": int64(r.Incomplete),
	}
	if r.Compact {
		v4 := make([]byte, 0, 6*len(r.Peers))
		var v6 []byte
		for _, p := range r.Peers {
			ip := p.Addr.Addr().Unmap()
			switch {
			case ip.Is4():
				a := ip.As4()
				v4 = binary.BigEndian.AppendUint16(append(v4, a[:]...), p.Addr.Port())
			case ip.Is6():
				a := ip.As16()
				v6 = binary.BigEndian.AppendUint16(append(v6, a[:]...), p.Addr.Port())
			}
		}
		d["peers"] = v4
		if len(v6) > 0 {
			d["peers6"] = v6
		}
	} else {
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
	}
	return d.appendTo(nil)
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
