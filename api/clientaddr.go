package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Behind a reverse proxy every request comes from the proxy's address. The proxies named in
// TRUSTED_PROXIES say who their client was in X-Forwarded-For or Forwarded; nobody else is
// believed. resolveClient works the address out once, first of all, so that the tracker, the
// request log, throttling and counting all see the same one.

type clientKey struct{}

// client is who sent a request: addr, and whether addr is itself a trusted host (a proxy or a
// seedbox network the operator named), which may then speak for others (the tracker's ip=).
type client struct {
	addr    netip.Addr
	trusted bool
}

// resolveClient stores the request's client in its context. When the direct peer is a trusted
// proxy, the client is the right-most hop of X-Forwarded-For (or, without one, of Forwarded)
// that is not itself trusted: hops left of it were written by the client and prove nothing.
func (s *Server) resolveClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := resolve(r, s.cfg.TrustedProxies)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, c)))
	})
}

func resolve(r *http.Request, trusted []netip.Prefix) client {
	peer := peerAddr(r)
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !peer.IsValid() || !isTrusted(peer) {
		return client{addr: peer}
	}
	hops := forwardedHops(r)
	c := client{addr: peer, trusted: true}
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break // what a trusted proxy passed on unparsed cannot be believed past here
		}
		c = client{addr: a, trusted: isTrusted(a)}
		if !c.trusted {
			break
		}
	}
	return c
}

// peerAddr is the direct peer's address from the connection.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// forwardedHops lists the client addresses proxies recorded, the first proxy's client first:
// X-Forwarded-For when the request has one, else the for= parameters of Forwarded (RFC 7239).
func forwardedHops(r *http.Request) []string {
	var hops []string
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, h := range xff {
			for hop := range strings.SplitSeq(h, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
		return hops
	}
	for _, h := range r.Header.Values("Forwarded") {
		for elem := range strings.SplitSeq(h, ",") {
			hop := ""
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(k, "for") {
					hop = strings.Trim(v, `"`)
				}
			}
			hops = append(hops, hop)
		}
	}
	return hops
}

// parseHop reads one hop: an address, with or without a port, IPv6 possibly in brackets.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

func clientFrom(r *http.Request) (client, bool) {
	c, ok := r.Context().Value(clientKey{}).(client)
	return c, ok && c.addr.IsValid()
}

// clientAddr is the client's IP address, without the port: the direct peer's, or the one a
// trusted proxy forwarded (see resolveClient).
func clientAddr(r *http.Request) string {
	if c, ok := clientFrom(r); ok {
		return c.addr.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientNetAddr is clientAddr parsed; the zero Addr when it does not parse.
func clientNetAddr(r *http.Request) netip.Addr {
	a, _ := netip.ParseAddr(clientAddr(r))
	return a
}

// remoteIP is the client's address as the tracker records it.
func remoteIP(r *http.Request) net.IP { return net.ParseIP(clientAddr(r)) }

// clientTrusted reports whether the client is itself a trusted host, whose word about other
// addresses (the tracker's ip= parameter) counts.
func clientTrusted(r *http.Request) bool {
	c, ok := clientFrom(r)
	return ok && c.trusted
}
